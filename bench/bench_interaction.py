"""Live interaction under load: votes/s and chat deliveries/s, each against a bare aiohttp reference
measured in the same run with the same client.

Votes: `onair serve --workers 2` (real PostgreSQL, real Redis) takes votes from BENCH_VOTES distinct
devices (default 100,000) from BENCH_CLIENT_PROCS load-generator processes; reference: a bare aiohttp
POST handler (2 processes, SO_REUSEPORT) parsing the same JSON. Exactness: the final tally must equal
the number of 2xx answers.

Chat (the issue's show scale): BENCH_WS_CLIENTS WebSocket clients (default 5,000) and BENCH_LONGPOLL_TVS
long-poll TVs (default 1,000; GET /messages?after=<cursor>&wait=20 in a loop) in one room, BENCH_CHAT_RATE
messages/s (default 50) posted for BENCH_CHAT_SECONDS (default 20), from BENCH_CHAT_CLIENT_PROCS client
processes; reference: a bare aiohttp app with the same clients in the same run, broadcasting each POSTed
message to its sockets in a loop and waking its long-polls.

Quick mode (`ONAIR_BENCH_QUICK=1` or `--quick`; writes interaction_quick.json, never the full file): 500 WebSocket
clients, 100 TVs, 20 msg/s for 5 s, 5,000 votes, 500 profiled votes. `BENCH_ONLY=chat` (or `votes`) runs one
part. The full setting needs a quiet machine: on a shared 2-core box the clients starve the server.

Vote profile: bench/vote_profile.py's breakdown of one vote (HTTP parse, JSON decode + validation, device-id
HMAC, handler and middleware, batching, commit, response), BENCH_PROFILE_VOTES votes (default 3,000).

Environment: BENCH_DATABASE_URL (a PostgreSQL server URL; a fresh database is created on it), else an
embedded PostgreSQL in a temporary folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import results_file, vote_profile  # noqa: E402

KEY = "bench-signing-key"
_STAMP = re.compile(r'"text":\s*"t=([0-9.]+) #')
_CURSOR = re.compile(r'"cursor":\s*"([0-9]+)"')
TOKEN = "bench-admin-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# --- the bare references ------------------------------------------------------------------------------

def _bare_vote_process(port: int) -> None:
    async def handler(request: web.Request) -> web.Response:
        data = await request.json()
        return web.json_response({"poll_id": request.match_info["pid"], "option_id": data["option_id"],
                                  "recorded": True}, status=201)

    app = web.Application()
    app.router.add_post("/api/v1/polls/{pid}/votes", handler)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    web.run_app(app, sock=sock, print=None, access_log=None, handle_signals=True)


def _bare_chat_process(port: int) -> None:
    sockets: set[web.WebSocketResponse] = set()
    history: list[dict[str, Any]] = []
    posted = asyncio.Event()

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            sockets.discard(ws)
        return ws

    async def post(request: web.Request) -> web.Response:
        data = await request.json()
        frame = json.dumps({"type": "messages", "messages": [data]})
        history.append(data)
        nonlocal posted
        posted.set()  # the bare long-poll wake-up: every waiter reads the new messages past its cursor
        posted = asyncio.Event()
        for ws in tuple(sockets):  # the bare broadcast loop
            with contextlib.suppress(ConnectionError):  # a client that left at the end of the run
                await ws.send_str(frame)
        return web.json_response(data, status=201)

    async def long_poll(request: web.Request) -> web.Response:
        after = request.query.get("after")
        if after is None:
            return web.json_response({"messages": [], "cursor": str(len(history))})
        if len(history) <= int(after):
            event = posted
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), float(request.query.get("wait", "20")))
        return web.json_response({"messages": history[int(after):], "cursor": str(len(history))})

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    app.router.add_post("/messages", post)
    app.router.add_get("/messages", long_poll)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _start(target, *args) -> multiprocessing.Process:
    p = multiprocessing.get_context("fork").Process(target=target, args=args, daemon=True)
    p.start()
    return p


# --- load generators ----------------------------------------------------------------------------------

def _vote_client(base: str, pid: str, device_ids: list[str], conns: int, out: Any) -> None:
    async def main() -> dict[str, Any]:
        lat: list[float] = []
        statuses: dict[int, int] = {}
        it = iter(enumerate(device_ids))
        connector = aiohttp.TCPConnector(limit=conns)
        async with aiohttp.ClientSession(connector=connector) as s:
            async def worker() -> None:
                for i, d in it:
                    t0 = time.perf_counter()
                    try:
                        async with s.post(f"{base}/api/v1/polls/{pid}/votes",
                                          json={"device_id": d, "option_id": 1 + i % 3}) as r:
                                await r.read()
                                statuses[r.status] = statuses.get(r.status, 0) + 1
                    except aiohttp.ClientError:
                        statuses[0] = statuses.get(0, 0) + 1
                    lat.append(time.perf_counter() - t0)

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(conns)))
            return {"elapsed": time.perf_counter() - start, "lat": lat, "statuses": statuses}

    out.put(asyncio.run(main()))


def _run_vote_load(base: str, pid: str, device_ids: list[str], procs: int, conns: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    chunks = [device_ids[i::procs] for i in range(procs)]
    start = time.perf_counter()
    workers = [ctx.Process(target=_vote_client, args=(base, pid, c, conns, q)) for c in chunks]
    for w in workers:
        w.start()
    parts = [q.get() for _ in workers]
    elapsed = time.perf_counter() - start
    for w in workers:
        w.join()
    lat = [x for p in parts for x in p["lat"]]
    statuses: dict[int, int] = {}
    for p in parts:
        for k, v in p["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    return {"requests": len(lat), "ok": ok, "statuses": {str(k): v for k, v in statuses.items()},
            "seconds": round(elapsed, 2), "per_second": round(ok / elapsed, 1),
            "p50_ms": round(_percentile(lat, 0.50) * 1000, 2), "p99_ms": round(_percentile(lat, 0.99) * 1000, 2)}


async def _until(stop: Any) -> None:
    """Clients listen until the posting is over (a multiprocessing.Event), not for a fixed time: on a busy
    machine connecting thousands of clients takes long and unevenly."""
    while not stop.is_set():
        await asyncio.sleep(0.2)


def _chat_clients(url: str, count: int, stop: Any, out: Any, ready: Any) -> None:
    async def main() -> dict[str, Any]:
        lat: list[float] = []
        received = 0
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
            sockets = []
            for _ in range(count):
                sockets.append(await s.ws_connect(url, max_msg_size=0))
            ready.put(count)

            async def reader(ws) -> None:
                nonlocal received
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    # a regex instead of json.loads: the client side must cost less than the server
                    now = time.time()
                    for stamp in _STAMP.findall(msg.data):
                        received += 1
                        lat.append(now - float(stamp))

            tasks = [asyncio.create_task(reader(ws)) for ws in sockets]
            await _until(stop)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for ws in sockets:
                await ws.close()
        return {"kind": "ws", "received": received, "lat": lat}

    out.put(asyncio.run(main()))


def _tv_clients(url: str, count: int, stop: Any, out: Any, ready: Any) -> None:
    """Long-poll TVs: each takes a cursor, then asks for what is past it (waiting up to 20 s), in a loop."""
    async def main() -> dict[str, Any]:
        lat: list[float] = []
        received = 0
        errors: dict[str, int] = {}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                         timeout=aiohttp.ClientTimeout(total=60)) as s:
            async def cursor() -> str:  # the room's cursor, once per process: every TV starts from it
                for _ in range(30):
                    async with s.get(url) as r:
                        body = await r.text()
                        if r.status == 200 and (m := _CURSOR.search(body)):
                            return m.group(1)
                    errors[f"cursor {r.status}: {body[:200]}"] = errors.get(f"cursor {r.status}: {body[:200]}", 0) + 1
                    await asyncio.sleep(1)
                raise RuntimeError(f"no cursor from {url}: {errors}")

            cursors = [await cursor()] * count
            ready.put(count)

            async def tv(i: int) -> None:
                nonlocal received
                while True:
                    try:
                        async with s.get(url, params={"after": cursors[i], "wait": "20"}) as r:
                            text = await r.text()
                            r.raise_for_status()
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                        await asyncio.sleep(1)
                        continue
                    now = time.time()
                    for stamp in _STAMP.findall(text):
                        received += 1
                        lat.append(now - float(stamp))
                    if m := _CURSOR.search(text):
                        cursors[i] = m.group(1)

            tasks = [asyncio.create_task(tv(i)) for i in range(count)]
            await _until(stop)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return {"kind": "tv", "received": received, "lat": lat, "errors": errors}

    out.put(asyncio.run(main()))


async def _post_chat(url: str, rate: float, seconds: float, body: dict[str, Any],
                     devices: list[str]) -> tuple[dict[int, int], dict[str, str]]:
    """Post at a fixed rate; each POST runs on its own so a slow answer does not slow the schedule. Returns
    the count of each answer's status (0: no answer)."""
    refusals: dict[str, str] = {}
    async with aiohttp.ClientSession() as s:
        async def one(i: int) -> int:
            payload = {**body, "device_id": devices[i % len(devices)], "text": f"t={time.time():.6f} #{i}"}
            try:
                async with s.post(url, json=payload) as r:
                    answer = await r.read()
                    if r.status != 201:  # the first refusal of each status, for the result file
                        refusals.setdefault(str(r.status), answer[:300].decode(errors="replace"))
                    return r.status
            except aiohttp.ClientError:
                return 0

        start = time.perf_counter()
        tasks = []
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i)))
        statuses: dict[int, int] = {}
        for status in await asyncio.gather(*tasks):
            statuses[status] = statuses.get(status, 0) + 1
        return statuses, refusals


