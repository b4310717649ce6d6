"""Webhooks: subscriptions, signed deliveries (checked here with the spec's algorithm written independently of
the library the server uses), retries with the same webhook-id, disabled endpoints, exact poll tallies."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.settings import Settings
from tests.chat_helpers import open_room
from tests.conftest import ADMIN
from tests.device_helpers import mint_device
from tests.ingest_tools import make_clip, upload, wait_for
from tests.test_polls import new_device, new_poll


def verify(secret: str, headers: dict[str, str], body: bytes, tolerance: float = 300) -> bool:
    """Standard Webhooks verification, from the spec: HMAC-SHA256 of `id.timestamp.body` with the base64 key
    after `whsec_`, compared with every `v1,` signature in the header; the timestamp must be recent."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    if abs(time.time() - int(headers["webhook-timestamp"])) > tolerance:
        return False
    return any(hmac.compare_digest(sig.removeprefix("v1,"), expected)
               for sig in headers["webhook-signature"].split() if sig.startswith("v1,"))


@dataclass
class Receiver:
    fail_first: int = 0
    seen: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(({k.lower(): v for k, v in request.headers.items()}, await request.read()))
        if len(self.seen) <= self.fail_first:
            return web.Response(status=503)
        self.arrived.set()
        return web.Response(status=204)

    def accepted(self) -> list[tuple[dict[str, str], dict]]:
        return [(h, json.loads(b)) for h, b in self.seen[self.fail_first:]]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield rec, str(server.make_url("/hook"))
    await server.close()


@pytest.fixture
async def hooked(settings: Settings) -> AsyncIterator[TestClient]:
    """The app with fast redeliveries and permission to call a receiver on loopback."""
    fast = settings.with_(allow_private_urls=True, webhook_retry_schedule="0.1,0.1,0.1,0.1")
    async with TestClient(TestServer(create_app(fast, fast.database_url or ""))) as c:
        yield c


