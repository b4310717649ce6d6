"""Live channel lifecycle as webhooks: a recorded event published over RTMP yields live.started,
live.reconnecting, live.ended and recording.ready, in that order, signed, to a subscribed receiver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from tests.live_helpers import create, live_settings, publish, wait_status
from tests.test_webhooks import receiver, subscribe, verify  # noqa: F401 (receiver is a fixture)

LIVE_EVENTS = ["live.started", "live.reconnecting", "live.ended", "recording.ready"]


@pytest.fixture
async def live(settings) -> AsyncIterator[TestClient]:
    s = live_settings(settings, allow_private_urls=True, webhook_retry_schedule="0.1,0.1,0.1,0.1")
    async with TestClient(TestServer(create_app(s, s.database_url or ""))) as c:
        yield c


async def test_a_recorded_event_is_told_to_webhooks(live: TestClient, receiver) -> None:  # noqa: F811
    rec, url = receiver
    endpoint = await subscribe(live, url, LIVE_EVENTS)
    body = await create(live, record=True, dvr_seconds=30)
    cid = body["id"]
    pub = publish(body["ingest"]["rtmp"], 10)
    await wait_status(live, cid, "live")
    await asyncio.to_thread(pub.wait, 30)
    ended = await wait_status(live, cid, "ended", within=20)
    asset_id = ended["recordings"][0]["asset_id"]
    async with asyncio.timeout(30):
        while {m["type"] for _, m in rec.accepted()} != set(LIVE_EVENTS):
            await asyncio.sleep(0.1)
    got = rec.accepted()
    assert [m["type"] for _, m in got] == LIVE_EVENTS
    assert all(verify(endpoint["secret"], h, b) for h, b in rec.seen)
    started, reconnecting, done, ready = (m["data"] for _, m in got)
    assert started["channel_id"] == cid and started["resumed"] is False and started["input"]["width"] == 640
    assert started["ingest_protocol"] == "rtmp"
    assert reconnecting["channel_id"] == cid and reconnecting["window_seconds"] == 2.0 and reconnecting["reason"]
    assert done == {"channel_id": cid, "event": started["event"], "reason": "the publisher did not come back",
                    "recording_asset_id": asset_id}
    assert ready["asset_id"] == asset_id and ready["channel_id"] == cid and ready["duration"] > 3