def _run_chat(ws_url: str, poll_url: str, post_url: str, setting: dict[str, Any], devices: list[str],
              server_pids: list[int]) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    q, ready, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs, seconds = setting["client_procs"], setting["seconds"]
    ws_each, tv_each = setting["ws_clients"] // procs, setting["longpoll_tvs"] // procs
    rss_before = sum(psutil.Process(p).memory_info().rss for p in server_pids)
    workers = [ctx.Process(target=_chat_clients, args=(ws_url, ws_each, stop, q, ready))
               for _ in range(procs) if ws_each]
    workers += [ctx.Process(target=_tv_clients, args=(poll_url, tv_each, stop, q, ready))
                for _ in range(procs) if tv_each]
    for w in workers:
        w.start()
    for _ in workers:
        ready.get(timeout=600)
    rss_after = sum(psutil.Process(p).memory_info().rss for p in server_pids)
    time.sleep(0.5)
    statuses, refusals = asyncio.run(_post_chat(post_url, setting["rate"], seconds, {"nickname": "bench"}, devices))
    sent = statuses.get(201, 0)
    time.sleep(float(os.environ.get("BENCH_CHAT_GRACE", "5")))  # deliveries still under way count, later ones not
    stop.set()
    parts = [q.get(timeout=300) for _ in workers]
    for w in workers:
        w.join()
    lat = [x for p in parts for x in p["lat"]]
    by_kind = {kind: [p for p in parts if p["kind"] == kind] for kind in ("ws", "tv")}
    received = sum(p["received"] for p in parts)
    connections = ws_each * procs + tv_each * procs
    return {"ws_clients": ws_each * procs, "longpoll_tvs": tv_each * procs, "messages_sent": sent,
            "post_statuses": {str(k): v for k, v in statuses.items()}, "post_refusals": refusals,
            "deliveries": received, "expected_deliveries": sent * connections,
            "deliveries_per_second": round(received / seconds, 1),
            "p50_ms": round(_percentile(lat, 0.5) * 1000, 1), "p99_ms": round(_percentile(lat, 0.99) * 1000, 1),
            "server_memory_per_connection_kib": round((rss_after - rss_before) / max(1, connections) / 1024, 1),
            **{f"{kind}_deliveries": sum(p["received"] for p in ps) for kind, ps in by_kind.items()},
            **{f"{kind}_p99_ms": round(_percentile([x for p in ps for x in p["lat"]], 0.99) * 1000, 1)
               for kind, ps in by_kind.items()},
            "tv_errors": {k: v for p in by_kind["tv"] for k, v in p["errors"].items()}}


