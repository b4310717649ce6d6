"""A show with a live channel, in desktop Chromium: ffmpeg publishes over RTMP; the show page plays the channel
(its lazily loaded live embed player, hls.js), and the HbbTV app's desktop preview plays the same "extra camera"
with the embed player too, returning to the overlay on BACK. One publish serves both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from tests.conftest import ADMIN
from tests.live_helpers import create, live_settings, publish, wait_status
from tests.test_hbbtv_keyflow import _shots_dir
from tests.test_hbbtv_tv_fixes import desktop_page

PLAYING = "() => { const v = document.querySelector('video'); return !!v && v.currentTime > 0.3 && !v.error; }"


@pytest.fixture
async def live(settings) -> AsyncIterator[TestClient]:
    s = live_settings(settings)
    async with TestClient(TestServer(create_app(s, s.database_url or ""), host="127.0.0.1")) as c:
        yield c


async def _player(page: Any) -> Any:
    for _ in range(400):  # the iframe's document arrives shortly after the element
        frame = next((f for f in page.frames if "/embed/live/" in f.url), None)
        if frame is not None:
            return frame
        await page.wait_for_timeout(50)
    raise AssertionError([f.url for f in page.frames])


async def test_show_page_and_tv_preview_play_the_live_channel(live: TestClient, browser: Any,
                                                              tmp_path: Path) -> None:
    channel = await create(live)
    cid = channel["id"]
    assert (await live.post("/api/v1/hbbtv/apps", headers=ADMIN, json={
        "slug": "camapp", "name": "Cam", "org_id": 4660, "app_id": 9})).status == 201
    assert (await live.post("/api/v1/shows", headers=ADMIN, json={
        "slug": "derby", "title": "The Derby", "live_channel": cid, "hbbtv_app": "camapp"})).status == 201
    shots = _shots_dir(tmp_path)
    pub = publish(channel["ingest"]["rtmp"], 40)
    try:
        await wait_status(live, cid, "live")
        page, errors = await desktop_page(browser, str(live.make_url("/s/derby")))
        assert await page.get_attribute("#live", "loading") == "lazy"
        await (await _player(page)).wait_for_function(PLAYING, timeout=30_000)
        await page.screenshot(path=str(shots / "show-page-live.png"))

        await page.goto(str(live.make_url("/hbbtv/camapp/")))
        await page.wait_for_function("() => document.body.getAttribute('data-app') === 'ready'")
        await page.keyboard.press("r")
        await page.keyboard.press("b")
        await page.wait_for_function("() => { var l = document.getElementById('vod-list');"
                                     " return !!l && /live/.test(l.getElementsByTagName('li')[0].className); }")
        await page.keyboard.press("Enter")
        await page.wait_for_function("() => document.body.getAttribute('data-playing') === 'live'")
        await (await _player(page)).wait_for_function(PLAYING, timeout=30_000)
        assert not await page.evaluate("() => /hidden/.test(document.getElementById('overlay').className)")
        await page.screenshot(path=str(shots / "preview-live-extra-camera.png"))
        await page.keyboard.press("Backspace")
        await page.wait_for_function("() => document.body.getAttribute('data-playing') === 'broadcast'")
        assert await page.evaluate("() => !document.getElementById('vod')")
        assert not errors, errors
        await page.context.close()
    finally:
        pub.kill()
        pub.wait()
