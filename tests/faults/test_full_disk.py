"""A full disk must never publish a corrupt asset as `ready`, nor answer uploads with a bare 500.

Fault: the data dir (local object store, scratch, upload staging) is a 24 MiB tmpfs filled to a few KiB of
headroom after the upload is stored and before a worker starts. Expected: the transcode never reaches
`ready`; it backs off as a transient failure and is then failed with a reason naming the disk; no media object
is left; the original stays; /readyz is not ready (disk); an upload answers 507 with Retry-After. After space
is freed, /retry makes the same asset ready (recovery)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.settings import Settings
from tests.conftest import ADMIN
from tests.faults.conftest import fill
from tests.ingest_tools import make_clip, upload, wait_for

HEADROOM = 48 * 1024


def objects_under(root: Path, prefix: str) -> list[str]:
    base = root / "objects" / prefix
    return sorted(str(p.relative_to(root / "objects")) for p in base.rglob("*") if p.is_file()) if base.exists() \
        else []


async def test_full_disk_fails_the_job_keeps_the_original_and_answers_507(settings: Settings, small_disk: Path,
                                                                        tmp_path: Path, fault_report) -> None:
    settings = settings.with_(data_dir=small_disk, min_free_bytes=1024 * 1024, job_retry_base_seconds=0.2,
                              job_retry_max_seconds=0.5, job_retry_horizon_seconds=3.0)
    clip = make_clip(tmp_path / "clip.mp4", size="320x180", seconds=2)
    async with TestClient(TestServer(create_app(settings, settings.database_url or "", run_worker=False))) as c:
        asset_id = await upload(c, clip.read_bytes())
        filler = fill(small_disk, HEADROOM)

        ready = await c.get("/readyz")
        body = await ready.json()
        assert ready.status == 503 and body["checks"]["disk"].startswith("failing"), body
        assert ready.headers["Cache-Control"] == "no-store"

        form = FormData()
        form.add_field("file", clip.read_bytes(), filename="clip.mp4", content_type="video/mp4")
        resp = await c.post("/api/v1/assets", data=form, headers=ADMIN)
        problem = await resp.json(content_type=None)
        assert resp.status == 507, problem
        assert resp.headers["Content-Type"].startswith("application/problem+json")
        assert int(resp.headers["Retry-After"]) > 0 and "disk space" in problem["detail"]

    async with TestClient(TestServer(create_app(settings, settings.database_url or ""))) as c:
        seen: set[str] = set()
        async with asyncio.timeout(90):
            while True:  # watch every status on the way: `ready` must never appear
                body = await (await c.get(f"/api/v1/assets/{asset_id}", headers=ADMIN)).json()
                seen.add(body["status"])
                if body["status"] in ("ready", "failed"):
                    break
                await asyncio.sleep(0.1)
        assert "ready" not in seen, body
        assert "disk" in body["error"], body["error"]
        assert objects_under(small_disk, f"assets/{asset_id}") == []
        assert objects_under(small_disk, f"sources/{asset_id}") == [f"sources/{asset_id}/original"]

        filler.unlink()  # the operator frees space: the same upload now transcodes
        freed = time.monotonic()
        assert (await c.get("/readyz")).status == 200
        assert (await c.post(f"/api/v1/assets/{asset_id}/retry", headers=ADMIN)).status == 202
        body = await wait_for(c, asset_id, within=90)
        assert body["status"] == "ready", body
        fault_report("data dir full (24 MiB tmpfs, 48 KiB left)", "1 upload stored, 1 transcode, 1 upload",
                     acknowledged=1, statuses={503: 1, 507: 1}, recovery_seconds=time.monotonic() - freed)