def chat_setting(quick: bool) -> dict[str, Any]:
    """The chat load: the issue's show scale by default, a small one in quick mode; each figure overridable."""
    env = os.environ.get
    return {"ws_clients": int(env("BENCH_WS_CLIENTS", "500" if quick else "5000")),
            "longpoll_tvs": int(env("BENCH_LONGPOLL_TVS", "100" if quick else "1000")),
            "rate": float(env("BENCH_CHAT_RATE", "20" if quick else "50")),
            "seconds": float(env("BENCH_CHAT_SECONDS", "5" if quick else "20")),
            "client_procs": int(env("BENCH_CHAT_CLIENT_PROCS", "2"))}


def _raise_fd_limit() -> None:
    """6,000 sockets on each side: the soft open-file limit (often 1,024) up to the hard one, inherited by the
    server and the client processes."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- orchestration ------------------------------------------------------------------------------------

def _serve(tmp: Path, port: int, redis_url: str, database_url: str | None, workers: int = 2) -> subprocess.Popen:
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": pythonpath, "ONAIR_PORT": str(port), "ONAIR_DATA_DIR": str(tmp / "data"),
           "ONAIR_REDIS_URL": redis_url, "ONAIR_ADMIN_TOKEN": TOKEN, "ONAIR_SIGNING_KEY": KEY,
           "ONAIR_LOG_LEVEL": "WARNING", "ONAIR_LOG_FORMAT": "text", "ONAIR_DB_POOL_SIZE": "8",
           # the chat bench posts 50 msg/s from a handful of devices; the per-device limit is not under test
           "ONAIR_CHAT_RATE_MESSAGES": "100000"}
    if database_url:
        env["ONAIR_DATABASE_URL"] = database_url
    return subprocess.Popen([sys.executable, "-m", "onair.cli", "serve", "--workers", str(workers), "--no-sample",
                             "--no-worker"], cwd=ROOT, env=env, stdout=open(tmp / "serve.log", "ab"),
                            stderr=subprocess.STDOUT)


def _fresh_database() -> tuple[str | None, Any]:
    server = os.environ.get("BENCH_DATABASE_URL")
    if not server:
        return None, lambda: None
    import asyncpg

    name = f"onair_bench_{uuid.uuid4().hex[:8]}"

    async def sql(statement: str) -> None:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(sql(f'CREATE DATABASE "{name}"'))
    return server.rsplit("/", 1)[0] + "/" + name, lambda: asyncio.run(sql(f'DROP DATABASE "{name}" WITH (FORCE)'))


async def _admin(base: str, method: str, path: str, body: dict | None = None) -> dict:
    async with aiohttp.ClientSession() as s, s.request(method, base + path, json=body,
                                                       headers={"Authorization": f"Bearer {TOKEN}"}) as r:
        return await r.json()


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes and their children: what serving cost, however busy the machine (a
    shared machine stretches throughput, not the CPU a request takes)."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in tree:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
    return total


def _vote_round(url: str, pid: str, ids: list[str], procs: int, conns: int, server_pids: list[int]
                ) -> dict[str, Any]:
    before = _cpu_seconds(server_pids)
    run = _run_vote_load(url, pid, ids, procs, conns)
    run["server_cpu_us_per_request"] = round((_cpu_seconds(server_pids) - before) / max(1, run["requests"]) * 1e6)
    return run


def _combine(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds taken turn about with the other side: throughput and CPU are medians, p99 the worst round's."""
    statuses: dict[str, int] = {}
    for r in rounds:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    return {"requests": sum(r["requests"] for r in rounds), "ok": sum(r["ok"] for r in rounds),
            "statuses": statuses, "seconds": round(sum(r["seconds"] for r in rounds), 2),
            "per_second": statistics.median(r["per_second"] for r in rounds),
            "p50_ms": statistics.median(r["p50_ms"] for r in rounds), "p99_ms": max(r["p99_ms"] for r in rounds),
            "server_cpu_us_per_request": statistics.median(r["server_cpu_us_per_request"] for r in rounds),
            "rounds": rounds}


