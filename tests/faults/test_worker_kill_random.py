"""kill -9 of a job worker at random points (probing, encoding, packaging, publishing) WORKER_KILLS times, a new
upload each round, then one worker left to finish.

Asserts: every upload ends ready (or, if one job was killed past its attempts, failed with its original kept,
never deleted); every ready asset's playlists reference only objects that exist (nothing half-published);
one transcode job per asset (none lost or doubled); the store clean afterwards (no temp files, no scratch).
Stated bound: all settled <= RECOVERY_SECONDS after the last worker starts. The seed is printed (set
ONAIR_FAULT_SEED to replay a run)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path

import asyncpg
from aiohttp.test_utils import TestClient

from onair.core.settings import Settings
from tests.conftest import ADMIN
from tests.faults.params import FULL, WORKER_KILLS
from tests.faults.test_worker_leftovers import leftovers, start_worker, web_only  # noqa: F401 (fixture)
from tests.ingest_tools import make_clip, upload

RECOVERY_SECONDS = 60.0 + (60.0 if FULL else 0.0)


def playlist_gaps(objects: Path, asset_id: str) -> list[str]:
    """Every URI the HLS playlists of an asset name (variants, init segments, media segments) that is missing."""
    root = objects / "assets" / asset_id / "hls"
    missing, todo, seen = [], [root / "master.m3u8"], set()
    while todo:
        playlist = todo.pop()
        if playlist in seen:
            continue
        seen.add(playlist)
        if not playlist.exists():
            missing.append(str(playlist.relative_to(objects)))
            continue
        for line in playlist.read_text().splitlines():
            uri = line if line and not line.startswith("#") else None
            if 'URI="' in line:
                uri = line.split('URI="', 1)[1].split('"', 1)[0]
            if uri is None or "://" in uri:
                continue
            target = (playlist.parent / uri.split("?", 1)[0]).resolve()
            if target.suffix == ".m3u8":
                todo.append(target)
            elif not target.exists():
                missing.append(str(target.relative_to(objects)))
    return missing


async def status_of(client: TestClient, asset_id: str) -> dict:
    resp = await client.get(f"/api/v1/assets/{asset_id}", headers=ADMIN)
    return await resp.json()


async def test_worker_killed_at_random_points(web_only: TestClient, settings: Settings, db: asyncpg.Pool,  # noqa: F811
                                             tmp_path: Path, fault_report) -> None:
    seed = int(os.environ.get("ONAIR_FAULT_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    clip = make_clip(tmp_path / "clip.mp4", size="640x360", seconds=8).read_bytes()
    log = tmp_path / "workers.log"
    assets: list[str] = []
    stages: list[str] = []
    procs = []
    try:
        for _ in range(WORKER_KILLS):
            assets.append(await upload(web_only, clip))
            worker = start_worker(settings, log)
            procs.append(worker)
            # A random point of its work, chosen by progress rather than by time (a quiet machine finishes a short
            # clip before a timed kill lands): probing (threshold 0) through most of the encode, or packaging.
            threshold = rng.choice([0.0, rng.uniform(2.0, 85.0), 95.0])
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                body = await status_of(web_only, assets[-1])
                running = body["status"] not in ("queued", "ready", "failed")
                if not running and body["status"] != "queued":
                    break
                if running and (body["progress"] >= threshold or body["status"] == "packaging"):
                    break
                await asyncio.sleep(0.02)
            stages.append(body["status"])  # where the kill lands, about
            worker.send_signal(signal.SIGKILL)
            await asyncio.to_thread(worker.wait, 10)

        last = start_worker(settings, log)
        procs.append(last)
        started = time.monotonic()
        final: dict[str, dict] = {}
        while len(final) < len(assets):
            assert time.monotonic() - started < RECOVERY_SECONDS, (final, log.read_text()[-3000:])
            for asset_id in assets:
                body = await status_of(web_only, asset_id)
                if body["status"] in ("ready", "failed"):
                    final[asset_id] = body
            await asyncio.sleep(0.2)
        # The sweep of dead jobs' scratch runs at start and periodically; wait for the store to settle.
        while leftovers(settings) and time.monotonic() - started < RECOVERY_SECONDS:
            await asyncio.sleep(0.2)
        recovered = time.monotonic() - started

        objects = settings.data_dir / "objects"
        ready = [a for a, b in final.items() if b["status"] == "ready"]
        failed = [a for a, b in final.items() if b["status"] == "failed"]
        for asset_id in ready:
            assert playlist_gaps(objects, asset_id) == [], asset_id
        for asset_id in failed:  # only a job killed past its attempts may fail; its original stays
            assert (objects / "sources" / asset_id / "original").exists(), final[asset_id]
        jobs = await db.fetch("""SELECT payload->>'asset_id' AS asset_id, count(*) AS n FROM jobs
                                 WHERE kind = 'transcode.asset' GROUP BY 1""")
        assert {r["asset_id"]: r["n"] for r in jobs} == dict.fromkeys(assets, 1)
        assert ready and all("too many times" in final[a]["error"] for a in failed), final
        # A worker may have been killed while a leftover sweep of its own was in flight; the next sweep ends it.
        assert leftovers(settings) == [], leftovers(settings)
        assert any(s != "ready" for s in stages), f"every kill came after the work was done: {stages}"
        print(f"worker kill -9 x{WORKER_KILLS} (seed {seed}) at {stages}: {len(ready)} ready, "
              f"{len(failed)} failed with original kept; settled {recovered:.2f}s after the last worker started")
        fault_report(f"worker kill -9 at random points x{WORKER_KILLS}", f"{len(assets)} uploads",
                     acknowledged=len(assets), lost=0, doubled=0, recovery_seconds=recovered,
                     bound_seconds=RECOVERY_SECONDS)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                await asyncio.to_thread(proc.wait, 15)
