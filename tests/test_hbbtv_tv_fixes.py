"""The TV app's rough edges, fixed: a moderator's deletion reaches a long-polling TV, the banner never covers
the "Press RED" prompt, and the desktop preview has a key legend and plays clips with the embed player."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from tests.chat_helpers import open_room
from tests.conftest import ADMIN
from tests.device_helpers import mint_device
from tests.test_embed_browser import _ready_clip, server  # noqa: F401 (fixture)
from tests.test_hbbtv_keyflow import _assert_in_safe_area, _open_tv, _shots_dir

DESKTOP_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36")


async def desktop_page(browser: Any, url: str) -> tuple[Any, list[str]]:
    """A desktop browser's page at `url` (1280x720) and the list its script errors are collected in."""
    context = await browser.new_context(user_agent=DESKTOP_UA, viewport={"width": 1280, "height": 720})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    await page.goto(url)
    return page, errors


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


async def _box(page: Any, element_id: str) -> list[float]:
    return await page.evaluate("(id) => { var r = document.getElementById(id).getBoundingClientRect();"
                               " return [r.left, r.top, r.right, r.bottom]; }", element_id)


async def test_deletion_reaches_a_long_polling_tv_and_banner_spares_the_prompt(
        browser: Any, client: TestClient, tmp_path: Path) -> None:
    name = "The Evening News with a Rather Long Programme Title Indeed"
    resp = await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json={
        "slug": "news", "name": name, "org_id": 4660, "app_id": 2, "chat_room": "tvroom"})
    assert resp.status == 201, await resp.text()
    await open_room(client, "tvroom")
    resp = await client.post("/api/v1/hbbtv/apps/news/banners", headers=ADMIN, json={
        "image_url": "/hbbtv/static/x/blank.gif", "target_url": "/hbbtv/static/x/blank.html",
        "label": "Press OK for the offer", "duration_s": 60})
    assert resp.status == 201, await resp.text()
    shots = _shots_dir(tmp_path)
    tv = await _open_tv(browser, client, "news", shots)
    await tv.until("() => !/hidden/.test(document.getElementById('banner').className)")
    assert await tv.visible("prompt") and await tv.visible("banner")
    assert not _overlap(await _box(tv.page, "banner"), await _box(tv.page, "prompt"))
    await _assert_in_safe_area(tv.page, ["banner", "prompt"])
    await tv.shot("tv-banner-and-prompt")

    dev = await mint_device(client)
    await tv.key("RED")
    await tv.key("YELLOW")
    posted = await (await client.post("/api/v1/chat/tvroom/messages", json={
        "device_id": dev, "nickname": "ann", "text": "soon gone"})).json()
    await tv.until("(id) => !!document.getElementById('msg-' + id)", posted["id"])
    started = time.monotonic()
    assert (await client.delete(f"/api/v1/chat/tvroom/messages/{posted['id']}", headers=ADMIN)).status == 204
    await tv.until("(id) => !document.getElementById('msg-' + id)", posted["id"], wait_ms=2000)
    print(f"deletion reached the long-polling TV in {time.monotonic() - started:.2f} s")
    assert not tv.errors, tv.errors


async def test_desktop_preview_has_a_legend_and_plays_a_clip(
        browser: Any, server: TestClient, db: asyncpg.Pool, tmp_path: Path) -> None:  # noqa: F811
    clip = await _ready_clip(server, db, tmp_path)
    resp = await server.post("/api/v1/hbbtv/apps", headers=ADMIN, json={
        "slug": "preview", "name": "Preview", "org_id": 4660, "app_id": 3, "vod_assets": [clip]})
    assert resp.status == 201, await resp.text()
    shots = _shots_dir(tmp_path)
    page, errors = await desktop_page(browser, str(server.make_url("/hbbtv/preview/")))
    await page.wait_for_function("() => document.body.getAttribute('data-app') === 'ready'")
    legend = await page.text_content("#legend")
    assert "R = RED" in legend and "Backspace = BACK" in legend and "Enter = OK" in legend
    await page.screenshot(path=str(shots / "preview-1-legend.png"))

    await page.keyboard.press("r")
    await page.keyboard.press("b")
    await page.wait_for_function("() => !/hidden/.test(document.getElementById('panel-vod').className)")
    await page.keyboard.press("Enter")
    await page.wait_for_function("() => document.body.getAttribute('data-playing') === 'vod'")
    await page.wait_for_function("() => !!document.getElementById('vod')")
    for _ in range(200):  # the iframe's document arrives shortly after the element
        player = next((f for f in page.frames if "/embed/" in f.url), None)
        if player is not None:
            break
        await page.wait_for_timeout(50)
    assert player is not None, [f.url for f in page.frames]
    await player.wait_for_function("() => { const v = document.querySelector('video');"
                                   " return v && v.currentTime > 0.5 && !v.error; }", timeout=20_000)
    await page.screenshot(path=str(shots / "preview-2-playing.png"))
    await page.keyboard.press("Backspace")
    await page.wait_for_function("() => document.body.getAttribute('data-playing') === 'broadcast'")
    assert await page.evaluate("() => !document.getElementById('vod')")
    assert not await page.evaluate("() => /hidden/.test(document.getElementById('overlay').className)")
    await page.screenshot(path=str(shots / "preview-3-back-to-overlay.png"))
    assert not errors, errors
    await page.context.close()


async def test_tv_switches_to_the_shows_live_channel_and_back(browser: Any, client: TestClient,
                                                               tmp_path: Path) -> None:
    assert (await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json={
        "slug": "liveapp", "name": "Live", "org_id": 4660, "app_id": 6})).status == 201
    assert (await client.post("/api/v1/shows", headers=ADMIN, json={
        "slug": "match", "title": "The Match", "live_channel": "cam2", "hbbtv_app": "liveapp"})).status == 201
    listed = await (await client.get("/api/v1/shows?hbbtv_app=liveapp")).json()
    assert [s["live_channel"] for s in listed["shows"]] == ["cam2"]
    assert (await (await client.get("/api/v1/shows?hbbtv_app=other")).json())["shows"] == []
    tv = await _open_tv(browser, client, "liveapp", _shots_dir(tmp_path))
    await tv.key("RED")
    await tv.key("BLUE")
    await tv.until("() => { var l = document.getElementById('vod-list');"
                   " return !!l && /live/.test(l.getElementsByTagName('li')[0].className); }")
    await tv.key("ENTER")
    await tv.until("() => document.body.getAttribute('data-playing') === 'live'")
    calls = await tv.page.evaluate("() => __oipf.calls")
    # an HbbTV 1.5 terminal: the standard MPD, not LL-DASH
    assert "stop:video/broadcast" in calls and "play:application/dash+xml:/live/cam2/dash/standard.mpd" in calls
    assert await tv.visible("overlay")  # the overlay stays on top of the extra camera
    await tv.shot("live-extra-camera")
    await tv.key("BACK")
    await tv.until("() => document.body.getAttribute('data-playing') === 'broadcast'")
    assert (await tv.page.evaluate("() => __oipf.calls")).count("bind:video/broadcast") >= 2
    assert await tv.visible("overlay") and not tv.errors, tv.errors
