"""`onair serve --workers N`: N real processes share the port; SIGTERM stops them all cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from onair.core.lifecycle import PROCESS_HEADER
from tests.chat_helpers import open_room
from tests.conftest import ADMIN_TOKEN
from tests.device_helpers import mint_device
from tests.helpers import OnairServer, spawn_server
from tests.tools import free_port, port_open

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONAIR_")}
    env.update(PYTHONPATH=str(ROOT), ONAIR_HOST="127.0.0.1", ONAIR_PORT=str(port),
               ONAIR_DATA_DIR=str(tmp_path / "data"), ONAIR_ADMIN_TOKEN=ADMIN_TOKEN, ONAIR_LOG_FORMAT="text",
               ONAIR_LOG_LEVEL="WARNING", **extra)
    return env


def _get(url: str) -> tuple[int, dict[str, str]]:
    # A fresh connection per request (urllib sends Connection: close), so each one is accepted anew.
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers)


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(x) for x in path.read_text().split()} if path.exists() else set()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[1][0] != "Z"  # zombies are gone for our purposes


@pytest.fixture
def two_workers(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[OnairServer]:
    with spawn_server(tmp_path / "data", {"ONAIR_REDIS_URL": redis_url, "ONAIR_DATABASE_URL": database_url,
                                          "ONAIR_ADMIN_TOKEN": ADMIN_TOKEN, "ONAIR_LOG_LEVEL": "WARNING",
                                          "ONAIR_DEVICE_MINT_PER_IP": "0", "ONAIR_DEVICE_MINT_PER_SUBNET": "0",
                                          "ONAIR_CHAT_IP_MESSAGES": "0"},
                      args=("--workers", "2", "--no-sample")) as server:
        yield server


def test_both_processes_answer_then_sigterm_stops_everything(two_workers) -> None:
    server = two_workers
    proc, base = server.proc, server.url
    children = _children(proc.pid)
    assert len(children) == 2, children

    seen: set[int] = set()
    for _ in range(400):  # the kernel hands new connections to whichever process accepts first
        status, headers = _get(base + "/healthz")
        assert status == 200
        seen.add(int(headers[PROCESS_HEADER]))
        if len(seen) == 2:
            break
    assert seen == children, "each request is served by one of the two web processes, and both serve"

    # Every process serves every route: readiness (DB + bus) and metrics too.
    assert _get(base + "/readyz")[0] == 200
    assert _get(base + "/metrics")[0] == 200

    assert server.stop(signal.SIGTERM) == 0, server.output()
    assert "Traceback" not in server.output()
    assert not any(_alive(pid) for pid in children), "no web process left behind"
    assert not port_open("127.0.0.1", int(base.rsplit(":", 1)[1])), "the port is released"


def _wait_for(predicate, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_a_dead_process_is_replaced(two_workers) -> None:
    """A crashed (here: SIGKILLed) web process is replaced; the server keeps two processes and answers."""
    server = two_workers
    proc, base = server.proc, server.url
    victim, survivor = sorted(_children(proc.pid))
    os.kill(victim, signal.SIGKILL)
    def replaced() -> set[int] | None:
        now = _children(proc.pid)
        return now if len(now) == 2 and victim not in now else None

    children = _wait_for(replaced, what="a replacement process")
    assert survivor in children
    server.wait_ready()
    seen = {int(_get(base + "/healthz")[1][PROCESS_HEADER]) for _ in range(200)}
    assert seen <= children and victim not in seen
    assert server.stop(signal.SIGTERM) == 0, server.output()
    assert "starting a replacement" in server.output()


def test_children_stop_when_the_supervisor_is_killed(two_workers) -> None:
    """SIGKILL on the parent (OOM killer, kill -9) must not leave orphans holding the port."""
    server = two_workers
    proc, base = server.proc, server.url
    children = _children(proc.pid)
    server.kill9()
    _wait_for(lambda: not any(_alive(pid) for pid in children), what="orphaned web processes to stop")
    assert not port_open("127.0.0.1", int(base.rsplit(":", 1)[1]))


def test_several_workers_without_redis_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "onair.cli", "serve", "--workers", "2", "--no-sample"],
                            cwd=ROOT, env=_env(tmp_path, free_port()), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "ONAIR_REDIS_URL" in lines[0] and "--workers 2" in lines[0]


# --- live interaction across processes (votes, chat) ----------------------------------------------------

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def _fresh(session, method: str, url: str, **kw):
    """One request on a new connection (so the kernel may hand it to either process); returns (pid, status, body)."""
    async with session.request(method, url, **kw) as resp:
        body = await resp.json(content_type=None)
        return int(resp.headers[PROCESS_HEADER]), resp.status, body


async def test_votes_spread_over_processes_are_counted_exactly(two_workers) -> None:
    import asyncio

    import aiohttp

    server = two_workers
    proc, base = server.proc, server.url
    connector = aiohttp.TCPConnector(force_close=True, limit=50)
    async with aiohttp.ClientSession(connector=connector) as http:
        _pid, status, poll = await _fresh(http, "POST", f"{base}/api/v1/polls", headers=ADMIN_HEADERS,
                                          json={"question": "Best goal?", "options": ["A", "B", "C"]})
        assert status == 201
        assert (await _fresh(http, "POST", f"{base}/api/v1/polls/{poll['id']}/open", headers=ADMIN_HEADERS))[1] == 200
        options = [o["id"] for o in poll["options"]]

        async def voter(i: int) -> tuple[int, int, str]:
            dev = {"device_id": await mint_device(http, base)}
            choice = options[i % 3]
            pid, st, _ = await _fresh(http, "POST", f"{base}/api/v1/polls/{poll['id']}/votes",
                                      json={"device_id": dev["device_id"], "option_id": choice})
            # A repeat of the same device is idempotent wherever it lands.
            _p, again, _ = await _fresh(http, "POST", f"{base}/api/v1/polls/{poll['id']}/votes",
                                        json={"device_id": dev["device_id"], "option_id": choice})
            assert again == 200
            return pid, st, choice

        cast = await asyncio.gather(*(voter(i) for i in range(150)))
        acknowledged = [c for c in cast if c[1] == 201]
        assert len(acknowledged) == 150
        assert {pid for pid, _, _ in cast} == _children(proc.pid), "votes landed on both processes"

        for _ in range(5):  # every process answers the same, exact tally
            _pid, status, results = await _fresh(http, "GET", f"{base}/api/v1/polls/{poll['id']}/results")
            assert status == 200 and results["total"] == 150
            by_option = {o["id"]: o["votes"] for o in results["options"]}
            assert by_option == {o: sum(1 for c in acknowledged if c[2] == o) for o in options}


async def test_chat_crosses_processes_and_sigterm_sends_going_away(two_workers) -> None:
    import asyncio
    import json as jsonlib

    import aiohttp

    server = two_workers
    proc, base = server.proc, server.url
    room = "final"
    ws_url = base.replace("http", "ws") + f"/api/v1/chat/{room}/ws"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        by_pid: dict[int, aiohttp.ClientWebSocketResponse] = {}
        spare = []
        for _ in range(60):  # one WebSocket client on each process
            ws = await http.ws_connect(ws_url)
            pid = int(ws._response.headers[PROCESS_HEADER])
            assert (jsonlib.loads((await ws.receive(timeout=10)).data))["type"] == "messages"  # history
            if pid in by_pid:
                spare.append(ws)
            else:
                by_pid[pid] = ws
            if len(by_pid) == 2:
                break
        assert set(by_pid) == _children(proc.pid)
        for ws in spare:
            await ws.close()

        dev = {"device_id": await mint_device(http, base)}
        await open_room(http, room, base)
        poster, status, _msg = await _fresh(http, "POST", f"{base}/api/v1/chat/{room}/messages",
                                            json={"device_id": dev["device_id"], "nickname": "ann", "text": "hi all"})
        assert status == 201

        async def next_text(ws: aiohttp.ClientWebSocketResponse) -> str:
            while True:
                frame = jsonlib.loads((await ws.receive(timeout=10)).data)
                if frame.get("messages"):
                    return frame["messages"][-1]["text"]

        # Both clients — the one on the posting process and the one on the other — get the message.
        assert await asyncio.gather(*(next_text(ws) for ws in by_pid.values())) == ["hi all", "hi all"]

        # SIGTERM one web process: its client gets a close frame 1001 "going away" and reconnects elsewhere.
        leaving = next(pid for pid in by_pid if pid != poster)
        os.kill(leaving, signal.SIGTERM)
        closing = await by_pid[leaving].receive(timeout=15)
        assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == aiohttp.WSCloseCode.GOING_AWAY
        again = await http.ws_connect(ws_url)
        assert int(again._response.headers[PROCESS_HEADER]) != leaving
        assert (jsonlib.loads((await again.receive(timeout=10)).data))["messages"][-1]["text"] == "hi all"
        await again.close()
        await by_pid[poster].close()
