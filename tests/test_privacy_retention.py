"""Privacy retention over the real app and PostgreSQL: after ONAIR_PRIVACY_RETENTION_DAYS client IPs, device ids
and vote integrity data are gone, while tallies (and so results) stay exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp.test_utils import TestClient

from onair.core.settings import Settings
from streaming.interaction import retention
from tests.chat_helpers import open_room
from tests.conftest import ADMIN
from tests.device_helpers import mint_device


async def _poll(client: TestClient) -> str:
    poll = await (await client.post("/api/v1/polls", json={"question": "Q?", "options": ["a", "b"]},
                                    headers=ADMIN)).json()
    assert (await client.post(f"/api/v1/polls/{poll['id']}/open", headers=ADMIN)).status == 200
    return poll["id"]


async def test_ips_device_ids_and_integrity_data_expire(client: TestClient, db: asyncpg.Pool,
                                                        settings: Settings) -> None:
    closed, still_open = await _poll(client), await _poll(client)
    device = await mint_device(client)
    for pid in (closed, still_open):
        resp = await client.post(f"/api/v1/polls/{pid}/votes", json={"device_id": device, "option_id": 1})
        assert resp.status == 201
    assert (await client.post(f"/api/v1/polls/{closed}/close", headers=ADMIN)).status == 200
    await open_room(client, "kept")
    resp = await client.post("/api/v1/chat/kept/messages", json={"device_id": device, "nickname": "a", "text": "hi"})
    assert resp.status == 201
    assert await db.fetchval("SELECT count(*) FROM votes WHERE client_ip IS NOT NULL") == 2

    assert await retention.forget(db, settings) == 0  # nothing is old enough yet
    later = datetime.now(UTC) + timedelta(days=settings.privacy_retention_days + 1)
    assert await retention.forget(db, settings, later) > 0

    assert await db.fetchval("SELECT count(*) FROM votes WHERE poll_id = $1", closed) == 0
    row = await db.fetchrow("SELECT client_ip, device_issued_at FROM votes WHERE poll_id = $1", still_open)
    assert row is not None and row["client_ip"] is None and row["device_issued_at"] is None
    assert await db.fetchval("SELECT count(*) FROM chat_messages WHERE device_id = $1", device) == 0
    for pid in (closed, still_open):  # the published numbers do not move
        assert (await (await client.get(f"/api/v1/polls/{pid}/results")).json())["total"] == 1
    history = await (await client.get("/api/v1/chat/kept/messages")).json()
    assert [m["text"] for m in history["messages"]] == ["hi"]
