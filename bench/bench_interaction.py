"""Live interaction under load: votes/s and chat deliveries/s, each against a bare aiohttp reference
measured in the same run with the same client.

Votes: `onair serve --workers 2` (real PostgreSQL, real Redis) takes votes from BENCH_VOTES distinct
devices (default 100,000) from BENCH_CLIENT_PROCS load-generator processes; reference: a bare aiohttp
POST handler (2 processes, SO_REUSEPORT) parsing the same JSON. Exactness: the final tally must equal
the number of 2xx answers.

Chat: BENCH_WS_CLIENTS WebSocket clients (default 1,000: 5,000 does not fit a shared 2-core box next to
the server) in one room, BENCH_CHAT_RATE messages/s posted for BENCH_CHAT_SECONDS; reference: a bare
aiohttp app that broadcasts each POSTed message to its sockets in a loop.

Vote profile: bench/vote_profile.py's breakdown of one vote (HTTP parse, JSON decode + validation, device-id
HMAC, handler and middleware, batching, commit, response), BENCH_PROFILE_VOTES votes (default 3,000).

Environment: BENCH_DATABASE_URL (a PostgreSQL server URL; a fresh database is created on it), else an
embedded PostgreSQL in a temporary folder.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import re
import shutil
import socket
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

from bench import vote_profile  # noqa: E402

KEY = "bench-signing-key"
_STAMP = re.compile(r'"text":\s*"t=([0-9.]+) #')
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
        for ws in tuple(sockets):  # the bare broadcast loop
            await ws.send_str(frame)
        return web.json_response(data, status=201)

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    app.router.add_post("/messages", post)
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


def _chat_clients(url: str, count: int, seconds: float, out: Any, ready: Any) -> None:
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
            await asyncio.sleep(seconds)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for ws in sockets:
                await ws.close()
        return {"received": received, "lat": lat}

    out.put(asyncio.run(main()))


async def _post_chat(url: str, rate: float, seconds: float, body: dict[str, Any], devices: list[str]) -> int:
    """Post at a fixed rate; each POST runs on its own so a slow answer does not slow the schedule."""
    async with aiohttp.ClientSession() as s:
        async def one(i: int) -> bool:
            payload = {**body, "device_id": devices[i % len(devices)], "text": f"t={time.time():.6f} #{i}"}
            async with s.post(url, json=payload) as r:
                await r.read()
                return r.status == 201

        start = time.perf_counter()
        tasks = []
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i)))
        return sum(await asyncio.gather(*tasks))


def _run_chat(ws_url: str, post_url: str, clients: int, rate: float, seconds: float, devices: list[str],
              server_pids: list[int]) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    q, ready = ctx.Queue(), ctx.Queue()
    procs = 2
    rss_before = sum(psutil.Process(p).memory_info().rss for p in server_pids)
    workers = [ctx.Process(target=_chat_clients, args=(ws_url, clients // procs, seconds + 8, q, ready))
               for _ in range(procs)]
    for w in workers:
        w.start()
    for _ in workers:
        ready.get(timeout=300)
    rss_after = sum(psutil.Process(p).memory_info().rss for p in server_pids)
    time.sleep(0.5)
    sent = asyncio.run(_post_chat(post_url, rate, seconds, {"nickname": "bench"}, devices))
    parts = [q.get(timeout=120) for _ in workers]
    for w in workers:
        w.join()
    lat = [x for p in parts for x in p["lat"]]
    received = sum(p["received"] for p in parts)
    return {"clients": clients, "messages_sent": sent, "deliveries": received,
            "expected_deliveries": sent * (clients // procs) * procs,
            "deliveries_per_second": round(received / seconds, 1),
            "p50_ms": round(_percentile(lat, 0.5) * 1000, 1), "p99_ms": round(_percentile(lat, 0.99) * 1000, 1),
            "server_memory_per_connection_kib": round((rss_after - rss_before) / clients / 1024, 1)}


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


def run(results_dir: Path) -> dict[str, Any]:
    from streaming.interaction import devices

    n_votes = int(os.environ.get("BENCH_VOTES", "100000"))
    procs = int(os.environ.get("BENCH_CLIENT_PROCS", "2"))
    conns = int(os.environ.get("BENCH_CONNECTIONS", "64"))
    ws_clients = int(os.environ.get("BENCH_WS_CLIENTS", "1000"))
    chat_rate = float(os.environ.get("BENCH_CHAT_RATE", "50"))
    chat_seconds = float(os.environ.get("BENCH_CHAT_SECONDS", "10"))
    redis_bin = shutil.which("redis-server")
    if not redis_bin:
        raise RuntimeError("redis-server is needed (apt-get install redis-server)")
    result: dict[str, Any] = {"cpu_count": os.cpu_count(), "note": "load generator, server, PostgreSQL and "
                              "Redis share one machine"}
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
        bare_port = _free_port()
        bare = [_start(_bare_vote_process, bare_port) for _ in range(2)]
        try:
            _wait_port(port, serve)
            _wait_port(bare_port)
            ids = [devices.issue(KEY.encode()) for _ in range(n_votes)]
            poll = asyncio.run(_admin(base, "POST", "/api/v1/polls",
                                      {"question": "Bench?", "options": ["a", "b", "c"]}))
            asyncio.run(_admin(base, "POST", f"/api/v1/polls/{poll['id']}/open"))
            # warm-up of both, then the measured runs
            _run_vote_load(f"http://127.0.0.1:{bare_port}", "x", ids[:2000], procs, conns)
            bare_run = _run_vote_load(f"http://127.0.0.1:{bare_port}", "x", ids, procs, conns)
            onair_run = _run_vote_load(base, poll["id"], ids, procs, conns)
            tally = asyncio.run(_admin(base, "GET", f"/api/v1/polls/{poll['id']}/results"))
            result["votes"] = {
                "distinct_devices": n_votes, "onair": onair_run, "bare_aiohttp": bare_run,
                "ratio_to_bare": round(onair_run["per_second"] / bare_run["per_second"], 3),
                "final_tally": tally["total"], "tally_equals_2xx": tally["total"] == onair_run["ok"],
                "targets": {"votes_per_second": 20000, "ratio": 0.7, "p99_ms": 100}}
            for p in bare:
                p.terminate()
                p.join(5)

            children = [c.pid for c in psutil.Process(serve.pid).children()]
            bare_chat_port = _free_port()
            bare_chat = _start(_bare_chat_process, bare_chat_port)
            _wait_port(bare_chat_port)
            chat_devices = [devices.issue(KEY.encode()) for _ in range(64)]
            asyncio.run(_admin(base, "POST", "/api/v1/chat/rooms", {"room": "bench"}))  # rooms are made by staff
            onair_chat = _run_chat(f"ws://127.0.0.1:{port}/api/v1/chat/bench/ws",
                                   f"{base}/api/v1/chat/bench/messages", ws_clients, chat_rate, chat_seconds,
                                   chat_devices, children)
            bare_run_chat = _run_chat(f"ws://127.0.0.1:{bare_chat_port}/ws",
                                      f"http://127.0.0.1:{bare_chat_port}/messages", ws_clients, chat_rate,
                                      chat_seconds, chat_devices, [bare_chat.pid])
            bare_chat.terminate()
            result["chat"] = {
                "onair": onair_chat, "bare_aiohttp_broadcast": bare_run_chat,
                "ratio_to_bare": round(onair_chat["deliveries_per_second"]
                                       / max(1.0, bare_run_chat["deliveries_per_second"]), 3),
                "scaled_down_from": 5000, "rate_messages_per_second": chat_rate, "seconds": chat_seconds,
                "targets": {"deliveries_per_second": 100000, "p99_ms": 1000}}
        finally:
            for p in bare:
                if p.is_alive():
                    p.terminate()
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
    # Where one vote's time goes (cProfile, in-process, real PostgreSQL): bench/vote_profile.py
    result["vote_profile"] = vote_profile.profile(int(os.environ.get("BENCH_PROFILE_VOTES", "3000")))
    result["p50_p99_summary"] = {
        "votes_ms": [result["votes"]["onair"]["p50_ms"], result["votes"]["onair"]["p99_ms"]],
        "chat_ms": [result["chat"]["onair"]["p50_ms"], result["chat"]["onair"]["p99_ms"]]}
    (results_dir / "interaction.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(run(ROOT / "bench" / "results"), indent=2))
