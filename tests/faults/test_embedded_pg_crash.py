"""The embedded PostgreSQL crashes (SIGKILL of the postmaster) under `onair serve` on the embedded defaults.

Stated behaviour: while it is down, reads answer 503 with Retry-After (never 500), ready media keeps playing
from storage with metadata cached at most ONAIR_ORIGIN_STALE_METADATA_SECONDS, /healthz stays 200 (onair heals
itself); the server is restarted on the same port and reads succeed again <= RECOVERY_SECONDS after the kill,
with every acknowledged vote kept. A crash loop (more than the restart limit within the window) stops the
restarts and makes /healthz fail, so the orchestrator restarts onair."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.db.embedded import EmbeddedPostgres, running
from onair.core.db.migrate import migrate_url
from onair.core.db.pool import create_pool
from onair.core.settings import Settings
from streaming.catalog.repository import media_prefix
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.device_helpers import mint_device
from tests.helpers import OnairServer, make_asset

RECOVERY_SECONDS = 15.0
PLAYLIST = b"#EXTM3U\n#EXT-X-VERSION:7\n"


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under pytest's 0700 tmp dir: the embedded server runs as `nobody` when we are root.
    path = Path(tempfile.mkdtemp(prefix="onair-pgcrash-"))
    os.chmod(path, 0o755)
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)


def postmaster(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


async def test_reads_503_media_plays_and_postgres_comes_back(data_dir: Path, fault_report) -> None:
    server = OnairServer(data_dir, {"ONAIR_ADMIN_TOKEN": ADMIN_TOKEN, "ONAIR_LOG_LEVEL": "WARNING"},
                         args=("--no-sample", "--no-worker"))
    server.start()
    statuses: Counter[int] = Counter()
    try:
        await server.ready(90)
        dsn = running(data_dir / "pg")
        assert dsn is not None
        pool = await create_pool(dsn, max_size=1)
        try:
            asset_id = await make_asset(pool)
        finally:
            await pool.close()
        playlist = data_dir / "objects" / media_prefix(asset_id) / "hls" / "master.m3u8"
        playlist.parent.mkdir(parents=True)
        playlist.write_bytes(PLAYLIST)
        media = f"{server.url}/media/{asset_id}/hls/master.m3u8"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as s:
            async with s.post(server.url + "/api/v1/polls", headers=ADMIN,
                              json={"question": "Crash?", "options": ["yes", "no"]}) as r:
                pid = (await r.json())["id"]
            async with s.post(f"{server.url}/api/v1/polls/{pid}/open", headers=ADMIN) as r:
                assert r.status == 200
            acked = 0
            for _ in range(10):
                device = await mint_device(s, server.url)
                async with s.post(f"{server.url}/api/v1/polls/{pid}/votes",
                                  json={"device_id": device, "option_id": 2}) as r:
                    acked += r.status in (200, 201)
            results = f"{server.url}/api/v1/polls/{pid}/results"
            async with s.get(media) as r:
                assert r.status == 200 and await r.read() == PLAYLIST

            old = postmaster(data_dir / "pg")
            os.kill(old, signal.SIGKILL)
            killed = time.monotonic()
            recovered = None
            media_statuses: Counter[int] = Counter()
            while time.monotonic() - killed < RECOVERY_SECONDS:
                async with s.get(results) as r:
                    statuses[r.status] += 1
                    if r.status == 503:
                        assert "Retry-After" in r.headers
                    elif r.status == 200 and statuses[503]:
                        recovered = time.monotonic() - killed
                        assert (await r.json())["total"] == acked
                        break
                    else:
                        assert r.status == 200, (r.status, await r.text(), server.output()[-3000:])
                async with s.get(media) as r:
                    media_statuses[r.status] += 1
                    assert r.status == 200 and await r.read() == PLAYLIST, r.status
                async with s.get(server.url + "/healthz") as r:
                    assert r.status == 200, "a crash onair recovers from by itself is not a liveness failure"
                await asyncio.sleep(0.05)
            assert statuses[503] >= 1, "the database was never seen down"
            assert recovered is not None, f"reads not back {RECOVERY_SECONDS}s after the kill: {statuses}"
            assert postmaster(data_dir / "pg") != old
            print(f"embedded PostgreSQL SIGKILL: reads back after {recovered:.2f}s; statuses {dict(statuses)}, "
                  f"media {dict(media_statuses)}")
            fault_report("embedded postgres SIGKILL", f"{acked} votes, results + media reads", acknowledged=acked,
                         statuses={k: v for k, v in statuses.items() if k >= 400}, recovery_seconds=recovered,
                         bound_seconds=RECOVERY_SECONDS)
    finally:
        assert server.stop() == 0, server.output()[-3000:]


async def test_crash_loop_stops_restarts_and_fails_liveness(data_dir: Path) -> None:
    pg = EmbeddedPostgres(data_dir / "pg")
    pg.restart_limit, pg.restart_first_delay = 2, 0.1  # a short loop; the default is 5 exits within 60 s
    dsn = pg.start()
    await migrate_url(dsn)
    pg.supervise()
    settings = Settings(data_dir=data_dir, admin_token=ADMIN_TOKEN)
    client = TestClient(TestServer(create_app(settings, dsn, run_worker=False)))
    await client.start_server()
    try:
        assert (await client.get("/healthz")).status == 200
        for crash in range(pg.restart_limit + 1):
            old = postmaster(pg.pgdata)
            os.kill(old, signal.SIGKILL)
            if crash < pg.restart_limit:  # restarted, on the same port
                deadline = time.monotonic() + RECOVERY_SECONDS
                while pg.restarts <= crash:
                    assert time.monotonic() < deadline, "not restarted"
                    await asyncio.sleep(0.05)
        deadline = time.monotonic() + RECOVERY_SECONDS
        while not pg.gave_up_marker.exists():
            assert time.monotonic() < deadline, "crash loop not detected"
            await asyncio.sleep(0.05)
        resp = await client.get("/healthz")
        assert resp.status == 503, await resp.text()
        assert pg.restarts == pg.restart_limit
    finally:
        await client.close()
        pg.stop()
