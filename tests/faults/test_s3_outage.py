"""S3 that refuses connections or blackholes them, in front of a real S3 server (moto) through a TCP proxy.

1. During a transcode: the job backs off as a transient failure for S3_OUTAGE seconds and the asset is ready
   once S3 returns; the original is never deleted.
2. During origin reads: /media answers 503 with no-store and Retry-After within origin_storage_timeout + 1 s
   (refused and blackholed alike), never a 500 or a hang; reads succeed again <= 5 s after S3 returns."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.settings import Settings
from onair.core.storage import STORE
from tests.conftest import ADMIN
from tests.faults.params import S3_OUTAGE
from tests.faults.proxy import FaultProxy
from tests.ingest_tools import make_clip, upload, wait_for

ORIGIN_TIMEOUT = 2.0
RECOVERY_SECONDS = 5.0


@pytest.fixture
async def proxy(s3_endpoint: str) -> AsyncIterator[FaultProxy]:
    parts = urlsplit(s3_endpoint)
    p = FaultProxy(parts.hostname or "127.0.0.1", parts.port or 80)
    await p.start()
    yield p
    await p.close()


def via(settings: Settings, proxy: FaultProxy) -> Settings:
    return settings.with_(s3_endpoint=proxy.url, s3_connect_timeout=1.0, s3_read_timeout=1.5, s3_max_attempts=2,
                          origin_storage_timeout=ORIGIN_TIMEOUT, job_retry_base_seconds=0.3,
                          job_retry_max_seconds=1.0, job_retry_horizon_seconds=600.0)


async def test_s3_outage_during_transcode_delays_but_never_loses(s3_settings: Settings, proxy: FaultProxy,
                                                                 tmp_path: Path, fault_report) -> None:
    settings = via(s3_settings, proxy)
    clip = make_clip(tmp_path / "clip.mp4", size="320x180", seconds=2)
    async with TestClient(TestServer(create_app(settings, settings.database_url or "", run_worker=False))) as c:
        asset_id = await upload(c, clip.read_bytes())
    await proxy.set_mode("refuse")
    async with TestClient(TestServer(create_app(settings, settings.database_url or ""))) as c:
        await asyncio.sleep(S3_OUTAGE / 2)  # the worker claims the job and fails against a refusing S3
        await proxy.set_mode("blackhole")
        await asyncio.sleep(S3_OUTAGE / 2)
        body = await (await c.get(f"/api/v1/assets/{asset_id}", headers=ADMIN)).json()
        assert body["status"] not in ("failed", "ready"), body
        await proxy.set_mode("pass")
        back = time.monotonic()
        body = await wait_for(c, asset_id, within=120)
        assert body["status"] == "ready", body
        store = c.app[STORE]
        assert await store.list(f"sources/{asset_id}/") == [f"sources/{asset_id}/original"]
        fault_report(f"S3 refuse+blackhole {S3_OUTAGE:.0f}s during transcode", "1 upload, 1 transcode",
                     acknowledged=1, recovery_seconds=time.monotonic() - back)


async def _get(c: TestClient, path: str) -> tuple[int, float, dict[str, str]]:
    start = time.monotonic()
    resp = await c.get(path)
    await resp.read()
    return resp.status, time.monotonic() - start, dict(resp.headers)


async def test_origin_answers_503_fast_while_s3_is_down(s3_settings: Settings, proxy: FaultProxy,
                                                        tmp_path: Path, fault_report) -> None:
    settings = via(s3_settings, proxy)
    clip = make_clip(tmp_path / "clip.mp4", size="320x180", seconds=2)
    async with TestClient(TestServer(create_app(settings, settings.database_url or ""))) as c:
        asset_id = await upload(c, clip.read_bytes())
        body = await wait_for(c, asset_id, within=120)
        assert body["status"] == "ready", body
        keys = [k for k in await c.app[STORE].list(f"assets/{asset_id}/cmaf/")]
        seen, fresh = (f"/media/{k.removeprefix('assets/')}" for k in keys[:2])
        statuses: dict[int, int] = {}
        slowest = 0.0
        assert (await _get(c, seen))[0] == 200  # its metadata is now cached; `fresh` is not
        for mode in ("refuse", "blackhole"):
            await proxy.set_mode(mode)
            for path in (seen, fresh):
                status, took, headers = await _get(c, path)
                assert status in (502, 503, 504), (mode, path, status)
                statuses[status] = statuses.get(status, 0) + 1
                slowest = max(slowest, took)
                assert took <= ORIGIN_TIMEOUT + 1.0, f"{mode}: answered after {took:.1f}s"
                assert headers["Cache-Control"] == "no-store" and int(headers["Retry-After"]) > 0
                print(f"s3 {mode}: {path.rsplit('/', 1)[-1]} -> {status} in {took:.2f}s")
            await proxy.set_mode("pass")
        back = time.monotonic()
        while (await _get(c, fresh))[0] != 200:
            assert time.monotonic() - back < RECOVERY_SECONDS
            await asyncio.sleep(0.1)
        recovered = time.monotonic() - back
        print(f"s3 back: origin reads OK {recovered:.2f}s later")
        fault_report(f"S3 refuse, then blackhole (origin, slowest {slowest:.1f}s)", "4 segment GETs (cached+not)",
                     statuses=statuses, recovery_seconds=recovered, bound_seconds=RECOVERY_SECONDS)
