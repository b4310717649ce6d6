"""Live interaction under load: votes/s and chat deliveries/s, each against a bare aiohttp reference
measured in the same run with the same client.

Votes: `onair serve --workers 2` (real PostgreSQL, real Redis) takes votes from BENCH_VOTES distinct
devices (default 100,000) from BENCH_CLIENT_PROCS load-generator processes; reference: a bare aiohttp
POST handler (2 processes, SO_REUSEPORT) parsing the same JSON. Exactness: the final tally must equal
the number of 2xx answers.

Chat (the issue's show scale, bench/chat_load.py): BENCH_WS_CLIENTS WebSocket clients (default 5,000) and
BENCH_LONGPOLL_TVS long-poll TVs (default 1,000) in one room, BENCH_CHAT_RATE messages/s (default 50) posted
for BENCH_CHAT_SECONDS (default 20); references with the same clients in the same run: a bare aiohttp
broadcast loop, and the same app writing prebuilt frames (the clients' ceiling on this machine).

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

from bench import chat_load, results_file, vote_profile  # noqa: E402

KEY = "bench-signing-key"
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
           "ONAIR_CHAT_RATE_MESSAGES": "100000", "ONAIR_CHAT_IP_MESSAGES": "0"}
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
    """bench/chat_load.py: onair, then the bare loop, then the prebuilt-frames ceiling, with the same clients."""
    from streaming.interaction import devices

    children = [c.pid for c in psutil.Process(serve_pid).children()]
    chat_devices = [devices.issue(KEY.encode()) for _ in range(64)]
    asyncio.run(_admin(base, "POST", "/api/v1/chat/rooms", {"room": "bench"}))  # rooms are made by staff
    room = "/api/v1/chat/bench"
    result: dict[str, Any] = {"onair": chat_load.run_load(port, f"{room}/ws", f"{room}/messages",
                                                          f"{base}{room}/messages", setting, chat_devices, children)}
    for name, prebuilt in (("bare_aiohttp_broadcast", False), ("ceiling_prebuilt_frames", True)):
        ref_port = chat_load.free_port()
        ref = _start(chat_load.reference_process, ref_port, prebuilt)
        try:
            _wait_port(ref_port)
            result[name] = chat_load.run_load(ref_port, "/ws", "/messages", f"http://127.0.0.1:{ref_port}/messages",
                                              setting, chat_devices, [ref.pid])
        finally:
            ref.kill()  # a throwaway process; aiohttp's graceful exit trips over the TVs' pending long-polls
            ref.join(10)
    onair, bare, ceiling = (result[k]["deliveries_per_second"] for k in
                            ("onair", "bare_aiohttp_broadcast", "ceiling_prebuilt_frames"))
    return {**result, "ratio_to_bare": round(onair / max(1.0, bare), 3),
            "ratio_to_ceiling": round(onair / max(1.0, ceiling), 3),
            "offered_deliveries_per_second": setting["rate"] * (setting["ws_clients"] + setting["longpoll_tvs"]),
            "setting": setting, "full_setting": chat_load.setting(False),
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
                result["chat"] = _chat(base, port, serve.pid, chat_load.setting(quick))
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
