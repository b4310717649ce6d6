"""CDN origin benchmark -> bench/results/origin.json.

(a) segment GETs/s served by `onair serve --workers 2` directly,
(o) the same through deploy/nginx/onair-offload.conf in front of a second `onair serve --workers 2` with
    ONAIR_ORIGIN_OFFLOAD=nginx and ONAIR_ORIGIN_OFFLOAD_DECISION_SECONDS=0 (onair decides every request, nginx
    sends the file),
(r) the same with decision reuse (a third `onair serve --workers 2`, ONAIR_ORIGIN_OFFLOAD_DECISION_SECONDS at
    its default): nginx keeps the answer onair allowed a couple of seconds and sends it again without asking, vs
(b) nginx serving the very same file from disk (`location /files/ { alias ... }`),
    same client (wrk when installed, else an aiohttp client), same concurrency, duration and nginx workers;
    `/healthz` of the direct onair as the framework's ceiling (a handler doing nothing);
(c) show-start storm: 2,000 concurrent players through the deploy/nginx cache (cold) each fetching
    master, media playlist, init and the first two segments; cache-hit fraction (X-Cache-Status) and
    origin hits per object (from nginx's upstream log: every request nginx sent to onair).

Needs PostgreSQL (ONAIR_BENCH_DATABASE_URL, else ONAIR_TEST_DATABASE_URL, else
postgresql://postgres@127.0.0.1:5432/postgres; a scratch database is created and dropped), redis-server
and nginx on PATH (or /usr/sbin/nginx). `ONAIR_BENCH_QUICK=1`: 1 s per measurement, one round, a small storm
(checks that it runs; the figures mean little).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import origin_profile  # noqa: E402
from onair.core.settings import Settings  # noqa: E402
from tests.nginx_cdn import nginx_binary, running_nginx  # noqa: E402
from tests.origin_media import OUTPUTS, make_media  # noqa: E402
from tests.tools import free_port, port_open  # noqa: E402

ASSET = "benchshow23"
CONCURRENCY = 64
DURATION = 4
ROUNDS = 3
STORM_CLIENTS = 2000
STORM_OBJECTS = ["hls/master.m3u8", "hls/stream.m3u8", "hls/init.mp4", "hls/seg_0.m4s", "hls/seg_1.m4s"]


def _pg_url() -> str:
    return (os.environ.get("ONAIR_BENCH_DATABASE_URL") or os.environ.get("ONAIR_TEST_DATABASE_URL")
            or "postgresql://postgres@127.0.0.1:5432/postgres")


async def _create_db(server: str, name: str, drop: bool = False) -> None:
    conn = await asyncpg.connect(server)
    try:
        if drop:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _insert_asset(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("INSERT INTO assets (id, title, status, outputs, ready_at) "
                           "VALUES ($1, 'Bench show', 'ready', $2::jsonb, now())", ASSET, json.dumps(OUTPUTS))
    finally:
        await conn.close()


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not port_open("127.0.0.1", port):
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start in time")
        time.sleep(0.1)


async def _wait_ready(url: str, proc: subprocess.Popen, within: float = 60) -> None:
    """The socket listens before migrations finish; /readyz answers once the app is up."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("onair serve did not become ready")
            await asyncio.sleep(0.2)


def _wrk(url: str) -> float | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    out = subprocess.run([wrk, "-t2", f"-c{CONCURRENCY}", f"-d{DURATION}s", url], capture_output=True, text=True,
                         timeout=DURATION + 60).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise RuntimeError(f"wrk saw errors from {url}: {non2xx.group(0)}")
    return float(m.group(1)) if m else None


async def _aiohttp_rate(url: str) -> float:
    done = 0
    stop = time.monotonic() + DURATION

    async def worker(s: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.monotonic() < stop:
            async with s.get(url) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"{url}: {r.status}")
            done += 1

    start = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as s:
        await asyncio.gather(*(worker(s) for _ in range(CONCURRENCY)))
    return done / (time.monotonic() - start)


def _workers_cpu(prefix: Path) -> float:
    """CPU seconds used so far by the nginx workers started with `prefix` (what a request costs nginx does not
    depend on what else the shared machine runs, unlike requests/s)."""
    master = (prefix / "nginx.pid").read_text().strip()
    pids = subprocess.run(["pgrep", "-P", master, "-f", "worker process"], capture_output=True, text=True).stdout
    ticks = 0
    for pid in pids.split():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _rate_and_cpu(url: str, prefix: Path) -> tuple[float, float]:
    """(requests/s, nginx worker CPU microseconds per request)."""
    before = _workers_cpu(prefix)
    rate = _rate(url)[0]
    return rate, (_workers_cpu(prefix) - before) / (rate * DURATION) * 1e6


def _rate(url: str) -> tuple[float, str]:
    rate = _wrk(url)
    if rate is not None:
        return rate, "wrk"
    return asyncio.run(_aiohttp_rate(url)), "aiohttp"