def _votes(base: str, procs: int, conns: int, n_votes: int, serve_pid: int) -> dict[str, Any]:
    """BENCH_VOTE_ROUNDS rounds (default 3), bare then onair in each, every round with devices never seen before:
    on a shared machine a single pair of runs measured the neighbours as much as the servers."""
    from streaming.interaction import devices

    rounds = int(os.environ.get("BENCH_VOTE_ROUNDS", "3"))
    bare_port = _free_port()
    bare = [_start(_bare_vote_process, bare_port) for _ in range(2)]
    bare_url = f"http://127.0.0.1:{bare_port}"
    load_before = os.getloadavg()
    try:
        _wait_port(bare_port)
        ids = [devices.issue(KEY.encode()) for _ in range(n_votes + 2000)]
        warm, ids = ids[:2000], ids[2000:]
        poll = asyncio.run(_admin(base, "POST", "/api/v1/polls", {"question": "Bench?", "options": ["a", "b", "c"]}))
        asyncio.run(_admin(base, "POST", f"/api/v1/polls/{poll['id']}/open"))
        _run_vote_load(bare_url, "x", warm, procs, conns)  # warm-up of both
        warm_ok = _run_vote_load(base, poll["id"], warm, procs, conns)["ok"]
        bare_rounds, onair_rounds = [], []
        for i in range(rounds):
            chunk = ids[i::rounds]
            bare_rounds.append(_vote_round(bare_url, "x", chunk, procs, conns, [p.pid for p in bare]))
            onair_rounds.append(_vote_round(base, poll["id"], chunk, procs, conns, [serve_pid]))
        tally = asyncio.run(_admin(base, "GET", f"/api/v1/polls/{poll['id']}/results"))
    finally:
        for p in bare:
            p.terminate()
            p.join(5)
    onair_run, bare_run = _combine(onair_rounds), _combine(bare_rounds)
    return {"distinct_devices": n_votes, "rounds": rounds, "onair": onair_run, "bare_aiohttp": bare_run,
            "ratio_to_bare": round(onair_run["per_second"] / bare_run["per_second"], 3),
            "ratio_to_bare_per_round": [round(o["per_second"] / b["per_second"], 3)
                                        for o, b in zip(onair_rounds, bare_rounds, strict=True)],
            # the cost of a vote next to the bare handler's request, in CPU: onair's figure includes the
            # supervisor and an embedded PostgreSQL (a child process) when BENCH_DATABASE_URL is not set
            "cpu_ratio_bare_over_onair": round(bare_run["server_cpu_us_per_request"]
                                               / max(1, onair_run["server_cpu_us_per_request"]), 3),
            "load_average_before_after": [round(x, 2) for x in (*load_before[:1], *os.getloadavg()[:1])],
            "final_tally": tally["total"], "tally_equals_2xx": tally["total"] == onair_run["ok"] + warm_ok,
            "targets": {"votes_per_second": 20000, "ratio": 0.7, "p99_ms": 100}}


