"""Votes/s as `onair serve --workers N` grows, against a bare aiohttp POST handler with the same N
processes and the same client, measured in the same run at each N. Meant for a many-core machine:

    BENCH_SCALING_WORKERS=1,2,4,8,16 BENCH_VOTES=200000 BENCH_CLIENT_PROCS=8 python -m bench vote_scaling

Writes bench/results/vote_scaling-<N>cpu.json and .png (matplotlib), so a many-core run is kept beside
the figures of the 2-core development machine.
Exactness is checked at every N: the poll's final tally must equal the number of 2xx answers.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.bench_interaction import (
    KEY,
    _admin,
    _bare_vote_process,
    _free_port,
    _fresh_database,
    _run_vote_load,
    _serve,
    _start,
    _wait_port,
)


def _redis_binary() -> str:
    found = os.environ.get("BENCH_REDIS_SERVER") or shutil.which("redis-server")
    if not found:
        raise RuntimeError("redis-server is needed (apt-get install redis-server, or BENCH_REDIS_SERVER=path)")
    return found


def _point(tmp: Path, workers: int, ids: list[str], procs: int, conns: int, redis_url: str) -> dict[str, Any]:
    database_url, drop = _fresh_database()
    port = _free_port()
    data = tmp / f"w{workers}"
    data.mkdir()
    os.chmod(data, 0o755)
    serve = _serve(data, port, redis_url, database_url, workers=workers)
    bare_port = _free_port()
    bare = [_start(_bare_vote_process, bare_port) for _ in range(workers)]
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_port(port, serve)
        _wait_port(bare_port)
        poll = asyncio.run(_admin(base, "POST", "/api/v1/polls", {"question": "Scale?", "options": ["a", "b", "c"]}))
        asyncio.run(_admin(base, "POST", f"/api/v1/polls/{poll['id']}/open"))
        _run_vote_load(f"http://127.0.0.1:{bare_port}", "x", ids[:5000], procs, conns)  # warm-up
        bare_run = _run_vote_load(f"http://127.0.0.1:{bare_port}", "x", ids, procs, conns)
        onair_run = _run_vote_load(base, poll["id"], ids, procs, conns)
        tally = asyncio.run(_admin(base, "GET", f"/api/v1/polls/{poll['id']}/results"))
        for run in (bare_run, onair_run):
            run.pop("lat", None)
        return {"workers": workers, "onair": onair_run, "bare_aiohttp": bare_run,
                "ratio_to_bare": round(onair_run["per_second"] / bare_run["per_second"], 3),
                "final_tally": tally["total"], "exact": tally["total"] == onair_run["ok"]}
    finally:
        for p in bare:
            p.terminate()
            p.join(5)
        serve.terminate()
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:
            serve.kill()
        drop()


def run(results_dir: Path) -> dict[str, Any]:
    from streaming.interaction import devices

    workers = [int(x) for x in os.environ.get("BENCH_SCALING_WORKERS", "1,2").split(",")]
    n_votes = int(os.environ.get("BENCH_VOTES", "50000"))
    procs = int(os.environ.get("BENCH_CLIENT_PROCS", "2"))
    conns = int(os.environ.get("BENCH_CONNECTIONS", "64"))
    ids = [devices.issue(KEY.encode()) for _ in range(n_votes)]
    points = []
    with tempfile.TemporaryDirectory(prefix="onair-scale-") as tmp_name:
        tmp = Path(tmp_name)
        os.chmod(tmp, 0o755)
        redis_port = _free_port()
        redis = subprocess.Popen([_redis_binary(), "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no"], stdout=subprocess.DEVNULL)
        try:
            for n in workers:
                point = _point(tmp, n, ids, procs, conns, f"redis://127.0.0.1:{redis_port}/0")
                print(json.dumps(point), flush=True)
                points.append(point)
        finally:
            redis.terminate()
            redis.wait(10)
    result = {"cpu_count": os.cpu_count(), "votes_per_point": n_votes, "client_processes": procs,
              "connections_per_client": conns, "points": points,
              "note": "server, PostgreSQL, Redis and the load generator share one machine"}
    stem = f"vote_scaling-{os.cpu_count()}cpu"
    (results_dir / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    _plot(results_dir / f"{stem}.png", points)
    return result


def _plot(path: Path, points: list[dict[str, Any]]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    xs = [p["workers"] for p in points]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(xs, [p["onair"]["per_second"] for p in points], "o-", label="onair acknowledged votes/s")
    ax.plot(xs, [p["bare_aiohttp"]["per_second"] for p in points], "s--", label="bare aiohttp POST/s")
    ax.set_xlabel("web processes (--workers)")
    ax.set_ylabel("requests per second")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