async def _same_bytes(*urls: str) -> None:
    """The columns serve the same object (else the comparison means nothing)."""
    async with aiohttp.ClientSession() as s:
        bodies = []
        for url in urls:
            async with s.get(url) as r:
                if r.status != 200:
                    raise RuntimeError(f"{url}: {r.status}")
                bodies.append(await r.read())
    if len(set(bodies)) != 1:
        raise RuntimeError("direct, offload and static answers differ")


async def _decisions(url: str, n: int = 50) -> dict[str, int]:
    """How nginx answered (X-Onair-Decision): proves the reuse column measured kept decisions."""
    seen: Counter = Counter()
    async with aiohttp.ClientSession() as s:
        for _ in range(n):
            async with s.get(url) as r:
                await r.read()
                seen[r.headers.get("X-Onair-Decision", "NONE")] += 1
    return dict(seen)


async def _storm(cdn: str) -> dict:
    statuses: Counter = Counter()
    errors = 0
    start_gate = asyncio.Event()

    async def player(s: aiohttp.ClientSession) -> None:
        nonlocal errors
        await start_gate.wait()
        for key in STORM_OBJECTS:
            try:
                async with s.get(f"{cdn}/media/{ASSET}/{key}") as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                    statuses[r.headers.get("X-Cache-Status", "NONE")] += 1
            except aiohttp.ClientError:
                errors += 1

    connector = aiohttp.TCPConnector(limit=STORM_CLIENTS, limit_per_host=STORM_CLIENTS)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as s:
        tasks = [asyncio.create_task(player(s)) for _ in range(STORM_CLIENTS)]
        await asyncio.sleep(0)
        t0 = time.monotonic()
        start_gate.set()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - t0
    total = sum(statuses.values())
    return {"requests": total, "errors": errors, "seconds": round(elapsed, 2),
            "cache_status": dict(statuses), "hit_fraction": round(statuses["HIT"] / total, 5) if total else 0}


