"""Syndication feed latency: MRSS over a 1,000-asset library vs the same bytes as a static file, and 304s.

Feeds page at 100 items (the MRSS paging rule), so "MRSS with 1,000 items" is measured two ways:
the first page (100 items) and a full walk of the 10 pages a partner makes to pull all 1,000 items.
The reference is the same first-page bytes served by the same server as a static file, in the same run.
Database: ONAIR_BENCH_DATABASE_URL / ONAIR_TEST_DATABASE_URL (a server URL; a scratch database is created and
dropped), else an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from onair.app import create_app
from onair.core.db.embedded import EmbeddedPostgres
from onair.core.db.migrate import migrate
from onair.core.db.pool import create_pool
from onair.core.settings import Settings
from streaming.catalog.repository import Asset
from syndication.feeds import documents
from syndication.feeds.routes import FEED_CACHE

N_ASSETS = 1000
ROUNDS = 200
OUTPUTS = {"hls": "hls/master.m3u8", "dash": "dash/manifest.mpd",
           "video": [{"name": "720p", "width": 1280, "height": 720, "bitrate": 2400000, "frame_rate": 25.0}],
           "audio": {"codecs": "mp4a.40.2", "bitrate": 128000, "channels": 2, "sample_rate": 48000},
           "poster": "images/poster.jpg", "thumbnails": [{"width": 320, "height": 180, "key": "images/t.jpg"}]}


@contextlib.asynccontextmanager
async def scratch_database(tmp: Path) -> AsyncIterator[str]:
    server = os.environ.get("ONAIR_BENCH_DATABASE_URL") or os.environ.get("ONAIR_TEST_DATABASE_URL")
    pg = None
    if not server:
        pg = EmbeddedPostgres(tmp / "pg", database="postgres")
        server = pg.start()
    name = f"onair_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = server.rpartition("/")[0] + "/" + name
    try:
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
        if pg:
            pg.stop()


async def seed(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        rows = [(f"bench{i:05d}", f"Bench clip {i} & <friends>", "A description of the clip. " * 8,
                 ["news", f"t{i % 10}"], "ready", 100.0, json.dumps(OUTPUTS), 93.4, t0 + timedelta(minutes=i),
                 t0 + timedelta(minutes=i), t0 + timedelta(minutes=i), "Bench desk", "(c) onair")
                for i in range(N_ASSETS)]
        await conn.executemany(
            """INSERT INTO assets (id, title, description, tags, status, progress, outputs, duration, created_at,
                                   updated_at, ready_at, credit, copyright)
               VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13)""", rows)
    finally:
        await conn.close()


async def timed(session: aiohttp.ClientSession, url: str, rounds: int, **headers: str) -> dict[str, float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        async with session.get(url, headers=headers) as resp:
            await resp.read()
            assert resp.status in (200, 304), resp.status
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 3), "p95_ms": round(samples[int(len(samples) * 0.95)], 3),
            "rounds": rounds}


async def run(results_dir: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="onair-bench-synd-") as tmp_s:
        tmp = Path(tmp_s)
        tmp.chmod(0o755)  # an embedded PostgreSQL runs as 'nobody' when we are root
        async with scratch_database(tmp) as url:
            await seed(url)
            settings = Settings(data_dir=tmp / "data", database_url=url, admin_token="bench-admin-token",
                                signing_key="bench-signing-key", public_url="https://tv.example.org",
                                log_format="text", log_level="WARNING")
            app = create_app(settings, url, run_worker=False)
            static_dir = tmp / "static"
            static_dir.mkdir()
            app.router.add_static("/static-ref/", static_dir)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            base = f"http://127.0.0.1:{port}"
            identity = {"Accept-Encoding": "identity"}
            try:
                async with aiohttp.ClientSession(auto_decompress=False) as s:
                    async with s.get(f"{base}/feeds/mrss.xml", headers=identity) as resp:
                        page1 = await resp.read()
                        etag = resp.headers["ETag"]
                    (static_dir / "mrss.xml").write_bytes(page1)
                    await timed(s, f"{base}/feeds/mrss.xml", 20, **identity)          # warm-up
                    await timed(s, f"{base}/static-ref/mrss.xml", 20, **identity)
                    # Interleaved, so load from other processes on the machine hits both sides alike.
                    warm_samples: list[dict[str, float]] = []
                    static_samples: list[dict[str, float]] = []
                    for _ in range(ROUNDS // 10):
                        warm_samples.append(await timed(s, f"{base}/feeds/mrss.xml", 10, **identity))
                        static_samples.append(await timed(s, f"{base}/static-ref/mrss.xml", 10, **identity))
                    warm = {"p50_ms": round(statistics.median(x["p50_ms"] for x in warm_samples), 3),
                            "rounds": ROUNDS}
                    static = {"p50_ms": round(statistics.median(x["p50_ms"] for x in static_samples), 3),
                              "rounds": ROUNDS}
                    not_modified = await timed(s, f"{base}/feeds/mrss.xml", ROUNDS, **identity,
                                               **{"If-None-Match": etag})
                    warm_gzip = await timed(s, f"{base}/feeds/mrss.xml", ROUNDS, **{"Accept-Encoding": "gzip"})
                    # Cold: the built-feed cache emptied before every request (query + build + gzip).
                    cold_samples = []
                    for _ in range(50):
                        app[FEED_CACHE].entries.clear()
                        start = time.perf_counter()
                        async with s.get(f"{base}/feeds/mrss.xml", headers=identity) as resp:
                            await resp.read()
                        cold_samples.append((time.perf_counter() - start) * 1000)
                    # A partner pulling all 1,000 items: walk the 10 pages via atom:link rel="next".
                    walk = []
                    for _ in range(10):
                        start = time.perf_counter()
                        next_url: str | None = f"{base}/feeds/mrss.xml"
                        items = 0
                        while next_url:
                            async with s.get(next_url, headers=identity) as resp:
                                body = await resp.read()
                            items += body.count(b"<item>")
                            marker = b'rel="next" href="'
                            at = body.find(marker)
                            next_url = None
                            if at >= 0:
                                href = body[at + len(marker): body.index(b'"', at + len(marker))].decode()
                                next_url = base + href.split("tv.example.org", 1)[1].replace("&amp;", "&")
                        assert items == N_ASSETS, items
                        walk.append((time.perf_counter() - start) * 1000)
                # The pure builder on all 1,000 items in one document (no HTTP, no DB).
                pool_rows = await app_pool_rows(url)
                assets = [Asset.from_row(r) for r in pool_rows]
                meta = documents.FeedMeta("bench", "https://tv.example.org", "x", "x", None, datetime.now(UTC))
                build = []
                for _ in range(10):
                    start = time.perf_counter()
                    doc = documents.build_mrss(meta, assets)
                    build.append((time.perf_counter() - start) * 1000)
            finally:
                await runner.cleanup()
    result = {
        "library_assets": N_ASSETS, "page_items": 100, "page_bytes": len(page1),
        "mrss_page_warm": warm, "static_same_bytes": static,
        "warm_vs_static_p50_ratio": round(warm["p50_ms"] / static["p50_ms"], 2),
        "mrss_304": not_modified, "mrss_page_warm_gzip": warm_gzip,
        "mrss_page_cold_p50_ms": round(statistics.median(cold_samples), 3),
        "mrss_all_1000_items_10_pages_p50_ms": round(statistics.median(walk), 3),
        "build_mrss_1000_items_one_document_p50_ms": round(statistics.median(build), 3),
        "build_mrss_1000_items_bytes": len(doc),
        "target_p50_ms": 20,
    }
    (results_dir / "syndication.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


async def app_pool_rows(url: str) -> list[asyncpg.Record]:
    pool = await create_pool(url, max_size=1)  # the app's pool: its jsonb codec decodes `outputs`
    try:
        return await pool.fetch("SELECT * FROM assets ORDER BY created_at DESC")
    finally:
        await pool.close()
