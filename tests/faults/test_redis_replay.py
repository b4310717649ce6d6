"""Redis returns after an outage: what was published meanwhile is replayed from the database.

Fault: the private Redis of a two-process deployment (two `onair serve`, shared PostgreSQL) is SIGKILLed and
stays down for REDIS_DOWN seconds while viewers vote on process A; SSE tally streams and a chat WebSocket and
long-poll on process B stay connected. Stated recovery: <= 5 s after Redis accepts connections, the SSE streams
on both processes show the database's final tally and the chat clients on B have the message posted on A
(each process reloads from the database when its subscription is confirmed again: bus RESYNC)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from tests.chat_helpers import open_room
from tests.conftest import ADMIN, ADMIN_TOKEN, _redis_server_binary
from tests.device_helpers import mint_device
from tests.faults.params import REDIS_DOWN
from tests.faults.test_redis_restart import start_redis
from tests.helpers import OnairServer
from tests.tools import free_port, missing

RECOVERY_SECONDS = 5.0
VOTERS = 30


def web_process(tmp: Path, name: str, database_url: str, redis_url: str) -> OnairServer:
    return OnairServer(tmp / name, {"ONAIR_DATABASE_URL": database_url, "ONAIR_REDIS_URL": redis_url,
                                    "ONAIR_ADMIN_TOKEN": ADMIN_TOKEN, "ONAIR_LOG_LEVEL": "WARNING"},
                       args=("--workers", "1", "--no-sample", "--no-worker"))


async def follow_sse(s: aiohttp.ClientSession, url: str, seen: list[dict[str, Any]]) -> None:
    """Append every `results` event of an SSE stream to `seen` until cancelled."""
    async with s.get(url, timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as resp:
        assert resp.status == 200, resp.status
        async for line in resp.content:
            if line.startswith(b"data: "):
                seen.append(json.loads(line[6:]))


async def follow_ws(s: aiohttp.ClientSession, url: str, texts: list[str]) -> None:
    async with s.ws_connect(url) as ws:
        async for msg in ws:
            frame = json.loads(msg.data)
            if frame.get("type") == "messages":
                texts.extend(m["text"] for m in frame["messages"])


async def until(condition, within: float) -> float | None:
    """Seconds until `condition()` held, or None past `within`."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        if condition():
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    return None


async def test_tallies_and_chat_catch_up_after_redis_returns(tmp_path: Path, database_url: str,
                                                             fault_report) -> None:
    binary = _redis_server_binary()
    if binary is None:
        missing("redis-server", "apt-get install redis-server")
    port = free_port()
    redis = start_redis(binary, port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    a, b = web_process(tmp_path, "a", database_url, url), web_process(tmp_path, "b", database_url, url)
    a.start()
    b.start()
    statuses: Counter[int] = Counter()
    tasks: list[asyncio.Task[None]] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as s:
            await asyncio.gather(a.ready(), b.ready())
            async with s.post(a.url + "/api/v1/polls", headers=ADMIN,
                              json={"question": "Back?", "options": ["yes", "no"]}) as resp:
                pid = (await resp.json())["id"]
            async with s.post(f"{a.url}/api/v1/polls/{pid}/open", headers=ADMIN) as resp:
                assert resp.status == 200
            devices = []
            for _ in range(VOTERS + 1):
                devices.append(await mint_device(s, a.url))
            room = "replay"
            await open_room(s, room, a.url)
            async with s.post(f"{a.url}/api/v1/chat/{room}/messages",
                              json={"device_id": devices[-1], "nickname": "anchor", "text": "before"}) as resp:
                assert resp.status == 201
                cursor = (await resp.json())["cursor"]

            sse_a: list[dict[str, Any]] = []
            sse_b: list[dict[str, Any]] = []
            ws_b: list[str] = []
            tasks = [asyncio.create_task(follow_sse(s, f"{a.url}/api/v1/polls/{pid}/events", sse_a)),
                     asyncio.create_task(follow_sse(s, f"{b.url}/api/v1/polls/{pid}/events", sse_b)),
                     asyncio.create_task(follow_ws(s, f"{b.url}/api/v1/chat/{room}/ws", ws_b))]
            assert await until(lambda: sse_a and sse_b and "before" in ws_b, 10) is not None

            redis.send_signal(signal.SIGKILL)
            redis.wait(10)
            acked = 0
            for d in devices[:VOTERS]:  # votes go to the database while Redis is down
                async with s.post(f"{a.url}/api/v1/polls/{pid}/votes", json={"device_id": d, "option_id": 1}) as r:
                    statuses[r.status] += 1
                    acked += r.status in (200, 201)
            await asyncio.sleep(REDIS_DOWN)  # the outage itself, not a wait for a result
            redis = start_redis(binary, port, tmp_path)
            back = time.monotonic()

            async def post_after() -> dict[str, Any]:
                # Retried like a client would: 503 + Retry-After until A's bus is reconnected.
                while True:
                    async with s.post(f"{a.url}/api/v1/chat/{room}/messages",
                                      json={"device_id": devices[-1], "nickname": "anchor", "text": "after"}) as r:
                        if r.status == 201:
                            return await r.json()
                        statuses[r.status] += 1
                        assert r.status == 503 and "Retry-After" in r.headers, r.status
                    await asyncio.sleep(0.1)

            async def poll_after() -> dict[str, Any]:
                # A TV's long-poll: a 503 while B's bus reconnects is retried, the cursor is kept.
                while True:
                    async with s.get(f"{b.url}/api/v1/chat/{room}/messages",
                                     params={"after": cursor, "wait": "10"}) as r:
                        if r.status == 200 and (body := await r.json())["messages"]:
                            return body
                        if r.status != 200:
                            statuses[r.status] += 1
                            assert r.status == 503 and "Retry-After" in r.headers, r.status
                    await asyncio.sleep(0.1)

            long_poll = asyncio.create_task(poll_after())
            posted = await asyncio.wait_for(post_after(), RECOVERY_SECONDS)

            def caught_up() -> bool:
                return (bool(sse_a) and sse_a[-1]["total"] == acked and bool(sse_b) and sse_b[-1]["total"] == acked
                        and "after" in ws_b)

            recovered = await until(caught_up, RECOVERY_SECONDS - (time.monotonic() - back))
            assert recovered is not None, (f"not caught up {RECOVERY_SECONDS}s after Redis returned: acked {acked}, "
                                           f"SSE A {sse_a[-1:]}, SSE B {sse_b[-1:]}, WS B {ws_b}")
            recovered = time.monotonic() - back
            body = await asyncio.wait_for(long_poll, RECOVERY_SECONDS)
            assert [m["id"] for m in body["messages"]] == [posted["id"]], body
            assert ws_b.count("after") == 1 and ws_b.count("before") == 1, ws_b
            assert set(statuses) <= {200, 201, 503}, statuses
            print(f"redis down {REDIS_DOWN:.0f}s, {acked} votes meanwhile: SSE and chat caught up "
                  f"{recovered:.2f}s after it returned")
            fault_report(f"redis down {REDIS_DOWN:.0f}s, 2 web processes", f"{acked} votes, SSE x2, WS, long-poll",
                         acknowledged=acked + 2, statuses={k: v for k, v in statuses.items() if k >= 400},
                         recovery_seconds=recovered, bound_seconds=RECOVERY_SECONDS)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        a.stop()
        b.stop()
        redis.send_signal(signal.SIGKILL)
        redis.wait(10)
