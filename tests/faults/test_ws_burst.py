"""A burst of first WebSocket connects on a fresh two-process server (a presenter says "open the app now").

Stated behaviour: every one of BURST simultaneous first connects to one chat room is upgraded and gets its
history frame; none is answered 503 because the processes were cold (room lookup, Redis subscribe, database
connections opened on demand all at once)."""

from __future__ import annotations

import asyncio
import collections
import json
import time
from pathlib import Path

import aiohttp

from tests.conftest import ADMIN_TOKEN
from tests.faults.params import count
from tests.helpers import OnairServer

BURST = count("ws_burst", 200, 200)


async def test_a_burst_of_first_websocket_connects_all_succeed(tmp_path: Path, database_url: str, redis_url: str,
                                                               fault_report) -> None:
    server = OnairServer(tmp_path / "data", {"ONAIR_ADMIN_TOKEN": ADMIN_TOKEN, "ONAIR_LOG_LEVEL": "WARNING",
                                             "ONAIR_DATABASE_URL": database_url, "ONAIR_REDIS_URL": redis_url},
                         args=("--workers", "2", "--no-sample", "--no-worker"))
    server.start()
    try:
        await server.ready(90)
        statuses: collections.Counter[int] = collections.Counter()
        ws_url = server.url.replace("http", "ws") + "/api/v1/chat/burst/ws"
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as s:
            go = asyncio.Event()

            async def connect() -> aiohttp.ClientWebSocketResponse | None:
                await go.wait()
                try:
                    ws = await s.ws_connect(ws_url)
                except aiohttp.WSServerHandshakeError as err:
                    statuses[err.status] += 1
                    return None
                frame = json.loads((await ws.receive(timeout=30)).data)
                assert frame["type"] == "messages"
                statuses[101] += 1
                return ws

            tasks = [asyncio.create_task(connect()) for _ in range(BURST)]
            await asyncio.sleep(0.1)
            start = time.monotonic()
            go.set()
            sockets = await asyncio.gather(*tasks)
            took = time.monotonic() - start
            for ws in sockets:
                if ws is not None:
                    await ws.close()
        print(f"{BURST} simultaneous first WebSocket connects: {dict(statuses)} in {took:.2f}s")
        assert statuses == {101: BURST}, dict(statuses)
        fault_report("burst of first WebSocket connects", f"{BURST} at once on a fresh 2-process server",
                     acknowledged=statuses[101], statuses={k: v for k, v in statuses.items() if k != 101},
                     recovery_seconds=took)
    finally:
        server.stop()
