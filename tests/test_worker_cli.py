"""`onair worker` runs jobs from the shared queue and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from onair.core import jobs

ROOT = Path(__file__).resolve().parent.parent


async def test_worker_command_processes_jobs_and_stops_on_sigterm(db: asyncpg.Pool, database_url: str,
                                                                  tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONAIR_")}
    env.update(ONAIR_DATABASE_URL=database_url, ONAIR_DATA_DIR=str(tmp_path), PYTHONPATH=str(ROOT),
               ONAIR_LOG_FORMAT="text")
    proc = subprocess.Popen([sys.executable, "-m", "onair.cli", "worker", "--concurrency", "1"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        job_id = await jobs.enqueue(db, "no.such.kind")
        deadline = time.monotonic() + 30
        while await db.fetchval("SELECT status FROM jobs WHERE id = $1", job_id) != "dead":
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "worker never picked the job"
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "no handler for job kind 'no.such.kind'" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
