"""The purge hook posts the asset's tags to the configured webhook (a real local HTTP receiver)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core import job_kinds
from onair.core.db.pool import POOL
from onair.core.jobs import Job, JobContext, Resources
from onair.core.settings import Settings
from onair.core.storage import LocalStore
from streaming import catalog
from streaming.catalog.tasks import HANDLERS
from streaming.delivery.purge import purge_asset
from tests.conftest import ADMIN
from tests.helpers import make_asset
from tests.tools import free_port


async def test_purge_webhook_receives_tags(settings: Settings, caplog) -> None:
    received: asyncio.Queue = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        raw = await request.read()
        expected = "sha256=" + hmac.new(b"test-signing-key-not-secret", raw, hashlib.sha256).hexdigest()
        assert request.headers["X-Onair-Signature"] == expected
        await received.put((request.headers.get("Content-Type"), json.loads(raw)))
        return web.json_response({"ok": True})

    receiver = web.Application()
    receiver.router.add_post("/purge", hook)
    async with TestServer(receiver) as server:
        app = create_app(settings.with_(purge_webhook_url=str(server.make_url("/purge"))),
                         settings.database_url or "", run_worker=False)
        caplog.set_level(logging.INFO, logger="onair.purge")
        assert await purge_asset(app, "abc234", "deleted") is True
        ctype, body = await asyncio.wait_for(received.get(), 5)
        assert ctype.startswith("application/json")
        assert body["tags"] == ["asset-abc234"] and body["asset_id"] == "abc234"
        assert body["reason"] == "deleted" and body["paths"] == ["/media/abc234/*"]
        assert await purge_asset(app, "abc234", "unpublished") is True
        assert (await asyncio.wait_for(received.get(), 5))[1]["reason"] == "unpublished"
        assert any("purge sent" in r.getMessage() for r in caplog.records)


async def test_purge_failures_are_logged_not_raised(settings: Settings, caplog) -> None:
    caplog.set_level(logging.INFO, logger="onair.purge")
    dead = create_app(settings.with_(purge_webhook_url=f"http://127.0.0.1:{free_port()}/purge"),
                      settings.database_url or "", run_worker=False)
    assert await purge_asset(dead, "abc234", "deleted") is False
    assert any("purge failed" in r.getMessage() for r in caplog.records)
    unset = create_app(settings, settings.database_url or "", run_worker=False)
    assert await purge_asset(unset, "abc234", "deleted") is False


async def test_unpublish_and_delete_through_the_api_purge_the_cdn(settings: Settings) -> None:
    received: asyncio.Queue = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await received.put(json.loads(await request.read()))
        return web.json_response({"ok": True})

    receiver = web.Application()
    receiver.router.add_post("/purge", hook)
    async with TestServer(receiver) as server:
        app = create_app(settings.with_(purge_webhook_url=str(server.make_url("/purge"))),
                         settings.database_url or "", run_worker=False)
        async with TestClient(TestServer(app)) as client:
            await make_asset(app[POOL], "purgeme234")
            resp = await client.patch("/api/v1/assets/purgeme234", json={"title": "only a title"}, headers=ADMIN)
            assert resp.status == 200 and received.empty()  # metadata only: nothing to purge
            resp = await client.patch("/api/v1/assets/purgeme234", json={"visibility": "private"}, headers=ADMIN)
            assert resp.status == 200
            first = await asyncio.wait_for(received.get(), 5)
            assert first["tags"] == ["asset-purgeme234"] and first["reason"] == "unpublished"
            assert (await client.delete("/api/v1/assets/purgeme234", headers=ADMIN)).status == 204
            assert (await asyncio.wait_for(received.get(), 5))["reason"] == "deleted"


async def test_a_re_transcode_purges_with_the_key_the_worker_was_given(settings: Settings, db: asyncpg.Pool,
                                                                       tmp_path) -> None:
    """The catalogue's on_done handler signs the purge with the worker's key (not one re-read from disk)."""
    received: asyncio.Queue = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        raw = await request.read()
        await received.put((request.headers["X-Onair-Signature"], raw))
        return web.json_response({"ok": True})

    receiver = web.Application()
    receiver.router.add_post("/purge", hook)
    async with TestServer(receiver) as server:
        # no signing key in the settings and an empty data dir: only Resources.signing_key can sign
        worker_settings = settings.with_(purge_webhook_url=str(server.make_url("/purge")), signing_key=None,
                                         data_dir=tmp_path / "empty")
        asset_id = await make_asset(db)
        async with db.acquire() as conn, conn.transaction():   # a re-transcode of a published asset
            job_id = await catalog.start_transcode(conn, asset_id, catalog.source_key(asset_id), 1000)
        done = {"job_id": job_id, "status": "done", "payload": {"asset_id": asset_id},
                "result": {"facts": {}, "outputs": {"hls": "hls/master.m3u8"}, "duration": 2.0}}
        job = Job(1, job_kinds.CATALOG_TRANSCODED, "default", done, 1, 1, None, datetime.now(UTC))
        resources = Resources(worker_settings, db, LocalStore(tmp_path / "store"), signing_key=b"worker-key")
        result = await HANDLERS[job_kinds.CATALOG_TRANSCODED](JobContext(job, resources))
        assert result == {"asset_id": asset_id, "status": "ready"}
        signature, raw = await asyncio.wait_for(received.get(), 5)
        assert signature == "sha256=" + hmac.new(b"worker-key", raw, hashlib.sha256).hexdigest()
        assert json.loads(raw)["reason"] == "re-transcoded"
        assert not (tmp_path / "empty").exists()
