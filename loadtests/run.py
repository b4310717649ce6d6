"""Run a live-event load scenario headless against a local `onair serve --workers N` (loopback only).

    python -m loadtests.run --scenario vote_now --users 500 --duration 30 --workers 2
    make loadtest SCENARIO=vote_now USERS=500 DURATION=30 WORKERS=2      (SCENARIO=all runs the four)

Starts its own redis-server on a free port and onair on 127.0.0.1 (ONAIR_DATABASE_URL from the
environment, else onair's embedded PostgreSQL in a temporary data dir), seeds what the scenario needs
through the admin API, runs locust bounded in users, time and requests, and writes to loadtests/results/:
<scenario>_stats.csv, _stats_history.csv, _failures.csv, <scenario>.html (locust's report with charts) and
<scenario>_summary.json (req/s, failure rate, p50/p95/p99 per endpoint; for votes the exactness check).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtests import _breaking_news_report as edge_report
from loadtests._live_channel import live_channel, live_env

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "loadtests"
RESULTS = HERE / "results"
SCENARIOS = ("vote_now", "redbutton_storm", "show_start", "chat_storm", "breaking_news")  # the live events (`all`)
THROUGH_CACHE = ("show_start", "breaking_news")   # loaded through deploy/nginx unless --target says otherwise
EXTRA = ("baseline",)  # reference: health probes only


class ScenarioUnavailable(RuntimeError):
    """The server lacks what the scenario needs (e.g. an API not merged yet)."""


# --- processes ---------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen[Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


def stop(proc: subprocess.Popen[Any], timeout: float = 40) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found: apt-get install redis-server (needed for --workers > 1)")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc, 10)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(proc, 10)


@dataclass
class Server:
    base: str
    admin_token: str
    pid: int
    data_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, body: Any = None, *, admin: bool = True,
                data: bytes | None = None, content_type: str = "application/json") -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.admin_token}"} if admin else {}
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as err:
            raw, status = err.read(), err.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")


@contextlib.contextmanager
def onair_server(workers: int, log_path: Path, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """`python -m onair.cli serve --workers N` on a free loopback port, with its own Redis and data dir."""
    token = secrets.token_urlsafe(24)
    port = free_port()
    with redis_server() as redis_url, tempfile.TemporaryDirectory(prefix="onair-loadtest-") as data:
        os.chmod(data, 0o755)  # the embedded PostgreSQL may run as another user (root -> nobody)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ONAIR_", "LOADTEST_"))}
        env.update(PYTHONPATH=str(ROOT), ONAIR_HOST="127.0.0.1", ONAIR_PORT=str(port), ONAIR_DATA_DIR=data,
                   ONAIR_ADMIN_TOKEN=token, ONAIR_REDIS_URL=redis_url, ONAIR_LOG_LEVEL="WARNING",
                   ONAIR_ALLOW_PRIVATE_URLS="false",
                   # every simulated viewer comes from 127.0.0.1: the per-IP/subnet minting limits would
                   # stop the load test, not an attacker (the proof-of-work still runs for each device)
                   ONAIR_DEVICE_MINT_PER_IP="0", ONAIR_DEVICE_MINT_PER_SUBNET="0", ONAIR_CHAT_IP_MESSAGES="0")
        if os.environ.get("ONAIR_DATABASE_URL"):
            env["ONAIR_DATABASE_URL"] = os.environ["ONAIR_DATABASE_URL"]
        env.update(extra_env or {})
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("w") as log:
            proc = subprocess.Popen([sys.executable, "-m", "onair.cli", "serve", "--workers", str(workers),
                                     "--no-sample"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                server = Server(f"http://127.0.0.1:{port}", token, proc.pid, Path(data), env)
                deadline = time.monotonic() + 180  # the embedded PostgreSQL initialises on first start
                while True:
                    if proc.poll() is not None:
                        raise RuntimeError(f"onair serve exited with {proc.returncode}; see {log_path}")
                    with contextlib.suppress(OSError):
                        if server.request("GET", "/readyz", admin=False)[0] == 200:
                            break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"onair did not become ready; see {log_path}")
                    time.sleep(0.2)
                yield server
            finally:
                stop(proc)


# --- seeding (admin API) -------------------------------------------------------------------------------

def _need(status: int, body: Any, what: str, ok: tuple[int, ...] = (200, 201)) -> Any:
    if status in (404, 405):
        raise ScenarioUnavailable(f"{what}: the server answers {status} (feature not available on this build)")
    if status not in ok:
        raise RuntimeError(f"{what}: HTTP {status}: {body}")
    return body


def seed_poll(server: Server) -> dict[str, str]:
    poll = _need(*server.request("POST", "/api/v1/polls", {"question": "Who wins tonight?",
                                                           "options": ["Anna", "Ben", "Chloé"]}), "create poll")
    _need(*server.request("POST", f"/api/v1/polls/{poll['id']}/open"), "open poll")
    return {"POLL_ID": str(poll["id"]), "OPTION_IDS": ",".join(str(o["id"]) for o in poll["options"])}


def seed_hbbtv_app(server: Server) -> dict[str, str]:
    slug = f"lt{uuid.uuid4().hex[:8]}"
    body: dict[str, Any] = {"slug": slug, "name": "Load test show", "org_id": 4660, "app_id": 1}
    with contextlib.suppress(ScenarioUnavailable, RuntimeError):
        body["poll_id"] = seed_poll(server)["POLL_ID"]  # a vote overlay if polls exist on this build
    _need(*server.request("POST", "/api/v1/hbbtv/apps", body), "register HbbTV app")
    return {"APP_SLUG": slug}


def seed_asset(server: Server, timeout: float = 300) -> dict[str, str]:
    import imageio_ffmpeg

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-f", "lavfi", "-i",
                        "testsrc2=size=320x180:rate=25:duration=8", "-f", "lavfi", "-i",
                        "sine=frequency=440:sample_rate=48000:duration=8", "-c:v", "libx264", "-preset",
                        "ultrafast", "-c:a", "aac", "-shortest", str(clip)], check=True)
        boundary = uuid.uuid4().hex
        data = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nLoad test\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.mp4\"\r\n"
                f"Content-Type: video/mp4\r\n\r\n").encode() + clip.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    asset = _need(*server.request("POST", "/api/v1/assets", data=data,
                                  content_type=f"multipart/form-data; boundary={boundary}"),
                  "upload asset", ok=(201, 202))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = server.request("GET", f"/api/v1/assets/{asset['id']}")
        if status == 200 and body.get("status") == "ready":
            return {"ASSET_ID": str(asset["id"])}
        if status == 200 and body.get("status") == "failed":
            raise RuntimeError(f"asset failed: {body.get('error')}")
        time.sleep(1)
    raise RuntimeError("asset not ready in time")


def seed_chat_room(server: Server) -> dict[str, str]:
    room = f"lt{uuid.uuid4().hex[:8]}"
    _need(*server.request("POST", "/api/v1/chat/rooms", {"room": room}), "create chat room")  # staff make rooms
    _need(*server.request("GET", f"/api/v1/chat/{room}/messages", admin=False), "read chat room")
    return {"CHAT_ROOM": room}


SEEDERS = {
    "vote_now": seed_poll,
    "redbutton_storm": seed_hbbtv_app,
    "show_start": seed_asset,
    "chat_storm": seed_chat_room,
    "baseline": lambda server: {},
}


# --- locust and the summary ------------------------------------------------------------------------------

@dataclass
class RunConfig:
    scenario: str
    users: int = 200
    duration: float = 30.0
    workers: int = 1
    max_requests: int = 1_000_000
    processes: int = 0            # locust --processes (0: one locust process)
    target: str | None = None     # e.g. the nginx cache for show_start; default: the origin
    out: Path = RESULTS
    extra_env: dict[str, str] = field(default_factory=dict)
    lead: float = 0.0             # seconds the scenario runs before DURATION starts (breaking_news: the join window)
    playlist_lock: bool = False   # breaking_news: nginx's cache lock on blocking reloads too (deploy/nginx: off)


def run_locust(cfg: RunConfig, host: str, seeded: dict[str, str],
               admin_token: str) -> tuple[Path, Counter[str], list[tuple]]:
    cfg.out.mkdir(parents=True, exist_ok=True)
    prefix = cfg.out / cfg.scenario
    counters_dir = Path(tempfile.mkdtemp(prefix="locust-counters-"))
    env = dict(os.environ)
    env.update({f"LOADTEST_{k}": v for k, v in seeded.items()})
    env.update(LOADTEST_USERS=str(cfg.users), LOADTEST_DURATION=str(cfg.duration),
               LOADTEST_MAX_REQUESTS=str(cfg.max_requests), LOADTEST_ADMIN_TOKEN=admin_token,
               LOADTEST_COUNTERS_DIR=str(counters_dir), **cfg.extra_env)
    argv = [sys.executable, "-m", "locust", "-f", str(HERE / f"{cfg.scenario}.py"), "--headless",
            "--host", host, "--csv", str(prefix), "--csv-full-history", "--html", f"{prefix}.html",
            "--only-summary", "--run-time", f"{int(cfg.duration + cfg.lead) + 15}s", "--stop-timeout", "5",
            "--exit-code-on-error", "0", "--loglevel", "WARNING"]
    if cfg.processes:
        argv += ["--processes", str(cfg.processes)]
    with (cfg.out / f"{cfg.scenario}_locust.log").open("w") as log:
        subprocess.run(argv, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT, check=True,
                       timeout=cfg.duration + cfg.lead + 180)
    counters: Counter[str] = Counter()
    for path in counters_dir.glob("counters-*.json"):
        counters.update(json.loads(path.read_text()))
    held = edge_report.read_held(counters_dir)
    shutil.rmtree(counters_dir, ignore_errors=True)
    return prefix, counters, held


def _num(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def endpoint_stats(prefix: Path) -> dict[str, dict[str, Any]]:
    stats = {}
    with open(f"{prefix}_stats.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            count = int(row["Request Count"])
            failures = int(row["Failure Count"])
            stats[row["Name"] if row["Name"] != "Aggregated" else "ALL"] = {
                "requests": count, "failures": failures,
                "failure_rate": failures / count if count else 0.0,
                "req_per_s": _num(row["Requests/s"]),
                "p50_ms": _num(row["50%"]), "p95_ms": _num(row["95%"]), "p99_ms": _num(row["99%"]),
                "max_ms": _num(row["Max Response Time"]),
            }
    return stats


def peak_rps(prefix: Path) -> float:
    peak = 0.0
    with contextlib.suppress(FileNotFoundError), open(f"{prefix}_stats_history.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["Name"] == "Aggregated":
                peak = max(peak, _num(row["Requests/s"]) or 0.0)
    return peak


def summarise(cfg: RunConfig, server: Server, prefix: Path, counters: Counter[str],
              seeded: dict[str, str]) -> dict[str, Any]:
    stats = endpoint_stats(prefix)
    total = stats.get("ALL", {})
    summary: dict[str, Any] = {
        "scenario": cfg.scenario, "users": cfg.users, "duration_s": cfg.duration, "web_workers": cfg.workers,
        "cpu_count": os.cpu_count(), "requests": total.get("requests", 0),
        "req_per_s": total.get("req_per_s"), "peak_req_per_s": peak_rps(prefix),
        "failure_rate": total.get("failure_rate"), "endpoints": stats,
        "counters": {k: v for k, v in counters.items() if not k.startswith("ack_at_")},
        "reports": {"html": f"{prefix.name}.html", "csv": f"{prefix.name}_stats.csv"},
    }
    if cfg.scenario == "vote_now":
        status, results = server.request("GET", f"/api/v1/polls/{seeded['POLL_ID']}/results", admin=False)
        acked = counters.get("votes_acknowledged", 0)
        tally = int(results["total"]) if status == 200 else None
        per_second = [v for k, v in counters.items() if k.startswith("ack_at_")]
        summary["votes"] = {
            "acknowledged": acked, "tally": tally,
            "exact": tally == acked, "lost": None if tally is None else max(acked - tally, 0),
            "recorded_unacknowledged": None if tally is None else max(tally - acked, 0),
            "peak_acknowledged_per_s": max(per_second, default=0),
            "failure_rate": stats.get("POST /api/v1/polls/{id}/votes", {}).get("failure_rate"),
        }
    if cfg.scenario == "show_start":
        cache = {k[len("cache_"):]: v for k, v in counters.items() if k.startswith("cache_")}
        seen = sum(cache.values())
        summary["cache"] = {"by_status": cache, "hit_ratio": cache.get("HIT", 0) / seen if seen else None,
                            "target": cfg.target or server.base}
    if cfg.scenario == "redbutton_storm":
        summary["app_document_p99_ms"] = stats.get("GET /hbbtv/{app}/ (document)", {}).get("p99_ms")
    return summary


@contextlib.contextmanager
def _cache_in_front(cfg: RunConfig, origin: str, log: Path) -> Iterator[str | None]:
    """The show-start and breaking-news crowds go through the deploy/nginx CDN config (Debian nginx) unless a target
    is given; nginx also writes one line per request with its cache status to `log`."""
    from tests.nginx_cdn import nginx_binary, running_nginx

    binary = nginx_binary()
    if cfg.scenario not in THROUGH_CACHE or cfg.target or binary is None:
        yield cfg.target
        return
    edit = None
    if cfg.playlist_lock:
        def edit(name: str, text: str) -> str:
            return text.replace("proxy_cache_lock off;", "proxy_cache_lock on;") if name == "onair-cdn.conf" else text
    with tempfile.TemporaryDirectory(prefix="loadtest-nginx-") as tmp, \
            running_nginx(binary, Path(tmp), origin.removeprefix("http://"), workers=2,
                          extra=edge_report.nginx_extra(log), edit=edit) as cache:
        yield cache


def _seeded(cfg: RunConfig, server: Server, stack: contextlib.ExitStack) -> dict[str, str]:
    if cfg.scenario == "breaking_news":   # published until the run is over
        return stack.enter_context(live_channel(server, cfg.lead + cfg.duration + 120))
    return SEEDERS[cfg.scenario](server)


def _server_env(cfg: RunConfig) -> dict[str, str]:
    if cfg.scenario != "breaking_news":
        return {}
    # Every simulated player sits on 127.0.0.1: no access log line per held request either (log volume, not a
    # limit); nginx's log counts the origin's requests.
    return {**live_env(free_port(), free_port()), "ONAIR_ACCESS_LOG": "errors"}


def run_scenario(cfg: RunConfig) -> dict[str, Any]:
    """Start onair, seed, load, summarise; writes <out>/<scenario>_summary.json and returns it."""
    cfg.out.mkdir(parents=True, exist_ok=True)
    if cfg.scenario == "breaking_news":
        cfg.lead = float(cfg.extra_env.setdefault("LOADTEST_JOIN_WINDOW", "10"))
    edge_log = cfg.out / f"{cfg.scenario}_edge.log"
    edge_log.unlink(missing_ok=True)
    with onair_server(cfg.workers, cfg.out / f"{cfg.scenario}_server.log", _server_env(cfg)) as server, \
            contextlib.ExitStack() as stack:
        try:
            seeded = _seeded(cfg, server, stack)
        except ScenarioUnavailable as exc:
            summary: dict[str, Any] = {"scenario": cfg.scenario, "status": "unavailable", "reason": str(exc)}
        else:
            with _cache_in_front(cfg, server.base, edge_log) as target:
                cfg.target = target
                sampler = edge_report.RssSampler(server.pid)
                baseline_rss = sampler.rss()
                sampler.start()
                try:
                    prefix, counters, held = run_locust(cfg, target or server.base, seeded, server.admin_token)
                finally:
                    sampler.stop()
            summary = {"status": "ran", **summarise(cfg, server, prefix, counters, seeded)}
            if cfg.scenario == "breaking_news":
                summary["edge"] = edge_report.report(
                    edge_report.read_edge_log(edge_log), held,
                    edge_report.parts_written(server.data_dir, seeded["CHANNEL_ID"]), seeded["TRACK"],
                    baseline_rss, sampler.samples)
                summary["edge"].update(failures=summary["endpoints"].get("ALL", {}).get("failures"),
                                       join_window_s=cfg.lead, playlist_cache_lock=cfg.playlist_lock,
                                       note=edge_report.NOTE)
    (cfg.out / f"{cfg.scenario}_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _print(summary: dict[str, Any]) -> None:
    if summary.get("status") != "ran":
        print(f"{summary['scenario']:<16} not run: {summary.get('reason')}")
        return
    print(f"{summary['scenario']:<16} {summary['requests']} requests, {summary['req_per_s'] or 0:.0f} req/s "
          f"(peak {summary['peak_req_per_s']:.0f}), failures {100 * (summary['failure_rate'] or 0):.3f}%")
    for name, s in summary["endpoints"].items():
        if name != "ALL":
            print(f"    {name:<48} n={s['requests']:<7} p50={s['p50_ms']} p95={s['p95_ms']} p99={s['p99_ms']} ms")
    if "votes" in summary:
        v = summary["votes"]
        print(f"    votes: acknowledged {v['acknowledged']}, tally {v['tally']}, exact={v['exact']}, "
              f"peak {v['peak_acknowledged_per_s']}/s")
    if "cache" in summary:
        print(f"    cache hits: {summary['cache']['hit_ratio']}")
    if "edge" in summary:
        e = summary["edge"]
        print(f"    parts+segments cache hits: {e['parts_and_segments_hit_ratio']}; origin requests per object: "
              + ", ".join(f"{k} max {v['max_per_object']}" for k, v in e["origin_requests_per_object"].items()))
        for where, p in e["blocking_reload_answered_after_part"].items():
            print(f"    blocking reload answered after the part, {where}: n={p['n']} p50={p.get('p50_ms')} "
                  f"p99={p.get('p99_ms')} ms")
        print(f"    memory: {e['memory']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="all", choices=(*SCENARIOS, *EXTRA, "all"))
    parser.add_argument("--users", type=int, default=200, help="simulated viewers (bounded)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per scenario (<= 600)")
    parser.add_argument("--workers", type=int, default=2, help="onair web processes")
    parser.add_argument("--max-requests", type=int, default=1_000_000, help="stop the run after this many")
    parser.add_argument("--processes", type=int, default=0, help="locust --processes (load generators)")
    parser.add_argument("--target", default=os.environ.get("LOADTEST_TARGET"),
                        help="base URL to load instead of the origin (the nginx cache for show_start); "
                             "must be on 127.0.0.1")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--join-window", type=float, default=10.0,
                        help="breaking_news: seconds within which every player joins (DURATION follows)")
    parser.add_argument("--probes", type=int, default=3,
                        help="breaking_news: players that go straight to the origin (its own answer times)")
    parser.add_argument("--playlist-lock", action="store_true",
                        help="breaking_news: turn nginx's cache lock on for blocking reloads too (to measure it)")
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 600 or not 0 < args.users <= 100_000:
        parser.error("--duration must be in (0, 600] and --users in (0, 100000]")
    if args.target and not args.target.startswith(("http://127.0.0.1", "http://localhost")):
        parser.error("--target must be a loopback URL")
    scenarios = SCENARIOS if args.scenario == "all" else (args.scenario,)
    summaries = []
    for scenario in scenarios:
        cfg = RunConfig(scenario, users=args.users, duration=args.duration, workers=args.workers,
                        max_requests=args.max_requests, processes=args.processes,
                        target=args.target if scenario in THROUGH_CACHE else None, out=args.out,
                        playlist_lock=args.playlist_lock)
        if scenario == "breaking_news":
            cfg.extra_env.update(LOADTEST_JOIN_WINDOW=str(args.join_window), LOADTEST_PROBES=str(args.probes))
        summary = run_scenario(cfg)
        summaries.append(summary)
        _print(summary)
    (args.out / "summary.json").write_text(json.dumps(summaries, indent=2) + "\n")
    bad_votes = any(s.get("votes", {}).get("exact") is False for s in summaries)
    return 1 if bad_votes else 0


if __name__ == "__main__":
    sys.exit(main())
