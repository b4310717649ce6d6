"""Leftovers after kills: a worker SIGKILLed in the middle of writing an object while publishing leaves a temp
file in the local store's .tmp/ and its job's scratch folder; the next worker sweeps the temp file at start,
the retried job replaces its scratch, and the store ends clean (no temp files, no scratch) with the asset ready.

Stated bound: clean and ready <= RECOVERY_SECONDS after the second worker starts (lease 2 s + one transcode)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.janitor import sweep_scratch
from onair.core.settings import Settings
from tests.ingest_tools import make_clip, upload, wait_for

ROOT = Path(__file__).resolve().parent.parent.parent
RECOVERY_SECONDS = 90.0


def start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ONAIR_")}, "PYTHONPATH": str(ROOT),
           "ONAIR_DATABASE_URL": settings.database_url or "", "ONAIR_DATA_DIR": str(settings.data_dir),
           "ONAIR_ADMIN_TOKEN": settings.admin_token or "", "ONAIR_SIGNING_KEY": settings.signing_key or "",
           "ONAIR_JOB_LEASE_SECONDS": "2", "ONAIR_LOG_FORMAT": "text"}
    return subprocess.Popen([sys.executable, "-m", "onair.cli", "worker", "--concurrency", "1"], cwd=ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


@pytest.fixture
async def web_only(settings: Settings) -> AsyncIterator[TestClient]:
    app = create_app(settings, settings.database_url or "", run_worker=False)
    async with TestClient(TestServer(app)) as c:
        yield c


def kill_mid_put(worker: subprocess.Popen[bytes], tmp: Path, within: float) -> Path | None:
    """Watch .tmp/ for the worker's own temp file (an object being written); stop the worker while one exists
    and kill it then, so the kill lands inside a write for certain. Returns the file left, or None."""
    prefix = f"put-{worker.pid}-"
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and worker.poll() is None:
        try:
            names = [n for n in os.listdir(tmp) if n.startswith(prefix)]
        except FileNotFoundError:
            names = []
        if names:
            worker.send_signal(signal.SIGSTOP)
            left = [tmp / n for n in names if (tmp / n).exists()]
            if left:
                worker.send_signal(signal.SIGKILL)
                worker.wait(10)
                return left[0]
            worker.send_signal(signal.SIGCONT)  # that write finished meanwhile: wait for the next one
        time.sleep(0.001)
    return None


def leftovers(settings: Settings) -> list[str]:
    tmp = settings.data_dir / "objects" / ".tmp"
    files = [f".tmp/{p.name}" for p in tmp.iterdir() if p.is_file()] if tmp.exists() else []
    scratch = settings.data_dir / "scratch"
    return files + ([f"scratch/{p.name}" for p in scratch.iterdir()] if scratch.exists() else [])


async def test_kill_mid_publish_leaves_the_store_clean(web_only: TestClient, settings: Settings, tmp_path: Path,
                                                       fault_report) -> None:
    clip = make_clip(tmp_path / "clip.mp4", size="640x360", seconds=3)
    log = tmp_path / "workers.log"
    first = start_worker(settings, log)
    second = None
    try:
        asset_id = await upload(web_only, clip.read_bytes())
        left = await asyncio.to_thread(kill_mid_put, first, settings.data_dir / "objects" / ".tmp", 120)
        assert left is not None, f"no write of the worker was caught before it finished:\n{log.read_text()[-2000:]}"
        assert left.exists() and any(n.startswith("scratch/job-") for n in leftovers(settings)), leftovers(settings)
        debris = leftovers(settings)

        second = start_worker(settings, log)
        started = time.monotonic()
        body = await wait_for(web_only, asset_id, within=RECOVERY_SECONDS)
        assert body["status"] == "ready", (body["error"], log.read_text()[-3000:])
        assert not left.exists(), "the killed worker's temp file is still there"
        assert leftovers(settings) == [], leftovers(settings)
        recovered = time.monotonic() - started
        print(f"worker SIGKILL mid-publish left {debris}; clean and ready {recovered:.2f}s after the next worker")
        fault_report("worker SIGKILL mid-publish (inside a write)", "1 transcode", acknowledged=1,
                     recovery_seconds=recovered, bound_seconds=RECOVERY_SECONDS)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
                await asyncio.to_thread(proc.wait, 15)


async def test_scratch_of_dead_jobs_goes_and_of_running_jobs_stays(db: asyncpg.Pool, tmp_path: Path) -> None:
    done = await db.fetchval("INSERT INTO jobs (kind, status) VALUES ('transcode.asset', 'done') RETURNING id")
    expired = await db.fetchval("""INSERT INTO jobs (kind, status, lease_until)
                                   VALUES ('transcode.asset', 'running', now() - interval '1 minute') RETURNING id""")
    running = await db.fetchval("""INSERT INTO jobs (kind, status, lease_until)
                                   VALUES ('transcode.asset', 'running', now() + interval '1 minute') RETURNING id""")
    root = tmp_path / "scratch"
    for name in (f"job-{done}", f"live-{expired}", f"job-{running}", "job-999999999"):
        (root / name).mkdir(parents=True)
        (root / name / "source").write_bytes(b"x" * 1000)
    assert await sweep_scratch(db, root) == 3
    assert sorted(p.name for p in root.iterdir()) == [f"job-{running}"]