def _chat(base: str, port: int, serve_pid: int, setting: dict[str, Any]) -> dict[str, Any]:
    from streaming.interaction import devices

    children = [c.pid for c in psutil.Process(serve_pid).children()]
    bare_chat_port = _free_port()
    bare_chat = _start(_bare_chat_process, bare_chat_port)
    try:
        _wait_port(bare_chat_port)
        chat_devices = [devices.issue(KEY.encode()) for _ in range(64)]
        asyncio.run(_admin(base, "POST", "/api/v1/chat/rooms", {"room": "bench"}))  # rooms are made by staff
        room = f"{base}/api/v1/chat/bench"
        onair_chat = _run_chat(f"ws://127.0.0.1:{port}/api/v1/chat/bench/ws", f"{room}/messages",
                               f"{room}/messages", setting, chat_devices, children)
        bare = f"127.0.0.1:{bare_chat_port}"
        bare_run_chat = _run_chat(f"ws://{bare}/ws", f"http://{bare}/messages", f"http://{bare}/messages",
                                  setting, chat_devices, [bare_chat.pid])
    finally:
        bare_chat.terminate()
    return {"onair": onair_chat, "bare_aiohttp_broadcast": bare_run_chat,
            "ratio_to_bare": round(onair_chat["deliveries_per_second"]
                                   / max(1.0, bare_run_chat["deliveries_per_second"]), 3),
            "setting": setting, "full_setting": chat_setting(False),
            "targets": {"deliveries_per_second": 100000, "p99_ms": 1000, "ratio": 0.7}}