async def subscribe(client: TestClient, url: str, events: list[str]) -> dict:
    resp = await client.post("/api/v1/webhooks", json={"url": url, "events": events}, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["secret"].startswith("whsec_")
    return body


async def settled(client: TestClient, endpoint_id: str) -> dict:
    """The newest delivery once it is no longer pending (the log is written after the receiver answers)."""
    async with asyncio.timeout(30):
        while True:
            log = await (await client.get(f"/api/v1/webhooks/{endpoint_id}/deliveries", headers=ADMIN)).json()
            if log["items"] and log["items"][0]["status"] != "pending":
                return log["items"][0]
            await asyncio.sleep(0.1)


async def test_subscription_validation_and_secret_shown_once(hooked: TestClient, receiver) -> None:
    _, url = receiver
    assert (await hooked.post("/api/v1/webhooks", json={"url": url, "events": ["asset.ready"]})).status == 401
    bad = await hooked.post("/api/v1/webhooks", json={"url": url, "events": ["asset.exploded"]}, headers=ADMIN)
    assert bad.status == 400 and "asset.exploded" in (await bad.json())["detail"]
    bad = await hooked.post("/api/v1/webhooks", json={"url": "ftp://x/y", "events": ["asset.ready"]}, headers=ADMIN)
    assert bad.status == 400 and "url" in (await bad.json())["detail"]
    created = await subscribe(hooked, url, ["asset.ready"])
    listed = await (await hooked.get("/api/v1/webhooks", headers=ADMIN)).json()
    assert [e["id"] for e in listed["items"]] == [created["id"]] and "secret" not in listed["items"][0]
    assert "poll.closed" in listed["event_types"]


async def test_asset_ready_arrives_signed_after_three_failures(hooked: TestClient, receiver, tmp_path) -> None:
    rec, url = receiver
    rec.fail_first = 3
    endpoint = await subscribe(hooked, url, ["asset.ready"])
    clip = make_clip(tmp_path / "c.mp4", size="160x90", seconds=1)
    asset_id = await upload(hooked, clip.read_bytes(), title="Webhook clip")
    assert (await wait_for(hooked, asset_id))["status"] == "ready"
    async with asyncio.timeout(60):
        await rec.arrived.wait()
    assert len(rec.seen) == 4
    assert len({h["webhook-id"] for h, _ in rec.seen}) == 1, "every attempt carries the same webhook-id"
    for headers, body in rec.seen:
        assert verify(endpoint["secret"], headers, body)
        assert not verify(endpoint["secret"], headers, body + b" ")  # a tampered body fails
    (_, event), = rec.accepted()
    assert event["type"] == "asset.ready" and event["data"]["asset_id"] == asset_id
    delivery = await settled(hooked, endpoint["id"])
    assert delivery["status"] == "delivered" and delivery["attempts"] == 4 and delivery["response_code"] == 204


async def test_poll_closed_carries_the_exact_tally_and_disabled_endpoints_get_nothing(
        hooked: TestClient, receiver) -> None:
    rec, url = receiver
    endpoint = await subscribe(hooked, url, ["poll.closed"])
    muted = await subscribe(hooked, url.replace("/hook", "/muted"), ["poll.closed"])
    resp = await hooked.patch(f"/api/v1/webhooks/{muted['id']}", json={"enabled": False}, headers=ADMIN)
    assert resp.status == 200 and (await resp.json())["enabled"] is False
    poll = await new_poll(hooked)
    assert (await hooked.post(f"/api/v1/polls/{poll['id']}/open", headers=ADMIN)).status == 200
    devices = await asyncio.gather(*(new_device(hooked) for _ in range(7)))
    for i, device in enumerate(devices):
        resp = await hooked.post(f"/api/v1/polls/{poll['id']}/votes",
                                 json={"device_id": device, "option_id": 1 + i % 2})
        assert resp.status == 201
    assert (await hooked.post(f"/api/v1/polls/{poll['id']}/close", headers=ADMIN)).status == 200
    async with asyncio.timeout(30):
        await rec.arrived.wait()
    (headers, event), = rec.accepted()
    assert verify(endpoint["secret"], headers, rec.seen[-1][1])
    assert event["type"] == "poll.closed"
    assert event["data"]["total"] == 7
    assert {o["id"]: o["votes"] for o in event["data"]["options"]} == {1: 4, 2: 3, 3: 0}
    log = await (await hooked.get(f"/api/v1/webhooks/{muted['id']}/deliveries", headers=ADMIN)).json()
    assert log["items"] == []


async def test_an_endpoint_that_never_recovers_is_disabled_with_a_reason(hooked: TestClient, receiver) -> None:
    rec, url = receiver
    rec.fail_first = 10_000
    endpoint = await subscribe(hooked, url, ["poll.opened"])
    poll = await new_poll(hooked)
    assert (await hooked.post(f"/api/v1/polls/{poll['id']}/open", headers=ADMIN)).status == 200
    async with asyncio.timeout(30):
        while True:
            state = await (await hooked.get(f"/api/v1/webhooks/{endpoint['id']}", headers=ADMIN)).json()
            if not state["enabled"]:
                break
            await asyncio.sleep(0.1)
    assert "failed 5 times" in state["disabled_reason"]
    assert len(rec.seen) == 5  # the first try and the four redeliveries of the schedule
    failed = await settled(hooked, endpoint["id"])
    assert failed["status"] == "failed"
    # replay after the receiver is fixed: the same message goes out again
    rec.fail_first = 0
    rec.seen.clear()
    await hooked.patch(f"/api/v1/webhooks/{endpoint['id']}", json={"enabled": True}, headers=ADMIN)
    resp = await hooked.post(f"/api/v1/webhooks/{endpoint['id']}/deliveries/{failed['id']}/replay",
                             headers=ADMIN)
    assert resp.status == 202
    async with asyncio.timeout(30):
        await rec.arrived.wait()
    assert rec.seen[0][0]["webhook-id"] == failed["message_id"]


async def test_held_chat_message_and_partner_usage_threshold_arrive(settings: Settings, receiver) -> None:
    """A message waiting for a moderator, and a partner key crossing its daily threshold, reach subscribers."""
    rec, url = receiver
    fast = settings.with_(allow_private_urls=True, webhook_retry_schedule="0.1", partner_usage_threshold=3)
    async with TestClient(TestServer(create_app(fast, fast.database_url or ""))) as client:
        await subscribe(client, url, ["chat.message.held", "partner.usage.threshold"])
        device = await mint_device(client)
        await open_room(client, "newsroom")
        await client.post("/api/v1/chat/newsroom/messages", json={"device_id": device, "nickname": "a", "text": "hi"})
        resp = await client.patch("/api/v1/chat/newsroom", json={"premoderation": True}, headers=ADMIN)
        assert resp.status == 200, await resp.text()
        held = await client.post("/api/v1/chat/newsroom/messages",
                                 json={"device_id": device, "nickname": "a", "text": "please approve"})
        assert held.status == 201 and (await held.json())["status"] == "pending"
        made = await client.post("/api/v1/partners", json={"name": "portal", "scopes": ["assets:read"]},
                                 headers=ADMIN)
        key = (await made.json())["key"]
        for _ in range(4):   # the third request crosses the threshold (the event fires on that one only)
            assert (await client.get("/api/v1/partner/usage", headers={"Authorization": f"Bearer {key}"})).status \
                == 200
        async with asyncio.timeout(30):
            while len(rec.accepted()) < 2:
                await asyncio.sleep(0.1)
        kinds = {e["type"]: e["data"] for _, e in rec.accepted()}
        assert kinds["chat.message.held"]["text"] == "please approve"
        assert kinds["partner.usage.threshold"] == {**kinds["partner.usage.threshold"], "partner": "portal",
                                                    "requests": 3, "threshold": 3}


async def test_a_scheduled_end_sends_poll_closed_with_the_exact_tally(hooked: TestClient, receiver) -> None:
    """A poll whose window ends on its own (closes_at) reaches playout the moment it closes, like a manual close."""
    rec, url = receiver
    await subscribe(hooked, url, ["poll.closed"])
    ends = datetime.now(UTC) + timedelta(seconds=3)
    poll = await new_poll(hooked, closes_at=ends.isoformat())
    assert (await hooked.post(f"/api/v1/polls/{poll['id']}/open", headers=ADMIN)).status == 200
    for option in (1, 2, 2):
        device = await mint_device(hooked)
        resp = await hooked.post(f"/api/v1/polls/{poll['id']}/votes", json={"device_id": device, "option_id": option})
        assert resp.status == 201, await resp.text()
    async with asyncio.timeout(30):
        await rec.arrived.wait()
    (_, event), = rec.accepted()
    assert event["type"] == "poll.closed" and event["data"]["poll_id"] == poll["id"]
    assert {o["id"]: o["votes"] for o in event["data"]["options"]} == {1: 1, 2: 2, 3: 0}
    assert datetime.fromisoformat(event["timestamp"]) == ends
    state = await (await hooked.get(f"/api/v1/polls/{poll['id']}", headers=ADMIN)).json()
    assert state["status"] == "closed"
