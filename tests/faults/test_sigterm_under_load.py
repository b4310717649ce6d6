"""SIGTERM of one of two web processes (a rolling restart, a pod evicted) while viewers vote and chat, with Redis
carrying the fan-out between the processes.

Stated behaviour: no acknowledged vote or chat message is lost or doubled (votes: every device retries until it
holds an acknowledgement, and the tally equals the number of devices; chat: every acknowledged message is stored
once and reaches every WebSocket viewer exactly once across its reconnect); the terminated process's WebSocket
viewers get 1001 "going away" and resume on the other process from their cursor within RECOVERY_SECONDS; nothing
answers 500 (a request refused while a process leaves is a connection error or 503 with Retry-After, and is
retried)."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import time
from pathlib import Path

import aiohttp

from onair.core.lifecycle import PROCESS_HEADER
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.device_helpers import mint_device
from tests.faults.params import count
from tests.helpers import OnairServer

VOTERS = count("sigterm_voters", 60, 400)
MESSAGES = count("sigterm_messages", 40, 300)
VIEWERS = 6
RECOVERY_SECONDS = 10.0


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(x) for x in path.read_text().split()} if path.exists() else set()


class Viewer:
    """A chat WebSocket viewer that reconnects from its cursor when its process goes away, as the page does."""

    def __init__(self, s: aiohttp.ClientSession, url: str) -> None:
        self.s, self.url = s, url
        self.ids: list[int] = []
        self.cursor: str | None = None
        self.pids: list[int] = []
        self.going_away = 0
        self.resumed_after: float | None = None
        self.connected = asyncio.Event()

    async def run(self) -> None:
        while True:
            query = f"?after={self.cursor}" if self.cursor is not None else ""
            try:
                ws = await self.s.ws_connect(self.url + query)
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.1)
                continue
            self.pids.append(int(ws._response.headers[PROCESS_HEADER]))
            left = self.resumed_after
            if left is not None:
                self.resumed_after = time.monotonic() - left
            self.connected.set()
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    frame = json.loads(msg.data)
                    self.ids += [m["id"] for m in frame.get("messages", [])]
                    if frame.get("cursor") is not None:
                        self.cursor = str(frame["cursor"])
            if ws.close_code == aiohttp.WSCloseCode.GOING_AWAY:
                self.going_away += 1
                self.resumed_after = time.monotonic()


async def test_sigterm_one_web_process_under_vote_and_chat_load(tmp_path: Path, database_url: str, redis_url: str,
                                                                fault_report) -> None:
    server = OnairServer(tmp_path / "data", {"ONAIR_ADMIN_TOKEN": ADMIN_TOKEN, "ONAIR_LOG_LEVEL": "WARNING",
                                             "ONAIR_DATABASE_URL": database_url, "ONAIR_REDIS_URL": redis_url,
                                             "ONAIR_CHAT_RATE_MESSAGES": "100000"},
                         args=("--workers", "2", "--no-sample", "--no-worker"))
    server.start()
    statuses: collections.Counter[int | str] = collections.Counter()
    try:
        await server.ready(90)
        assert server.proc is not None
        base = server.url
        # A fresh connection per request: the kernel spreads them over both processes, and none is a kept-alive
        # connection into a process that already left.
        connector = aiohttp.TCPConnector(force_close=True, limit=40)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as s:
            async with s.post(f"{base}/api/v1/polls", headers=ADMIN,
                              json={"question": "Who wins?", "options": ["Home", "Away"]}) as r:
                poll = await r.json()
            async with s.post(f"{base}/api/v1/polls/{poll['id']}/open", headers=ADMIN) as r:
                assert r.status == 200
            devices = [await mint_device(s, base) for _ in range(VOTERS)]
            poster = await mint_device(s, base)

            ws_url = base.replace("http", "ws") + "/api/v1/chat/derby/ws"
            viewers: list[Viewer] = []
            tasks: list[asyncio.Task[None]] = []
            deadline = time.monotonic() + 30
            while len({v.pids[0] for v in viewers}) < 2 or len(viewers) < VIEWERS:  # viewers on both processes
                assert time.monotonic() < deadline, [v.pids for v in viewers]
                viewer = Viewer(s, ws_url)
                tasks.append(asyncio.create_task(viewer.run()))
                await asyncio.wait_for(viewer.connected.wait(), 15)
                viewers.append(viewer)
            victim = viewers[0].pids[0]
            assert victim in _children(server.proc.pid)

            async def send(method: str, url: str, body: dict) -> tuple[int, dict | None]:
                """Until the server answers something other than 503 or a refused connection."""
                while True:
                    try:
                        async with s.request(method, url, json=body) as r:
                            statuses[r.status] += 1
                            if r.status == 503:
                                await asyncio.sleep(float(r.headers.get("Retry-After", "1")) / 4)
                                continue
                            return r.status, await r.json(content_type=None)
                    except (aiohttp.ClientConnectionError, OSError) as exc:
                        statuses[type(exc).__name__] += 1
                        await asyncio.sleep(0.05)

            voted = 0
            acked: dict[str, int] = {}  # text -> message id
            unknown: list[str] = []

            async def vote(device: str, option: int, after_messages: int = 0) -> int:
                nonlocal voted
                while len(acked) + len(unknown) < after_messages:  # paced by the chat: votes before and after
                    await asyncio.sleep(0.01)
                status, _ = await send("POST", f"{base}/api/v1/polls/{poll['id']}/votes",
                                       {"device_id": device, "option_id": option})
                voted += 1
                return status

            async def chat() -> None:
                for i in range(MESSAGES):
                    text = f"goal {i:04d}"
                    # no retry: a chat post is not idempotent, so a post whose answer was lost counts as unknown
                    try:
                        async with s.post(f"{base}/api/v1/chat/derby/messages", json={
                                "device_id": poster, "nickname": "fan", "text": text}) as r:
                            statuses[r.status] += 1
                            if r.status == 201:
                                acked[text] = (await r.json())["id"]
                            else:
                                unknown.append(text)
                    except (aiohttp.ClientConnectionError, OSError) as exc:
                        statuses[type(exc).__name__] += 1
                        unknown.append(text)
                    await asyncio.sleep(0.02)

            at_kill: list[int] = []

            async def terminate() -> None:
                while len(acked) < MESSAGES // 3:  # well into the load, by progress rather than by the clock
                    await asyncio.sleep(0.01)
                at_kill[:] = [voted, len(acked)]
                os.kill(victim, signal.SIGTERM)

            votes = asyncio.gather(*(vote(d, 1 + i % 2, i * (MESSAGES - 1) // VOTERS) for i, d in enumerate(devices)))
            _, vote_statuses, _ = await asyncio.gather(terminate(), votes, chat())
            assert at_kill[0] < VOTERS and at_kill[1] < MESSAGES, f"the SIGTERM came after the load: {at_kill}"
            assert all(st in (200, 201) for st in vote_statuses), collections.Counter(vote_statuses)
            # a repeat from every device is a repeat (200), wherever it lands: nothing doubled
            repeats = await asyncio.gather(*(vote(d, 1 + i % 2) for i, d in enumerate(devices)))
            assert set(repeats) == {200}, collections.Counter(repeats)
            async with s.get(f"{base}/api/v1/polls/{poll['id']}/results") as r:
                results = await r.json()
            assert results["total"] == VOTERS, results

            async with s.get(f"{base}/api/v1/chat/derby/messages?after=0&limit=500") as r:
                stored = [m for m in (await r.json())["messages"]]
            texts = collections.Counter(m["text"] for m in stored)
            assert all(texts[t] == 1 for t in acked), "an acknowledged message was lost or doubled"
            assert all(texts[t] <= 1 for t in unknown), "a message was stored twice"
            last = max(m["id"] for m in stored)

            moved = [v for v in viewers if v.pids[0] == victim]
            deadline = time.monotonic() + RECOVERY_SECONDS
            while not all(v.ids and v.ids[-1] >= last for v in viewers):
                assert time.monotonic() < deadline, "viewers did not catch up after the reconnect"
                await asyncio.sleep(0.1)
            for v in viewers:
                assert len(v.ids) == len(set(v.ids)), "a viewer saw a message twice across its reconnect"
                assert set(acked.values()) <= set(v.ids), "a viewer missed an acknowledged message"
            for v in moved:
                assert v.going_away == 1 and v.pids[-1] != victim, v.pids
            recovery = max((v.resumed_after or 0.0) for v in moved)
            assert recovery < RECOVERY_SECONDS
            for t in tasks:
                t.cancel()
        assert not [k for k in statuses if isinstance(k, int) and k >= 500 and k != 503], dict(statuses)
        print(f"SIGTERM under {VOTERS} voters and {MESSAGES} chat posts (at {at_kill[0]} votes, {at_kill[1]} "
              f"messages): {dict(statuses)}; {len(moved)} viewers "
              f"moved, resumed within {recovery:.2f}s; {len(unknown)} chat posts unanswered")
        fault_report("SIGTERM of one of two web processes", f"{VOTERS} voters, {MESSAGES} chat posts, "
                     f"{VIEWERS} WebSocket viewers", acknowledged=VOTERS + len(acked), lost=0, doubled=0,
                     statuses={k: v for k, v in statuses.items() if isinstance(k, int) and k >= 400},
                     recovery_seconds=recovery, bound_seconds=RECOVERY_SECONDS)
    finally:
        server.stop()