def _serve(env: dict[str, str], port: int, workers: int, procs: list[subprocess.Popen]) -> str:
    procs.append(subprocess.Popen([sys.executable, "-m", "onair.cli", "serve", "--workers", str(workers),
                                   "--no-worker", "--no-sample"], cwd=ROOT, env={**env, "ONAIR_PORT": str(port)},
                                  stdout=subprocess.DEVNULL))
    _wait_port(port, procs[-1])
    asyncio.run(_wait_ready(f"http://127.0.0.1:{port}/readyz", procs[-1]))
    return f"http://127.0.0.1:{port}"


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def run(results_dir: Path) -> dict:
    global DURATION, ROUNDS, STORM_CLIENTS
    if os.environ.get("ONAIR_BENCH_QUICK", "") not in ("", "0"):
        DURATION, ROUNDS, STORM_CLIENTS = 1, 1, 100
    nginx = nginx_binary()
    redis = shutil.which("redis-server")
    if nginx is None or redis is None:
        raise RuntimeError("bench origin needs nginx and redis-server installed")
    tmp = Path(tempfile.mkdtemp(prefix="onair-bench-origin-"))
    os.chmod(tmp, 0o755)
    server_url = _pg_url()
    dbname = f"onair_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_create_db(server_url, dbname))
    dsn = server_url.rpartition("/")[0] + "/" + dbname
    procs: list[subprocess.Popen] = []
    load_before = os.getloadavg()[0]   # other work on the machine: the figures mean less when it is high
    try:
        redis_port = free_port()
        procs.append(subprocess.Popen([redis, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no"], stdout=subprocess.DEVNULL))
        _wait_port(redis_port, procs[-1])

        data = tmp / "data"
        media = make_media(tmp / "media")
        objects = data / "objects" / "assets" / ASSET
        for key, path in media.items():
            (objects / key).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, objects / key)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "ONAIR_DATA_DIR": str(data), "ONAIR_DATABASE_URL": dsn,
               "ONAIR_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
               "ONAIR_HOST": "127.0.0.1", "ONAIR_LOG_LEVEL": "WARNING", "ONAIR_LOG_FORMAT": "text"}
        workers = 2
        origin = _serve(env, free_port(), workers, procs)
        # the same files and database, offload on (every request asked; decisions kept): idle while the
        # others are measured
        offload_env = {**env, "ONAIR_ORIGIN_OFFLOAD": "nginx"}
        offload_origin = _serve({**offload_env, "ONAIR_ORIGIN_OFFLOAD_DECISION_SECONDS": "0"}, free_port(), workers,
                                procs)
        reuse_origin = _serve(offload_env, free_port(), workers, procs)
        port = int(origin.rsplit(":", 1)[1])
        asyncio.run(_insert_asset(dsn))
        segment_key = "hls/seg_0.m4s"
        seg_size = media[segment_key].stat().st_size

        # the onair URL works and is the same bytes nginx will serve
        direct_url = f"{origin}/media/{ASSET}/{segment_key}"
        files_extra = f"server {{ listen 127.0.0.1:@@FILES_PORT@@; location /files/ {{ alias {data}/objects/; }} }}"
        files_port = free_port()
        upstream_log = tmp / "upstream.log"
        extra = (files_extra.replace("@@FILES_PORT@@", str(files_port))
                 + "\n    log_format upstream '$uri $upstream_status';"
                 + f"\n    access_log {upstream_log} upstream if=$upstream_addr;")

        with running_nginx(nginx, tmp / "nginx", f"127.0.0.1:{port}", workers=workers, extra=extra) as cdn, \
                running_nginx(nginx, tmp / "nginx-offload", offload_origin.removeprefix("http://"), workers=workers,
                              site="onair-offload.conf", objects=data / "objects") as edge, \
                running_nginx(nginx, tmp / "nginx-reuse", reuse_origin.removeprefix("http://"), workers=workers,
                              site="onair-offload.conf", objects=data / "objects") as reuse_edge:
            static_url = f"http://127.0.0.1:{files_port}/files/assets/{ASSET}/{segment_key}"
            offload_url = f"{edge}/media/{ASSET}/{segment_key}"
            reuse_url = f"{reuse_edge}/media/{ASSET}/{segment_key}"
            asyncio.run(_same_bytes(direct_url, offload_url, reuse_url, static_url))
            # Interleaved rounds, medians: the dev machine is shared, so load drifts during a run.
            direct, offload, reuse, healthz, static = [], [], [], [], []
            cpu: dict[str, list[float]] = {"static": [], "offload_reuse": []}
            client = "wrk"
            for _ in range(ROUNDS):
                rate, client = _rate(direct_url)
                direct.append(rate)
                offload.append(_rate(offload_url)[0])
                for column, url, prefix, rates in (("offload_reuse", reuse_url, tmp / "nginx-reuse", reuse),
                                                   ("static", static_url, tmp / "nginx", static)):
                    rate, us = _rate_and_cpu(url, prefix)
                    rates.append(rate)
                    cpu[column].append(us)
                healthz.append(_rate(f"{origin}/healthz")[0])  # the framework's ceiling: a handler doing nothing
            direct_rate, offload_rate, reuse_rate, static_rate, healthz_rate = (
                statistics.median(x) for x in (direct, offload, reuse, static, healthz))
            decisions = {"offload": asyncio.run(_decisions(offload_url)),
                         "offload_reuse": asyncio.run(_decisions(reuse_url))}
            storm = asyncio.run(_storm(cdn))
        origin_hits: Counter = Counter()
        if upstream_log.exists():
            for line in upstream_log.read_text().splitlines():
                uri = line.split(" ", 1)[0]
                origin_hits[uri.removeprefix(f"/media/{ASSET}/")] += 1
        result = {
            "machine": {"cpus": os.cpu_count(), "note": "shared 2-core dev machine; client, onair and nginx "
                                                        "compete for the same cores",
                        "load_average_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)]},
            "segment_bytes": seg_size,
            "client": client, "concurrency": CONCURRENCY, "duration_s": DURATION,
            "rounds": ROUNDS, "a_rounds_rps": [round(x) for x in direct], "b_rounds_rps": [round(x) for x in static],
            "o_rounds_rps": [round(x) for x in offload], "r_rounds_rps": [round(x) for x in reuse],
            "healthz_rounds_rps": [round(x) for x in healthz],
            "a_onair_direct_rps": round(direct_rate, 1), "onair_workers": workers,
            "o_onair_nginx_offload_rps": round(offload_rate, 1),
            "r_onair_nginx_offload_reuse_rps": round(reuse_rate, 1),
            "r_decision_seconds": Settings().origin_offload_decision_seconds, "x_onair_decision_of_50_gets": decisions,
            "onair_healthz_rps_reference": round(healthz_rate, 1),
            "b_nginx_static_rps": round(static_rate, 1), "nginx_workers": workers,
            "ratio_a_over_b": _ratio(direct_rate, static_rate),                # target >= 0.30
            "ratio_o_over_b": _ratio(offload_rate, static_rate),
            "ratio_r_over_b": _ratio(reuse_rate, static_rate),                 # target >= 0.85
            "ratio_r_over_o": _ratio(reuse_rate, offload_rate),
            "nginx_worker_cpu_us_per_request": {k: round(statistics.median(v), 2) for k, v in cpu.items()},
            "ratio_nginx_cpu_static_over_reuse": _ratio(statistics.median(cpu["static"]),
                                                        statistics.median(cpu["offload_reuse"])),
            "ratio_healthz_over_b": _ratio(healthz_rate, static_rate),         # the ceiling for (a)
            "ratio_a_over_healthz": _ratio(direct_rate, healthz_rate),
            "ratio_o_over_healthz": _ratio(offload_rate, healthz_rate),
            "c_storm": {"clients": STORM_CLIENTS, "objects_per_client": len(STORM_OBJECTS), **storm,
                        "origin_hits_per_object": {k: origin_hits.get(k, 0) for k in STORM_OBJECTS}},
        }
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        try:
            asyncio.run(_create_db(server_url, dbname, drop=True))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    # where a direct-mode request's time goes (cProfile, in-process): bench/origin_profile.py
    result["a_profile"] = origin_profile.profile(300 if DURATION == 1 else 3000)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "origin.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