def run(results_dir: Path, quick: bool | None = None) -> dict[str, Any]:
    quick = os.environ.get("ONAIR_BENCH_QUICK", "") not in ("", "0") if quick is None else quick
    only = os.environ.get("BENCH_ONLY", "")
    n_votes = int(os.environ.get("BENCH_VOTES", "5000" if quick else "100000"))
    procs = int(os.environ.get("BENCH_CLIENT_PROCS", "2"))
    conns = int(os.environ.get("BENCH_CONNECTIONS", "64"))
    redis_bin = shutil.which("redis-server")
    if not redis_bin:
        raise RuntimeError("redis-server is needed (apt-get install redis-server)")
    _raise_fd_limit()
    # a part left out (BENCH_ONLY) keeps its figures from the file's last run
    name = "interaction_quick.json" if quick else "interaction.json"
    previous = results_dir / name
    result: dict[str, Any] = json.loads(previous.read_text()) if only and previous.exists() else {}
    result.update({"cpu_count": os.cpu_count(), "quick": quick,
                   "note": "load generator, server, PostgreSQL and Redis share one machine"})
    with tempfile.TemporaryDirectory(prefix="onair-bench-") as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)
        redis_port = _free_port()
        redis = subprocess.Popen([redis_bin, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no"], stdout=subprocess.DEVNULL)
        database_url, drop = _fresh_database()
        port = _free_port()
        serve = _serve(tmp, port, f"redis://127.0.0.1:{redis_port}/0", database_url)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_port(port, serve)
            if only in ("", "votes"):
                result["votes"] = _votes(base, procs, conns, n_votes, serve.pid)
            if only in ("", "chat"):
                result["chat"] = _chat(base, port, serve.pid, chat_setting(quick))
        finally:
            serve.terminate()
            try:
                serve.wait(30)
            except subprocess.TimeoutExpired:
                serve.kill()
            redis.terminate()
            redis.wait(10)
            drop()
    for section in ("votes", "chat"):
        for side in result.get(section, {}).values():
            if isinstance(side, dict):
                side.pop("lat", None)
    if only in ("", "votes"):
        # Where one vote's time goes (cProfile, in-process, real PostgreSQL): bench/vote_profile.py
        result["vote_profile"] = vote_profile.profile(
            int(os.environ.get("BENCH_PROFILE_VOTES", "500" if quick else "3000")))
    result["p50_p99_summary"] = {
        f"{section}_ms": [result[section]["onair"]["p50_ms"], result[section]["onair"]["p99_ms"]]
        for section in ("votes", "chat") if section in result}
    return results_file.save(results_dir, "interaction", result, quick=quick)


if __name__ == "__main__":
    print(json.dumps(run(ROOT / "bench" / "results", quick="--quick" in sys.argv[1:] or None), indent=2))
