"""The purge hook posts the asset's tags to the configured webhook (a real local HTTP receiver)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging

from aiohttp import web
from aiohttp.test_utils import TestServer

from onair.app import create_app
from onair.core.settings import Settings
from streaming.delivery.purge import purge_asset


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
    from tests.tools import free_port

    caplog.set_level(logging.INFO, logger="onair.purge")
    dead = create_app(settings.with_(purge_webhook_url=f"http://127.0.0.1:{free_port()}/purge"),
                      settings.database_url or "", run_worker=False)
    assert await purge_asset(dead, "abc234", "deleted") is False
    assert any("purge failed" in r.getMessage() for r in caplog.records)
    unset = create_app(settings, settings.database_url or "", run_worker=False)
    assert await purge_asset(unset, "abc234", "deleted") is False


async def test_unpublish_and_delete_through_the_api_purge_the_cdn(settings: Settings) -> None:
    from aiohttp.test_utils import TestClient

    from onair.core.db.pool import POOL
    from tests.conftest import ADMIN

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
            await app[POOL].execute("INSERT INTO assets (id, title, status) VALUES ('purgeme234', 'x', 'ready')")
            resp = await client.patch("/api/v1/assets/purgeme234", json={"title": "only a title"}, headers=ADMIN)
            assert resp.status == 200 and received.empty()  # metadata only: nothing to purge
            resp = await client.patch("/api/v1/assets/purgeme234", json={"visibility": "private"}, headers=ADMIN)
            assert resp.status == 200
            first = await asyncio.wait_for(received.get(), 5)
            assert first["tags"] == ["asset-purgeme234"] and first["reason"] == "unpublished"
            assert (await client.delete("/api/v1/assets/purgeme234", headers=ADMIN)).status == 204
            assert (await asyncio.wait_for(received.get(), 5))["reason"] == "deleted"
