"""URL pulls from dripping sources neither hold the transcode slots nor a pull slot for long: pulls run in their
own pool, and one slower than the minimum rate fails."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.settings import Settings
from tests.conftest import ADMIN
from tests.ingest_tools import make_clip, upload, wait_for


@pytest.fixture
async def dripping() -> AsyncIterator[str]:
    """A source that sends one byte every half second, for ever."""

    async def drip(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4", "Content-Length": str(10 ** 9)})
        await resp.prepare(request)
        while True:
            await resp.write(b"\0")
            await asyncio.sleep(0.5)

    app = web.Application()
    app.router.add_get("/slow.mp4", drip)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/slow.mp4"))
    await server.close()


async def test_dripping_pulls_do_not_delay_an_upload(settings: Settings, dripping: str, tmp_path) -> None:
    s = settings.with_(allow_private_urls=True, job_concurrency=1, url_pull_concurrency=2,
                       url_pull_min_bytes_per_second=1000, url_pull_rate_window_seconds=8.0)
    clip = make_clip(tmp_path / "clip.mp4", size="160x90", seconds=1).read_bytes()
    async with TestClient(TestServer(create_app(s, s.database_url or ""))) as c:
        pulls = []
        for i in range(3):  # more dripping sources than pull slots
            resp = await c.post("/api/v1/assets", json={"title": f"slow {i}", "source_url": dripping}, headers=ADMIN)
            assert resp.status == 202, await resp.text()
            pulls.append((await resp.json())["id"])
        await asyncio.sleep(0.5)  # let the pulls take their slots first (the point of the test)
        # sharing one slot with them, the upload would wait 3 x 8 s for the drips to fail

        started = time.monotonic()
        asset_id = await upload(c, clip)
        await wait_for(c, asset_id, ("probing", "transcoding", "packaging", "ready"), within=15)
        assert time.monotonic() - started < 15  # a few seconds on a quiet machine: 3x margin for a busy one

        for pid in pulls:  # and the drip itself ends: below the minimum rate, the pull fails with a reason
            body = await wait_for(c, pid, ("failed",), within=60)
            assert "bytes/s" in (body.get("error") or ""), body


async def test_one_caller_cannot_fill_the_pull_pool(settings: Settings, dripping: str) -> None:
    s = settings.with_(allow_private_urls=True, url_pull_per_caller=2, url_pull_min_bytes_per_second=0)
    async with TestClient(TestServer(create_app(s, s.database_url or "", run_worker=False))) as c:
        for i in range(2):
            resp = await c.post("/api/v1/assets", json={"title": f"slow {i}", "source_url": dripping}, headers=ADMIN)
            assert resp.status == 202, await resp.text()
        resp = await c.post("/api/v1/assets", json={"title": "one more", "source_url": dripping}, headers=ADMIN)
        assert resp.status == 429 and resp.content_type == "application/problem+json"
        assert (await resp.json())["type"] == "/problems/url-pulls-busy" and resp.headers["Retry-After"]
