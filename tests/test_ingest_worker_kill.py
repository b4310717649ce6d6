"""kill -9 of a worker mid-transcode: the lease expires, another worker retries, the asset becomes ready, and no
manifest is visible before everything it references exists."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from tests.conftest import ADMIN
from tests.ingest_tools import make_clip, upload, wait_for

ROOT = Path(__file__).resolve().parent.parent


def start_worker(settings, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ONAIR_DATABASE_URL": settings.database_url,
           "ONAIR_DATA_DIR": str(settings.data_dir), "ONAIR_ADMIN_TOKEN": settings.admin_token,
           "ONAIR_SIGNING_KEY": settings.signing_key, "ONAIR_JOB_LEASE_SECONDS": "2", "ONAIR_LOG_FORMAT": "text"}
    return subprocess.Popen([sys.executable, "-m", "onair.cli", "worker", "--concurrency", "1"], cwd=ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


@pytest.fixture
async def web_only(settings) -> AsyncIterator[TestClient]:
    app = create_app(settings, settings.database_url or "", run_worker=False)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_killed_worker_job_is_retried_to_ready(web_only, settings, tmp_path, db):
    clip = make_clip(tmp_path / "clip.mp4", size="640x360", seconds=10)
    log = tmp_path / "workers.log"
    first = start_worker(settings, log)
    second = None
    try:
        asset_id = await upload(web_only, clip.read_bytes())
        await wait_for(web_only, asset_id, ("transcoding", "packaging", "ready", "failed"), within=60)
        first.send_signal(signal.SIGKILL)  # no goodbye: the lease is left to expire
        await asyncio.to_thread(first.wait, 10)
        body = (await (await web_only.get(f"/api/v1/assets/{asset_id}", headers=ADMIN)).json())
        assert body["status"] != "ready", "the transcode finished before the kill; make the clip longer"
        master = settings.data_dir / "objects" / f"assets/{asset_id}/hls/master.m3u8"
        mpd = settings.data_dir / "objects" / f"assets/{asset_id}/dash/manifest.mpd"
        assert not master.exists() and not mpd.exists()  # nothing half-published

        second = start_worker(settings, log)
        body = await wait_for(web_only, asset_id, within=120)
        assert body["status"] == "ready", (body["error"], log.read_text()[-3000:])
        attempts = await db.fetchval("SELECT attempts FROM jobs WHERE kind = 'transcode.asset'")
        assert attempts == 2
        assert master.exists() and mpd.exists()
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                await asyncio.to_thread(proc.wait, 15)
