"""Polls over the real app and PostgreSQL: devices, window, idempotency, results, SSE, export."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.settings import Settings
from streaming.interaction import ballots
from streaming.interaction.polls import accepting
from tests.conftest import ADMIN
from tests.device_helpers import mint_device


async def new_device(client: TestClient) -> str:
    return await mint_device(client)


async def new_poll(client: TestClient, **extra) -> dict:
    resp = await client.post("/api/v1/polls", json={"question": "Who wins?", "options": ["Ann", "Bob", "Cy"],
                                                    **extra}, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_create_poll_contract_and_admin_only(client: TestClient) -> None:
    resp = await client.post("/api/v1/polls", json={"question": "Q", "options": ["a", "b"]})
    assert resp.status == 401 and resp.content_type == "application/problem+json"
    poll = await new_poll(client)
    assert poll["status"] == "draft"
    assert poll["options"] == [{"id": 1, "label": "Ann"}, {"id": 2, "label": "Bob"}, {"id": 3, "label": "Cy"}]
    for bad in ({"question": "Q", "options": ["only"]}, {"question": "Q", "options": [str(i) for i in range(11)]},
                {"question": "", "options": ["a", "b"]}, {"question": "Q", "options": ["a", "a"]}):
        resp = await client.post("/api/v1/polls", json=bad, headers=ADMIN)
        assert resp.status == 400, bad
        assert resp.content_type == "application/problem+json"


async def test_vote_window_idempotency_and_results(client: TestClient) -> None:
    poll = await new_poll(client)
    pid = poll["id"]
    device = await new_device(client)
    resp = await client.post(f"/api/v1/polls/{pid}/votes", json={"device_id": device, "option_id": 2})
    assert resp.status == 409
    problem = await resp.json()
    assert resp.content_type == "application/problem+json"
    assert problem["status"] == 409 and "opens_at" in problem and "closes_at" in problem

    opened = await client.post(f"/api/v1/polls/{pid}/open", headers=ADMIN)
    assert opened.status == 200 and (await opened.json())["status"] == "open"
    first = await client.post(f"/api/v1/polls/{pid}/votes", json={"device_id": device, "option_id": 2})
    assert first.status == 201 and (await first.json())["option_id"] == 2
    again = await client.post(f"/api/v1/polls/{pid}/votes", json={"device_id": device, "option_id": 3})
    assert again.status == 200
    assert (await again.json())["option_id"] == 2  # the recorded choice; a change of mind is refused

    resp = await client.get(f"/api/v1/polls/{pid}/results")
    body = await resp.json()
    assert body["poll_id"] == pid and body["status"] == "open" and body["total"] == 1
    assert body["options"] == [{"id": 1, "label": "Ann", "votes": 0}, {"id": 2, "label": "Bob", "votes": 1},
                               {"id": 3, "label": "Cy", "votes": 0}]
    assert body["poll_interval_ms"] > 0
    assert "max-age=1" in resp.headers["Cache-Control"] and resp.headers["ETag"]
    cached = await client.get(f"/api/v1/polls/{pid}/results", headers={"If-None-Match": resp.headers["ETag"]})
    assert cached.status == 304

    closed = await client.post(f"/api/v1/polls/{pid}/close", headers=ADMIN)
    assert (await closed.json())["status"] == "closed"
    late = await client.post(f"/api/v1/polls/{pid}/votes", json={"device_id": await new_device(client),
                                                                  "option_id": 1})
    assert late.status == 409
    assert (await late.json())["closed_at"]
    assert (await (await client.get(f"/api/v1/polls/{pid}/results")).json())["total"] == 1


async def test_forged_and_invalid_votes(client: TestClient) -> None:
    poll = await new_poll(client)
    pid = poll["id"]
    await client.post(f"/api/v1/polls/{pid}/open", headers=ADMIN)
    device = await new_device(client)
    forged = device[:-2] + ("AA" if not device.endswith("AA") else "BB")
    for bad_id in (forged, "d1.counting.1234", "x" * 500, "42"):
        resp = await client.post(f"/api/v1/polls/{pid}/votes", json={"device_id": bad_id, "option_id": 1})
        assert resp.status in (400, 403), bad_id
        assert resp.content_type == "application/problem+json"
    resp = await client.post(f"/api/v1/polls/{pid}/votes", json={"device_id": device, "option_id": 99})
    assert resp.status == 400
    resp = await client.post(f"/api/v1/polls/{pid}/votes", data=b"{not json", headers={"Content-Type":
                                                                                        "application/json"})
    assert resp.status == 400
    resp = await client.post("/api/v1/polls/nope/votes", json={"device_id": device, "option_id": 1})
    assert resp.status == 404
    assert (await (await client.get(f"/api/v1/polls/{pid}/results")).json())["total"] == 0


async def test_concurrent_votes_with_repeats_count_each_device_once(client: TestClient) -> None:
    poll = await new_poll(client)
    pid = poll["id"]
    await client.post(f"/api/v1/polls/{pid}/open", headers=ADMIN)
    devices = await asyncio.gather(*(new_device(client) for _ in range(150)))
    choice = {d: 1 + i % 3 for i, d in enumerate(devices)}

    async def cast(d: str, option: int) -> tuple[int, int]:
        resp = await client.post(f"/api/v1/polls/{pid}/votes", json={"device_id": d, "option_id": option})
        return resp.status, (await resp.json())["option_id"]

    # every device votes three times at once, twice with another option
    jobs = [cast(d, choice[d]) for d in devices] + [cast(d, 1 + (choice[d] % 3)) for d in devices] * 2
    answers = await asyncio.gather(*jobs)
    assert sum(1 for status, _ in answers if status == 201) == len(devices)
    assert {status for status, _ in answers} <= {200, 201}
    body = await (await client.get(f"/api/v1/polls/{pid}/results")).json()
    assert body["total"] == len(devices)
    # whichever request of a device won, every answer it got names the same recorded option
    per_option = {o["id"]: o["votes"] for o in body["options"]}
    assert sum(per_option.values()) == len(devices)


async def test_change_of_mind_when_the_poll_allows_it(client: TestClient) -> None:
    poll = await new_poll(client, allow_change=True)
    pid = poll["id"]
    await client.post(f"/api/v1/polls/{pid}/open", headers=ADMIN)
    device = await new_device(client)
    assert (await client.post(f"/api/v1/polls/{pid}/votes", json={"device_id": device, "option_id": 1})).status == 201
    resp = await client.post(f"/api/v1/polls/{pid}/votes", json={"device_id": device, "option_id": 3})
    assert resp.status == 200 and (await resp.json())["option_id"] == 3
    body = await (await client.get(f"/api/v1/polls/{pid}/results")).json()
    assert [o["votes"] for o in body["options"]] == [0, 0, 1]


async def test_scheduled_window(client: TestClient) -> None:
    t = datetime.now(UTC)
    later = await new_poll(client, opens_at=(t + timedelta(hours=1)).isoformat(),
                           closes_at=(t + timedelta(hours=2)).isoformat())
    device = await new_device(client)
    resp = await client.post(f"/api/v1/polls/{later['id']}/votes", json={"device_id": device, "option_id": 1})
    assert resp.status == 409
    assert (await resp.json())["opens_at"].startswith(str((t + timedelta(hours=1)).year))
    running = await new_poll(client, opens_at=(t - timedelta(minutes=1)).isoformat(),
                             closes_at=(t + timedelta(hours=1)).isoformat())
    assert running["status"] == "open"
    resp = await client.post(f"/api/v1/polls/{running['id']}/votes", json={"device_id": device, "option_id": 1})
    assert resp.status == 201
    resp = await client.post("/api/v1/polls", headers=ADMIN, json={
        "question": "Q", "options": ["a", "b"], "opens_at": t.isoformat(), "closes_at": t.isoformat()})
    assert resp.status == 400


async def test_sse_streams_ticks_and_reset_and_export(client: TestClient) -> None:
    poll = await new_poll(client)
    pid = poll["id"]
    await client.post(f"/api/v1/polls/{pid}/open", headers=ADMIN)
    resp = await client.get(f"/api/v1/polls/{pid}/events")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")

    async def next_event() -> dict:
        data = None
        while True:
            line = (await asyncio.wait_for(resp.content.readline(), 5)).decode().strip()
            if line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and data is not None:
                return data

    assert (await next_event())["total"] == 0
    metrics = await (await client.get("/metrics")).text()
    assert 'onair_live_connections{kind="sse"} 1.0' in metrics
    for option in (1, 1, 2):
        await client.post(f"/api/v1/polls/{pid}/votes", json={"device_id": await new_device(client),
                                                              "option_id": option})
    event = await next_event()
    while event["total"] < 3:
        event = await next_event()
    assert [o["votes"] for o in event["options"]] == [2, 1, 0]

    reset = await client.post(f"/api/v1/polls/{pid}/reset", headers=ADMIN)
    assert reset.status == 200
    event = await next_event()
    while event["total"] != 0:
        event = await next_event()
    resp.close()

    await client.post(f"/api/v1/polls/{pid}/votes", json={"device_id": await new_device(client), "option_id": 3})
    await client.post(f"/api/v1/polls/{pid}/close", headers=ADMIN)
    csv_resp = await client.get(f"/api/v1/polls/{pid}/export.csv", headers=ADMIN)
    assert csv_resp.status == 200 and csv_resp.content_type == "text/csv"
    text = await csv_resp.text()
    assert "Cy,1" in text and "total,,,,1" in text
    for action in ("created", "opened", "reset", "closed"):
        assert f",{action}," in text
    assert (await client.get(f"/api/v1/polls/{pid}/export.csv")).status == 401


async def test_per_ip_ceiling(settings: Settings) -> None:
    app = create_app(settings.with_(vote_ip_ceiling=2), settings.database_url or "", run_worker=False)
    async with TestClient(TestServer(app)) as c:
        poll = await new_poll(c)
        await c.post(f"/api/v1/polls/{poll['id']}/open", headers=ADMIN)
        devs = [await new_device(c) for _ in range(3)]
        for d in devs[:2]:
            resp = await c.post(f"/api/v1/polls/{poll['id']}/votes", json={"device_id": d, "option_id": 1})
            assert resp.status == 201
        resp = await c.post(f"/api/v1/polls/{poll['id']}/votes", json={"device_id": devs[2], "option_id": 1})
        assert resp.status == 429 and resp.headers["Retry-After"]
        assert (await (await c.get(f"/api/v1/polls/{poll['id']}/results")).json())["total"] == 2


async def test_the_vote_write_judges_a_poll_window_as_accepting_does(db: asyncpg.Pool) -> None:
    """The one-statement vote write (ballots.cast) checks the window in SQL; polls.accepting is the rule."""
    now = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    times = (None, now - timedelta(minutes=1), now, now + timedelta(minutes=1))
    cases = [(status, opens, closes) for status in ("draft", "open", "closed") for opens in times for closes in times]
    async with db.acquire() as conn:
        for status, opens, closes in cases:
            said = await conn.fetchval(
                f"SELECT {ballots.ACCEPTING_SQL} FROM (SELECT $1::text AS status, $2::timestamptz AS opens_at, "
                "$3::timestamptz AS closes_at) AS p", status, opens, closes, now)
            assert said == accepting(status, opens, closes, now), (status, opens, closes)
