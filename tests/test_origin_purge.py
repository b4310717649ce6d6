"""CDN purges are `cdn.purge` events delivered by the webhooks machinery to ONAIR_PURGE_WEBHOOK_URL (a real
local receiver): Standard Webhooks signatures (checked with the spec's algorithm), retries with the same
webhook-id, the payload the purge hook always had, and an endpoint that follows the configuration."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
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
from tests.conftest import ADMIN
from tests.helpers import make_asset
from tests.test_webhooks import Receiver, verify

SIGNING_KEY = b"test-signing-key-not-secret"  # the `settings` fixture's


def derived_secret() -> str:
    """What deploy/README.md tells the operator: whsec_ + base64(HMAC-SHA256(signing key, "onair purge webhook"))."""
    return "whsec_" + base64.b64encode(hmac.new(SIGNING_KEY, b"onair purge webhook", hashlib.sha256).digest()).decode()


@pytest.fixture
async def purging(settings: Settings) -> AsyncIterator[tuple[TestClient, Receiver]]:
    """The app (with its worker) configured with a purge URL on loopback, no ONAIR_ALLOW_PRIVATE_URLS needed:
    the operator's own configuration is trusted."""
    rec = Receiver(fail_first=2)
    receiving = web.Application()
    receiving.router.add_post("/purge", rec.handle)
    async with TestClient(TestServer(receiving, host="127.0.0.1")) as hook:
        fast = settings.with_(purge_webhook_url=str(hook.make_url("/purge")), webhook_retry_schedule="0.1,0.1,0.1")
        async with TestClient(TestServer(create_app(fast, fast.database_url or ""))) as client:
            yield client, rec


async def _accepted(rec: Receiver, n: int) -> list[tuple[dict[str, str], dict]]:
    async with asyncio.timeout(30):
        while len(rec.accepted()) < n:
            await asyncio.sleep(0.05)
    return rec.accepted()


async def test_unpublish_and_delete_purge_through_signed_retried_webhooks(purging, db: asyncpg.Pool) -> None:
    client, rec = purging
    endpoints = await (await client.get("/api/v1/webhooks", headers=ADMIN)).json()
    purge = next(e for e in endpoints["items"] if e["id"] == "ep_purge")
    assert purge["events"] == ["cdn.purge"] and purge["enabled"] and purge["url"].endswith("/purge")

    await make_asset(client.app[POOL], "purgeme234")
    resp = await client.patch("/api/v1/assets/purgeme234", json={"title": "only a title"}, headers=ADMIN)
    assert resp.status == 200  # metadata only: nothing to purge
    resp = await client.patch("/api/v1/assets/purgeme234", json={"visibility": "private"}, headers=ADMIN)
    assert resp.status == 200
    assert (await client.delete("/api/v1/assets/purgeme234", headers=ADMIN)).status == 204

    # each purged now and again once no origin process or kept offload decision can still answer as before
    accepted = await _accepted(rec, 4)
    (first_headers, first) = accepted[0]
    second = next(body for _, body in accepted if body["data"]["reason"] != "unpublished")
    assert sorted(body["data"]["reason"] for _, body in accepted) == ["deleted"] * 2 + ["unpublished"] * 2
    # The first event failed twice before it was taken, each time under the same id (receivers deduplicate).
    assert [h["webhook-id"] for h, _ in rec.seen[:3]] == [first_headers["webhook-id"]] * 3
    assert first["type"] == "cdn.purge" and second["type"] == "cdn.purge"
    assert first["data"] == {"tags": ["asset-purgeme234"], "asset_id": "purgeme234", "reason": "unpublished",
                             "paths": ["/media/purgeme234/*"]}
    for headers, body in rec.seen[2:]:
        assert verify(derived_secret(), headers, body)
    async with asyncio.timeout(10):  # a delivery's attempt is recorded just after the receiver answered
        while True:
            log = await (await client.get("/api/v1/webhooks/ep_purge/deliveries", headers=ADMIN)).json()
            if all(d["attempts"] for d in log["items"]):
                break
            await asyncio.sleep(0.05)
    assert sorted(d["attempts"] for d in log["items"]) == [1, 1, 1, 3]


async def test_a_re_transcode_purges_in_the_transaction_that_publishes(settings: Settings, db: asyncpg.Pool,
                                                                        tmp_path) -> None:
    """The catalogue's on_done handler publishes the purge with the asset's `ready`: both or neither."""
    asset_id = await make_asset(db)
    async with db.acquire() as conn, conn.transaction():   # a re-transcode of a published asset
        job_id = await catalog.start_transcode(conn, asset_id, catalog.source_key(asset_id), 1000)
    done = {"job_id": job_id, "status": "done", "payload": {"asset_id": asset_id},
            "result": {"facts": {}, "outputs": {"hls": "hls/master.m3u8"}, "duration": 2.0}}
    job = Job(1, job_kinds.CATALOG_TRANSCODED, "default", done, 1, 1, None, datetime.now(UTC))
    resources = Resources(settings, db, LocalStore(tmp_path / "store"))
    result = await HANDLERS[job_kinds.CATALOG_TRANSCODED](JobContext(job, resources))
    assert result == {"asset_id": asset_id, "status": "ready"}
    rows = await db.fetch("SELECT payload FROM jobs WHERE kind = $1 ORDER BY id", job_kinds.EVENT_PUBLISHED)
    events = [json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"] for r in rows]
    purge = [e for e in events if e["type"] == "cdn.purge"]
    assert [e["data"]["reason"] for e in purge] == ["re-transcoded"] and purge[0]["data"]["asset_id"] == asset_id


async def test_the_purge_endpoint_follows_the_configuration(settings: Settings, db: asyncpg.Pool) -> None:
    async def start(s: Settings) -> None:
        async with TestClient(TestServer(create_app(s, s.database_url or "", run_worker=False))):
            pass

    await start(settings.with_(purge_webhook_url="https://cdn-adapter.example/purge",
                               purge_webhook_secret="whsec_" + base64.b64encode(b"k" * 24).decode()))
    row = await db.fetchrow("SELECT * FROM webhook_endpoints WHERE id = 'ep_purge'")
    assert row["url"] == "https://cdn-adapter.example/purge" and row["disabled_at"] is None
    assert row["secret"] == "whsec_" + base64.b64encode(b"k" * 24).decode()
    await start(settings)  # the setting removed: disabled, its delivery log kept
    row = await db.fetchrow("SELECT * FROM webhook_endpoints WHERE id = 'ep_purge'")
    assert row["disabled_at"] is not None and "ONAIR_PURGE_WEBHOOK_URL" in row["disabled_reason"]
    await start(settings.with_(purge_webhook_url="https://cdn-adapter.example/purge"))  # set again
    row = await db.fetchrow("SELECT * FROM webhook_endpoints WHERE id = 'ep_purge'")
    assert row["disabled_at"] is None and row["secret"] == derived_secret()
