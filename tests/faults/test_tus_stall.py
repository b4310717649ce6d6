"""Stalled tus uploads: clients that send headers and a little body, then go silent (the socket stays open,
nothing more arrives, no FIN: a phone that lost its network).

Stated behaviour: ten of them do not slow votes, chat or results (each answers within 1 s on a pool of 3
connections); a stalled PATCH ends itself after ONAIR_TUS_IDLE_SECONDS without body bytes; the client resuming
on a new connection (HEAD, then PATCH from its offset) is never answered 409 for a stale offset, only at worst
409 "in progress" with Retry-After until the old claim has been idle that long, and its upload completes with
exactly the bytes sent."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.settings import Settings
from tests.chat_helpers import open_room
from tests.conftest import ADMIN
from tests.device_helpers import mint_device

TUS = {"Tus-Resumable": "1.0.0"}
STALLED = 10
SIZE = 300_000
IDLE, LEASE = 1.5, 3.0
RECOVERY_SECONDS = IDLE + 1.0  # below LEASE: taken over as idle, not as expired


@pytest.fixture
async def small_pool_client(settings: Settings) -> AsyncIterator[TestClient]:
    tight = settings.with_(db_pool_size=3, tus_idle_seconds=IDLE, tus_lease_seconds=LEASE)
    async with TestClient(TestServer(create_app(tight, tight.database_url or "", run_worker=False))) as c:
        yield c


def stall(port: int, path: str, offset: int, body: bytes) -> socket.socket:
    """A PATCH that announces all of `body` but sends 1 KB of it, then nothing: the socket is kept open."""
    sock = socket.create_connection(("127.0.0.1", port))
    head = (f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {ADMIN['Authorization']}\r\n"
            f"Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Upload-Offset: {offset}\r\nContent-Length: {len(body)}\r\n\r\n")
    sock.sendall(head.encode() + body[:1024])
    return sock


async def timed(statuses: Counter[int], call) -> float:
    start = time.monotonic()
    async with call as resp:
        statuses[resp.status] += 1
        await resp.read()
    return time.monotonic() - start


async def test_stalled_uploads_block_nothing_and_resume_cleanly(small_pool_client: TestClient, settings: Settings,
                                                                fault_report) -> None:
    c = small_pool_client
    port = c.server.port
    data = os.urandom(SIZE)
    paths = []
    for _ in range(STALLED):
        resp = await c.post("/api/v1/uploads/", headers={**ADMIN, **TUS, "Upload-Length": str(SIZE)})
        assert resp.status == 201
        paths.append(resp.headers["Location"])
    sockets = [stall(port, p, 0, data) for p in paths]
    statuses: Counter[int] = Counter()
    try:
        # Live traffic while ten uploads hang: a poll, votes, results and chat on a pool of three connections.
        resp = await c.post("/api/v1/polls", headers=ADMIN, json={"question": "Stall?", "options": ["a", "b"]})
        pid = (await resp.json())["id"]
        assert (await c.post(f"/api/v1/polls/{pid}/open", headers=ADMIN)).status == 200
        worst = 0.0
        await open_room(c, "stall")
        for i in range(20):
            device = await mint_device(c)
            worst = max(worst, await timed(statuses, c.post(f"/api/v1/polls/{pid}/votes",
                                                            json={"device_id": device, "option_id": 1 + i % 2})))
            worst = max(worst, await timed(statuses, c.get(f"/api/v1/polls/{pid}/results")))
            worst = max(worst, await timed(statuses, c.post("/api/v1/chat/stall/messages", json={
                "device_id": device, "nickname": "viewer", "text": f"hello {i}"})))
        assert set(statuses) <= {200, 201}, statuses
        assert worst < 1.0, f"live traffic waited {worst:.2f}s behind stalled uploads"
        results = await (await c.get(f"/api/v1/polls/{pid}/results")).json()
        assert results["total"] == 20

        # The first client resumes on a new connection, as a tus client does: HEAD, then PATCH from there.
        path = paths[0]
        start = time.monotonic()
        conflicts: Counter[str] = Counter()
        while True:
            head = await c.head(path, headers={**ADMIN, **TUS})
            assert head.status == 200
            offset = int(head.headers["Upload-Offset"])
            resp = await c.patch(path, data=data[offset:], headers={
                **ADMIN, **TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset)})
            if resp.status == 204:
                break
            body = await resp.json()
            assert resp.status == 409 and "in progress" in body["detail"], (resp.status, body)
            assert "Retry-After" in resp.headers
            conflicts[body["detail"]] += 1
            assert time.monotonic() - start < RECOVERY_SECONDS, "the stalled claim was never taken over"
            await asyncio.sleep(0.2)
        resumed = time.monotonic() - start
        assert int(resp.headers["Upload-Offset"]) == SIZE
        asset_id = resp.headers["Onair-Asset-Id"]
        original = settings.data_dir / "objects" / f"sources/{asset_id}/original"
        assert original.read_bytes() == data, "the resumed upload is exactly the bytes sent"

        # Every other stalled PATCH ends by itself: its claim is released, HEAD answers, a PATCH can go on.
        deadline = time.monotonic() + RECOVERY_SECONDS
        for p in paths[1:]:
            while True:
                head = await c.head(p, headers={**ADMIN, **TUS})
                resp = await c.patch(p, data=data[int(head.headers["Upload-Offset"]):], headers={
                    **ADMIN, **TUS, "Content-Type": "application/offset+octet-stream",
                    "Upload-Offset": head.headers["Upload-Offset"]})
                if resp.status == 204:
                    break
                assert resp.status == 409 and "in progress" in (await resp.json())["detail"]
                assert time.monotonic() < deadline, f"{p} still claimed {RECOVERY_SECONDS}s on"
                await asyncio.sleep(0.2)
        # The stalled sockets were answered (408) or closed by the server, never left hanging forever.
        for sock in sockets:
            sock.settimeout(RECOVERY_SECONDS)
            reply = sock.recv(4096)
            assert reply == b"" or reply.startswith(b"HTTP/1.1 408"), reply[:80]
        print(f"{STALLED} stalled tus PATCHes: live traffic worst {worst * 1000:.0f} ms; resumed upload accepted "
              f"after {resumed:.2f}s ({sum(conflicts.values())} x 409 in progress)")
        fault_report(f"{STALLED} stalled tus PATCHes (silent clients)", "20 votes+results+chat, 1 resume",
                     acknowledged=20 + 20 + STALLED, statuses={409: sum(conflicts.values())},
                     recovery_seconds=resumed, bound_seconds=RECOVERY_SECONDS)
    finally:
        for sock in sockets:
            sock.close()
