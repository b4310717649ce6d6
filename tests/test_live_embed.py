"""The live embed page in a real Chromium: ffmpeg publishes over RTMP, hls.js plays the live HLS in /embed/live/{id}
with its clock advancing, the seek bar reaches back into the DVR window and "Go live" returns to the edge; when the
publisher drops, the last picture stays under a "we'll be right back" slate, then the "ended" one.

hls.js plays here (native HLS on Apple devices); dash.js plays the channel's DASH MPD (`?engine=dash`) in
test_dashjs_browser.py, and the MPD is checked against the schema in test_live.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from tests.live_helpers import create, live_settings, publish, wait_status


@pytest.fixture
async def live(settings) -> AsyncIterator[TestClient]:
    s = live_settings(settings, live_reconnect_seconds=8.0)   # long enough to see the slate
    async with TestClient(TestServer(create_app(s, s.database_url or ""), host="127.0.0.1")) as c:
        yield c


CLOCK = "() => document.querySelector('video').currentTime"
BADGE = "() => document.querySelector('.op-badge').dataset.state"


async def test_live_embed_page_states(live: TestClient) -> None:
    idle = await create(live, dvr_seconds=30)
    assert idle["playback"]["embed"].endswith(f"/embed/live/{idle['id']}")
    resp = await live.get(f"/embed/live/{idle['id']}")
    text = await resp.text()
    assert resp.status == 200 and "not live yet" in text and 'http-equiv="refresh"' in text
    assert "op-badge" not in text and resp.headers["Cache-Control"] == "private, no-store"
    assert (await live.get("/embed/live/nosuchchannel")).status == 404
    private = await create(live, visibility="private")
    assert (await live.get(f"/embed/live/{private['id']}")).status == 404
    watch = await live.get(f"/watch/live/{idle['id']}")
    assert watch.status == 200 and f"/embed/live/{idle['id']}" in await watch.text()


async def test_hlsjs_plays_the_live_channel_seeks_back_and_goes_live(live: TestClient, browser) -> None:
    body = await create(live, dvr_seconds=60)
    cid = body["id"]
    pub = publish(body["ingest"]["rtmp"], 24)
    try:
        await wait_status(live, cid, "live")
        html = await (await live.get(f"/embed/live/{cid}")).text()
        assert 'class="op-badge"' in html and "Go live" in html and f"/live/{cid}/hls/master.m3u8" in html
        page = await browser.new_page(viewport={"width": 640, "height": 360})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(str(live.make_url(f"/embed/live/{cid}?autoplay=1")))
        await page.wait_for_function("() => document.querySelector('video').currentTime > 0", timeout=20000)
        assert await page.evaluate("() => onairPlayer.engine") == "hlsjs"
        t0 = await page.evaluate(CLOCK)
        # several seconds of live playback: the media clock keeps moving with the stream
        await page.wait_for_function(f"() => document.querySelector('video').currentTime > {t0} + 4", timeout=20000)
        assert await page.evaluate(BADGE) == "live"
        assert await page.evaluate("() => document.querySelector('.op-time').textContent") == "LIVE"
        # back into the DVR window (keyboard, 5 s a press, clamped to the window's start)
        await page.wait_for_function("() => { const l = onairPlayer.live, r = l.range();"
                                     " return r && l.edge() - r.start > 6; }", timeout=20000)
        await page.focus(".op-player")
        for _ in range(3):
            await page.keyboard.press("ArrowLeft")
        await page.wait_for_function(f"{BADGE} === 'behind'", timeout=5000)
        assert await page.evaluate("() => document.querySelector('.op-golive').disabled") is False
        assert (await page.evaluate("() => document.querySelector('.op-time').textContent")).startswith("-")
        behind = await page.evaluate(CLOCK)
        await page.wait_for_function(f"() => document.querySelector('video').currentTime > {behind} + 1",
                                     timeout=10000)  # still playing from the past
        await page.click(".op-golive")
        await page.wait_for_function(f"{BADGE} === 'live'", timeout=5000)
        assert await page.evaluate("() => document.querySelector('.op-golive').disabled") is True
        assert await page.evaluate(CLOCK) > behind + 3
        assert await page.evaluate("() => document.querySelector('.op-slate').hidden") is True
        # the encoder drops: a slate over the last picture, not a frozen player
        pub.kill()
        await page.wait_for_function("() => !document.querySelector('.op-slate').hidden", timeout=15000)
        assert await page.evaluate("() => document.querySelector('.op-slate').textContent") == "We'll be right back."
        assert (await live.get(f"/live/{cid}/status.json")).headers["Cache-Control"] == "public, max-age=1"
        await page.wait_for_function(
            "() => document.querySelector('.op-slate').textContent.includes('ended')", timeout=20000)
        assert errors == []
    finally:
        pub.kill()
        await asyncio.to_thread(pub.wait, 30)
