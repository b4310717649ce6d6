"""The show page's Lighthouse-style figures on a cold load in Chromium with a mobile profile: bytes transferred
before interactive, time to interactive (the page script's `show-ready` mark) with the CPU throttled 4x and a
slow-4G network (150 ms RTT, 1.6 Mbit/s down: Lighthouse's mobile preset), and the layout shift while a poll
opens and closes.

Environment: BENCH_DATABASE_URL or ONAIR_TEST_DATABASE_URL (a PostgreSQL server; a fresh database is created on
it and dropped after). BENCH_SHOW_RUNS cold loads (default 5); the median is reported.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import ClientSession, web
from playwright.async_api import async_playwright

from onair.app import create_app
from onair.core.db.migrate import migrate_url
from onair.core.settings import Settings
from tests.device_helpers import mint_device

TOKEN = "bench-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
PHONE = {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
SLOW_4G = {"offline": False, "latency": 150, "downloadThroughput": 1.6e6 / 8, "uploadThroughput": 750e3 / 8}
CLS_OBSERVER = """window.__cls = 0; new PerformanceObserver(function (list) {
  list.getEntries().forEach(function (e) { if (!e.hadRecentInput) { window.__cls += e.value; } });
}).observe({type: 'layout-shift', buffered: true});"""


async def _seed(base: str) -> str:
    async with ClientSession() as http:
        await http.post(f"{base}/api/v1/shows", headers=ADMIN, json={
            "slug": "bench", "title": "Evening News", "description": "The day's news. " * 20,
            "schedule": "Weekdays 19:00"})
        poll = await (await http.post(f"{base}/api/v1/polls", headers=ADMIN, json={
            "question": "Should the harbour bridge open on Sundays?", "options": ["Yes", "No", "Not sure"],
            "show": "bench"})).json()
        device = await mint_device(http, base)
        for i in range(30):
            await http.post(f"{base}/api/v1/chat/show-bench/messages",
                            json={"device_id": device, "nickname": f"viewer{i}", "text": f"message number {i}"})
        return poll["id"]


async def _cold_load(browser: Any, base: str) -> dict[str, float]:
    context = await browser.new_context(**PHONE)
    page = await context.new_page()
    await page.add_init_script(CLS_OBSERVER)
    cdp = await context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.emulateNetworkConditions", SLOW_4G)
    await cdp.send("Emulation.setCPUThrottlingRate", {"rate": 4})
    sizes: dict[str, float] = {}
    cdp.on("Network.loadingFinished", lambda e: sizes.__setitem__(e["requestId"], e["encodedDataLength"]))
    await page.goto(f"{base}/s/bench", wait_until="commit")
    await page.wait_for_selector("#show[data-ready='1']", timeout=60_000)
    ready = await page.evaluate("() => performance.getEntriesByName('show-ready')[0].startTime")
    transferred = sum(sizes.values())  # finished requests up to interactive (streams stay open, uncounted)
    await context.close()
    return {"interactive_ms": ready, "transferred_bytes": transferred}


async def _layout_shift(browser: Any, base: str, poll_id: str) -> float:
    context = await browser.new_context(**PHONE)
    page = await context.new_page()
    await page.add_init_script(CLS_OBSERVER)
    await page.goto(f"{base}/s/bench")
    await page.wait_for_selector("#show[data-ready='1']")
    async with ClientSession() as http:
        await http.post(f"{base}/api/v1/polls/{poll_id}/open", headers=ADMIN)
        await page.wait_for_function("() => !document.querySelector('#poll button').disabled")
        await page.tap("#poll button[data-option='1']")
        await page.wait_for_function("() => document.querySelector('#poll .pct').textContent !== ''")
        await http.post(f"{base}/api/v1/polls/{poll_id}/close", headers=ADMIN)
        await page.wait_for_function("() => document.getElementById('poll-note').textContent === 'Voting has closed'")
    cls = await page.evaluate("() => window.__cls")
    await context.close()
    return cls


async def run(results_dir: Path) -> dict[str, Any]:
    server_url = os.environ.get("BENCH_DATABASE_URL") or os.environ["ONAIR_TEST_DATABASE_URL"]
    name = f"bench_show_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = server_url.rsplit("/", 1)[0] + f"/{name}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-show-"))
    runner = None
    try:
        await migrate_url(dsn)
        settings = Settings(data_dir=tmp, database_url=dsn, admin_token=TOKEN, signing_key="bench-signing-key",
                            log_format="text")
        runner = web.AppRunner(create_app(settings, dsn, run_worker=False))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        poll_id = await _seed(base)
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            loads = [await _cold_load(browser, base) for _ in range(int(os.environ.get("BENCH_SHOW_RUNS", "5")))]
            cls = await _layout_shift(browser, base, poll_id)
            await browser.close()
    finally:
        if runner:
            await runner.cleanup()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"profile": "360x740 mobile, CPU 4x throttled, slow 4G (150 ms RTT, 1.6 Mbit/s)",
              "runs": len(loads),
              "interactive_ms_median": round(statistics.median(x["interactive_ms"] for x in loads)),
              "interactive_ms_max": round(max(x["interactive_ms"] for x in loads)),
              "transferred_bytes_median": round(statistics.median(x["transferred_bytes"] for x in loads)),
              "cumulative_layout_shift_poll_open_vote_close": round(cls, 4),
              "budget": {"transferred_bytes": 150_000, "interactive_ms": 2000}}
    (results_dir / "show_page.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
