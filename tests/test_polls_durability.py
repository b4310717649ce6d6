"""Acceptance: two real `onair serve` processes on one database and a real Redis; kill -9 one mid-burst.

An acknowledged vote (2xx) must survive the crash, and after the client retries what failed the tally
equals the number of distinct devices exactly.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import asyncpg

from streaming.interaction import devices
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.helpers import OnairServer

ROOT = Path(__file__).resolve().parent.parent
KEY = "durability-signing-key"


def live_server(tmp: Path, name: str, database_url: str, redis_url: str) -> OnairServer:
    """One web process (no job worker) of a two-process deployment sharing PostgreSQL and Redis."""
    return OnairServer(tmp / name, {"ONAIR_DATABASE_URL": database_url, "ONAIR_REDIS_URL": redis_url,
                                    "ONAIR_ADMIN_TOKEN": ADMIN_TOKEN, "ONAIR_SIGNING_KEY": KEY,
                                    "ONAIR_LOG_LEVEL": "WARNING"},
                       args=("--workers", "1", "--no-sample", "--no-worker"))


async def test_kill_9_mid_burst_loses_no_acknowledged_vote(tmp_path: Path, database_url: str,
                                                          redis_url: str) -> None:
    a = live_server(tmp_path, "a", database_url, redis_url)
    b = live_server(tmp_path, "b", database_url, redis_url)
    a.start()
    b.start()
    connector = aiohttp.TCPConnector(limit=100, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=20)) as s:
        try:
            await asyncio.gather(a.ready(), b.ready())
            async with s.post(a.url + "/api/v1/polls", headers=ADMIN,
                              json={"question": "Crash?", "options": ["yes", "no", "maybe"]}) as resp:
                pid = (await resp.json())["id"]
            async with s.post(f"{b.url}/api/v1/polls/{pid}/open", headers=ADMIN) as resp:
                assert resp.status == 200

            ids = [devices.issue(KEY.encode()) for _ in range(800)]
            choice = {d: 1 + i % 3 for i, d in enumerate(ids)}
            acked: dict[str, int] = {}
            failed: list[str] = []
            b_acks = 0
            killed = asyncio.Event()
            sem = asyncio.Semaphore(60)

            async def cast(d: str, server: OnairServer) -> None:
                nonlocal b_acks
                async with sem:
                    try:
                        async with s.post(f"{server.url}/api/v1/polls/{pid}/votes",
                                          json={"device_id": d, "option_id": choice[d]}) as resp:
                            body = await resp.json()
                            if resp.status in (200, 201):
                                assert body["option_id"] == acked.get(d, choice[d])
                                acked[d] = body["option_id"]
                                if server is b:
                                    b_acks += 1
                                    if b_acks == 150 and not killed.is_set():
                                        b.kill9()  # mid-burst: more requests to b are in flight right now
                                        killed.set()
                            else:
                                assert resp.status == 503, (resp.status, body)
                                failed.append(d)
                    except (TimeoutError, aiohttp.ClientError):
                        failed.append(d)

            # each device votes on both servers (a repeat), in an interleaved order
            plan = [(d, a if i % 2 else b) for i, d in enumerate(ids)] + [(d, b if i % 2 else a)
                                                                        for i, d in enumerate(ids)]
            await asyncio.gather(*(cast(d, srv) for d, srv in plan))
            assert killed.is_set() and failed, "the kill did not hit in-flight requests"

            # no acknowledged vote lost: each is in the database with the acknowledged choice
            conn = await asyncpg.connect(database_url)
            try:
                rows = await conn.fetch("SELECT device_id, option_id FROM votes WHERE poll_id = $1", pid)
            finally:
                await conn.close()
            stored = {r["device_id"]: r["option_id"] for r in rows}
            assert all(stored.get(d) == o for d, o in acked.items())

            b.start()
            await b.ready()
            for d in set(failed):  # clients retry what was not acknowledged; repeats are idempotent
                await cast(d, b)
            assert set(acked) == set(ids)
            async with s.get(f"{a.url}/api/v1/polls/{pid}/results") as resp:
                result = await resp.json()
            assert result["total"] == len(ids)
            assert [o["votes"] for o in result["options"]] == [
                sum(1 for d in ids if acked[d] == k) for k in (1, 2, 3)]
        finally:
            a.stop()
            b.stop()
