"""The embed player plays a low-latency channel in Chromium: hls.js in lowLatencyMode requests parts and blocking
playlist reloads (seen at the origin), keeps playing, and its ?debug overlay reports the latency behind the
encoder's clock (EXT-X-PROGRAM-DATE-TIME)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bench.bench_live_latency import PAGE
from onair.app import create_app
from tests.test_live import create, publish, wait_status
from tests.test_live_ll import LL
from tests.tools import free_port

MANIFEST = Path(__file__).resolve().parents[1] / "syndication" / "embed" / "static" / "player" / "manifest.json"
WATCH_SECONDS = 10.0

@pytest.fixture
async def live(settings) -> AsyncIterator[tuple[TestClient, list[tuple[str, int]]]]:
    s = settings.with_(live_rtmp_port=free_port(), live_srt_port=free_port(), live_reconnect_seconds=2.0, **LL)
    app = create_app(s, s.database_url or "")
    seen: list[tuple[str, int]] = []

    async def log(request: web.Request, response: web.StreamResponse) -> None:   # the origin's access log
        seen.append((request.path_qs, response.status))

    async def page(request: web.Request) -> web.Response:
        bundle = json.loads(MANIFEST.read_text())
        config = {"asset_id": None, "src": f"/live/{request.match_info['cid']}/hls/master.m3u8", "title": "LL",
                  "autoplay": True, "start": 0, "loop": False, "engine": "hlsjs", "debug": True,
                  "low_latency": True, "events_url": None}
        return web.Response(text=PAGE.format(css=bundle["player.css"], js=bundle["player.js"],
                                             config=json.dumps(config)), content_type="text/html")

    app.on_response_prepare.append(log)
    app.router.add_get("/ll-page/{cid}", page)
    async with TestClient(TestServer(app)) as c:
        yield c, seen


async def test_hlsjs_plays_a_low_latency_channel_with_parts_and_blocking_reloads(live, browser):
    client, seen = live
    body = await create(client, dvr_seconds=60)
    cid = body["id"]
    pub = publish(body["ingest"]["rtmp"], WATCH_SECONDS + 12)
    page = None
    try:
        await wait_status(client, cid, "live")
        page = await browser.new_page()
        loaded = time.monotonic()
        await page.goto(str(client.make_url(f"/ll-page/{cid}")))
        await page.wait_for_function("window.onairPlayer && window.onairPlayer.video.currentTime > 0", timeout=20000)
        started = time.monotonic() - loaded
        await page.evaluate("""() => { const s = window.onairPlayer; s.stalls = 0;
            s.video.addEventListener('waiting', () => { s.stalls += 1; }); }""")
        first = await page.evaluate("window.onairPlayer.video.currentTime")
        samples = []
        mark = len(seen)
        until = time.monotonic() + WATCH_SECONDS
        while time.monotonic() < until:
            await asyncio.sleep(1)
            samples.append(await page.evaluate("window.onairPlayer.latency"))
        state = await page.evaluate("""() => { const s = window.onairPlayer; return {t: s.video.currentTime,
            stalls: s.stalls, low: s.hls.config.lowLatencyMode, overlay: document.querySelector('.op-debug')
            .textContent, errors: s.errors}; }""")
    finally:
        if page is not None:
            await page.close()
        pub.kill()
        await asyncio.to_thread(pub.wait, 10)
    during = seen[mark:]
    blocking = [(p, st) for p, st in during if "_HLS_msn=" in p and "_HLS_part=" in p]
    parts = [(p, st) for p, st in during if re.search(r"/cmaf/v0/\d{6}\.\d+\.m4s$", p)]
    deltas = [(p, st) for p, st in during if "_HLS_skip=" in p]   # delta updates (CAN-SKIP-UNTIL), when hls.js asks
    latencies = sorted(x for x in samples if x is not None)
    print(f"LL-HLS in Chromium: start {started:.2f} s after page load, played {state['t'] - first:.1f} s in "
          f"{WATCH_SECONDS:.0f} s, stalls {state['stalls']}, {len(blocking)} blocking reloads, "
          f"{len(parts)} video parts, {len(deltas)} delta updates,"
          f" latency behind the encoder clock p50 {latencies[len(latencies) // 2] if latencies else None} s;"
          f" overlay: {state['overlay']}")
    assert state["low"] is True and not state["errors"], state
    assert len(blocking) >= WATCH_SECONDS and all(st == 200 for _, st in blocking), blocking[:5]
    assert len(parts) >= WATCH_SECONDS and all(st == 200 for _, st in parts), parts[:5]
    assert all(st == 200 for _, st in deltas), deltas[:5]
    assert state["t"] - first > WATCH_SECONDS * 0.7
    assert "LL" in state["overlay"] and "latency" in state["overlay"]
    assert latencies and latencies[len(latencies) // 2] < 5.0, latencies
