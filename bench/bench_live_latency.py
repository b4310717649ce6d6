"""Glass-to-glass latency of a live channel in Chromium: LL-HLS (hls.js lowLatencyMode), from the same channel
standard HLS (hls.js without LL) and LL-DASH (dash.js low-latency mode with live catch-up), and from a second,
standard-latency channel DASH (dash.js), each over BENCH_SECONDS of playback (ONAIR_BENCH_LIVE_MODES picks some).

The publisher (ffmpeg -re, testsrc2 640x360 at 25 fps over RTMP) burns its frame number into the picture as a
16-bit barcode; frame N is captured at t0 + N/25, t0 being taken just before ffmpeg starts (so ffmpeg's own start
counts against us; no initial read burst, which ffmpeg -re allows by default). In Chromium, every presented frame
(requestVideoFrameCallback) is drawn to a canvas, its barcode read back, and latency = now - (t0 + N/25).
Everything (publisher, encoder, onair, Chromium) shares this machine.
Writes bench/results/live.json (key "glass_to_glass"; other keys kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from playwright.async_api import async_playwright

from bench.bench_syndication import scratch_database
from onair.app import create_app
from onair.core.db.migrate import migrate
from onair.core.settings import Settings
from tests.conftest import CHROMIUM_ARGS
from tests.tools import free_port
from transcode.ffmpeg import ffmpeg_binary

BENCH_SECONDS = float(os.environ.get("ONAIR_BENCH_LIVE_SECONDS", "60"))
TOKEN = "bench-live-admin-token-0123456789"
BITS, BAR = 16, 20      # barcode: 16 blocks of 20x20 px, top left
MANIFEST = Path(__file__).resolve().parents[1] / "syndication" / "embed" / "static" / "player" / "manifest.json"
PAGE = """<!doctype html><html><head><meta charset="utf-8"><link rel="stylesheet" href="/player/{css}">
<script src="/player/{js}" defer></script></head><body>
<div class="op-player" tabindex="0"><video playsinline muted></video><div class="op-status" hidden></div>
<div class="op-thumb" hidden></div><div class="op-bar"><button class="op-play"></button>
<input class="op-seek" type="range" min="0" max="1000"><span class="op-time"></span><button class="op-mute"></button>
<button class="op-fs"></button><span class="op-badge"></span><button class="op-golive"></button>
<div class="op-slate" hidden><p></p></div></div></div>
<script type="application/json" id="onair-config">{config}</script></body></html>"""
# Reads the barcode of every presented frame; latency against the publisher's clock (t0 from the page URL).
PROBE = """(t0) => { const v = window.onairPlayer.video, c = document.createElement('canvas'), out = window.g2g = [];
  window.stalls = 0; v.addEventListener('waiting', () => { window.stalls += 1; });
  const ctx = c.getContext('2d', {willReadFrequently: true});
  const tick = () => { if (v.videoWidth) { c.width = v.videoWidth; c.height = v.videoHeight;
      ctx.drawImage(v, 0, 0); let n = 0;
      for (let b = 0; b < BITS; b++) { const x = Math.round((b * BAR + HALF) * v.videoWidth / 640);
        const p = ctx.getImageData(x, Math.round(HALF * v.videoHeight / 360), 1, 1).data;
        if (p[0] > 128) n += 1 << b; }
      out.push(Date.now() / 1000 - (t0 + n / 25)); }
    v.requestVideoFrameCallback(tick); };
  v.requestVideoFrameCallback(tick); }""".replace("BITS", str(BITS)).replace("HALF", str(BAR // 2)).replace(
    "BAR", str(BAR))


# mode -> (channel latency, player engine, player low-latency settings, label)
MODES = {"ll-hls": ("low", "hlsjs", True, "LL-HLS (hls.js lowLatencyMode)"),
         "hls": ("low", "hlsjs", False, "standard HLS (hls.js)"),
         "ll-dash": ("low", "dashjs", True, "LL-DASH (dash.js low-latency mode, live catch-up)"),
         "dash": ("standard", "dashjs", False, "DASH (dash.js, standard-latency channel)")}
WANTED = [m for m in os.environ.get("ONAIR_BENCH_LIVE_MODES", ",".join(MODES)).split(",") if m in MODES]


def _publisher(url: str, seconds: float) -> subprocess.Popen:
    graph = (f"[2:v]format=gray,geq=lum='255*mod(floor(N/pow(2\\,floor(X/{BAR})))\\,2)'[code];"
             "[0:v][code]overlay=0:0,format=yuv420p[v]")
    return subprocess.Popen(
        [ffmpeg_binary(None), "-hide_banner", "-loglevel", "error",
         "-re", "-readrate_initial_burst", "0", "-f", "lavfi", "-i", f"testsrc2=s=640x360:r=25:d={seconds}",
         "-f", "lavfi", "-i", f"sine=f=440:d={seconds}:r=48000",
         "-f", "lavfi", "-i", f"color=black:s={BITS * BAR}x{BAR}:r=25:d={seconds}",
         "-filter_complex", graph, "-map", "[v]", "-map", "1:a",
         "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "50", "-c:a", "aac",
         "-f", "flv", url], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


async def _watch(browser: Any, base: str, cid: str, mode: str, t0: float) -> dict[str, Any]:
    _, engine, low, label = MODES[mode]
    page = await browser.new_page()
    try:
        loaded = time.monotonic()
        await page.goto(f"{base}/bench-page/{cid}?low={int(low)}&engine={engine}")
        await page.wait_for_function("window.onairPlayer && window.onairPlayer.video.currentTime > 0",
                                     timeout=30000)
        start = time.monotonic() - loaded
        await page.evaluate(PROBE, t0)
        await asyncio.sleep(BENCH_SECONDS)
        samples = [x for x in await page.evaluate("window.g2g") if 0 < x < 60]
        stalls = await page.evaluate("window.stalls")
    finally:
        await page.close()
    return {"mode": label,
            "p50_s": _percentile(samples, 0.5), "p95_s": _percentile(samples, 0.95), "frames": len(samples),
            "seconds": BENCH_SECONDS, "stalls": stalls, "start_after_page_load_s": round(start, 2)}


def _app(settings: Settings, url: str) -> web.Application:
    app = create_app(settings, url)

    async def page(request: web.Request) -> web.Response:
        bundle = json.loads(MANIFEST.read_text())
        low = request.query.get("low") == "1"
        cid = request.match_info["cid"]
        config = {"asset_id": None, "src": f"/live/{cid}/hls/master.m3u8", "dash": f"/live/{cid}/dash/manifest.mpd",
                  "live": True, "title": "bench", "autoplay": True, "start": 0, "loop": False,
                  "engine": request.query.get("engine", "hlsjs"), "low_latency": low, "events_url": None}
        return web.Response(text=PAGE.format(css=bundle["player.css"], js=bundle["player.js"],
                                             config=json.dumps(config)), content_type="text/html")

    app.router.add_get("/bench-page/{cid}", page)
    return app


async def _channel_runs(browser: Any, base: str, headers: dict[str, str], latency: str,
                        modes: list[str]) -> list[dict[str, Any]]:
    pub = None
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{base}/api/v1/live/channels", headers=headers,
                              json={"title": "bench", "latency": latency, "dvr_seconds": 300}) as resp:
                ch = await resp.json()
            t0 = time.time()
            pub = _publisher(ch["ingest"]["rtmp"], len(modes) * BENCH_SECONDS + 60)
            for key in ("hls/master.m3u8", "dash/manifest.mpd"):
                while True:
                    async with s.get(f"{base}/live/{ch['id']}/{key}") as resp:
                        if resp.status == 200:
                            break
                    await asyncio.sleep(0.2)
        return [await _watch(browser, base, ch["id"], mode, t0) for mode in modes]
    finally:
        if pub is not None:
            pub.kill()
            pub.wait(10)


async def run(results_dir: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        async with scratch_database(Path(tmp)) as url:
            conn = await asyncpg.connect(url)
            await migrate(conn)
            await conn.close()
            port = free_port()
            settings = Settings(data_dir=Path(tmp) / "data", database_url=url, admin_token=TOKEN, port=port,
                                signing_key="bench", live_rtmp_port=free_port(), live_srt_port=free_port(),
                                live_max_height=360, live_preset="ultrafast", log_level="WARNING")
            runner = web.AppRunner(_app(settings, url))
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            base = f"http://127.0.0.1:{port}"
            headers = {"Authorization": f"Bearer {TOKEN}"}
            runs = []
            try:
                async with async_playwright() as p:
                    browser = await p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS,
                                                      headless=True)
                    # One channel (and one publisher) at a time: two encoders would measure each other on 2 cores.
                    for latency in ("low", "standard"):
                        modes = [m for m in WANTED if MODES[m][0] == latency]
                        if modes:
                            runs += await _channel_runs(browser, base, headers, latency, modes)
                    await browser.close()
            finally:
                await runner.cleanup()
    figures = {"method": __doc__.split("\n\n")[1].replace("\n", " "), "cpus": os.cpu_count(),
               "segment_s": 2.0, "part_s": 0.4, "runs": runs}
    out = results_dir / "live.json"
    doc = json.loads(out.read_text()) if out.exists() else {}
    doc["glass_to_glass"] = figures
    out.write_text(json.dumps(doc, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        print(json.dumps(asyncio.run(run(Path(__file__).parent / "results")), indent=2))
