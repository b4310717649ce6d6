"""Fan-out across two real `onair serve` processes over a real Redis: chat and tally ticks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from streaming.interaction import devices
from tests.chat_helpers import open_room
from tests.conftest import ADMIN
from tests.test_polls_durability import KEY, live_server


async def test_two_processes_share_rooms_and_tallies(tmp_path: Path, database_url: str, redis_url: str) -> None:
    a = live_server(tmp_path, "a", database_url, redis_url)
    b = live_server(tmp_path, "b", database_url, redis_url)
    a.start()
    b.start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
            await asyncio.gather(a.ready(), b.ready())
            await open_room(s, "duo", a.url)
            ws = await s.ws_connect(f"{a.url}/api/v1/chat/duo/ws")
            first = json.loads((await ws.receive(timeout=5)).data)
            assert first["messages"] == []
            devs = [devices.issue(KEY.encode()) for _ in range(6)]
            for i, d in enumerate(devs):
                server = a if i % 2 else b
                async with s.post(f"{server.url}/api/v1/chat/duo/messages",
                                  json={"device_id": d, "nickname": f"n{i}", "text": f"hello {i}"}) as resp:
                    assert resp.status == 201
            seen: list[dict] = []
            while len(seen) < 6:
                frame = json.loads((await ws.receive(timeout=5)).data)
                seen += frame.get("messages", [])
            async with s.get(f"{b.url}/api/v1/chat/duo/messages?after=0") as resp:
                polled = (await resp.json())["messages"]
            assert [m["id"] for m in seen] == [m["id"] for m in polled]
            assert sorted(m["text"] for m in seen) == [f"hello {i}" for i in range(6)]
            await ws.close()

            async with s.post(f"{a.url}/api/v1/polls", headers=ADMIN,
                              json={"question": "Q", "options": ["x", "y"]}) as resp:
                pid = (await resp.json())["id"]
            async with s.post(f"{a.url}/api/v1/polls/{pid}/open", headers=ADMIN):
                pass
            async with s.get(f"{a.url}/api/v1/polls/{pid}/events") as events:
                for d in devs:  # votes land on b; the SSE stream on a shows them via b's tally tick
                    async with s.post(f"{b.url}/api/v1/polls/{pid}/votes",
                                      json={"device_id": d, "option_id": 2}) as resp:
                        assert resp.status == 201
                total = -1
                while total != len(devs):
                    line = (await asyncio.wait_for(events.content.readline(), 5)).decode()
                    if line.startswith("data: "):
                        total = json.loads(line[6:])["total"]
    finally:
        a.stop()
        b.stop()
