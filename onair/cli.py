"""`onair` command line: serve, worker, migrate, admin-token, routes (domains add ingest, partner)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import errno
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from multiprocessing.connection import wait as wait_any
from typing import Any, TypeVar

from aiohttp import web

try:  # optional speed-up (Linux/macOS wheels); the pure asyncio loop works the same
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]

from onair.app import DOMAIN_COMMANDS, create_app, on_first_start, route_table, worker_resources_context
from onair.core import logs
from onair.core.auth import admin_token, signing_key
from onair.core.db.embedded import EmbeddedPostgresError
from onair.core.runtime import database, ensure_data_dir
from onair.core.settings import SettingError, Settings, documented

log = logging.getLogger("onair.cli")
T = TypeVar("T")


def settings_epilog() -> str:
    lines = ["settings (environment variables):"]
    for doc in documented():
        lines.append(f"  {doc.env:<28} default: {doc.default}")
        lines.append(f"      {doc.help}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onair", description="Video origin, transcoding, syndication and live interaction for broadcasters.",
        epilog=settings_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the web server (and an in-process job worker)")
    serve.add_argument("--workers", type=int, default=None,
                       help="web processes sharing the port (default: CPU count with Redis, else 1)")
    serve.add_argument("--no-worker", action="store_true", help="do not run jobs in the web processes")
    serve.add_argument("--no-sample", action="store_true", help="do not ingest a sample clip into an empty library")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a transcode/job worker only")
    worker.add_argument("--concurrency", type=int, default=None, help="jobs at once (default ONAIR_JOB_CONCURRENCY)")
    worker.set_defaults(func=cmd_worker)

    mig = sub.add_parser("migrate", help="apply database migrations and exit")
    mig.set_defaults(func=cmd_migrate)

    tok = sub.add_parser("admin-token", help="print the admin token")
    tok.set_defaults(func=cmd_admin_token)

    routes = sub.add_parser("routes", help="print every HTTP route: method, path, permission, handler")
    routes.set_defaults(func=cmd_routes)

    for register in DOMAIN_COMMANDS:  # ingest, partner, ...
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        logs.configure(settings.log_level, settings.log_format)
        return args.func(args, settings) or 0
    except SettingError as err:
        print(f"onair: error: {err}", file=sys.stderr)
        return 2
    except EmbeddedPostgresError as err:
        print(f"onair: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def run_fast(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on uvloop when installed: the same code, roughly twice the requests per core."""
    if uvloop is None:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def bind_socket(settings: Settings, reuse_port: bool, *, listen: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SettingError("port", f"{settings.host}:{settings.port} is already in use") from None
        raise SettingError("host", f"cannot listen on {settings.host}:{settings.port} ({exc.strerror})") from None
    if listen:
        sock.listen(2048)
    return sock


def banner(settings: Settings, token: str, token_created: bool, workers: int) -> str:
    base = settings.base_url
    lines = [
        "",
        f"  onair is serving on {base}  ({workers} web process{'es' if workers > 1 else ''})",
        f"    studio        {base}/studio/",
        f"    assets API    {base}/api/v1/assets",
        f"    feeds         {base}/feeds/mrss.xml",
        f"    health        {base}/healthz  {base}/readyz  {base}/metrics",
        f"    admin token   {token}" + ("  (new; stored in data dir)" if token_created else ""),
        "  Press Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


SHUTDOWN_TIMEOUT = 10.0


async def _serve_process(settings: Settings, dsn: str, sock: socket.socket, *, run_worker: bool,
                         sample: bool, on_ready: Callable[[], None] | None = None) -> None:
    app = create_app(settings, dsn, run_worker=run_worker)
    # Graceful stop (aiohttp's runner.cleanup): stop accepting; app.on_shutdown hooks (WebSockets get
    # 1001 "going away", see onair.core.lifecycle); wait up to shutdown_timeout for in-flight requests;
    # then the cleanup contexts (the job worker hands unfinished jobs back, pools close).
    # Long request lines (a 10 KB search query) reach the app and get a problem+json answer instead of
    # the HTTP parser's plain-text 400.
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT, access_log=None,
                           max_line_size=32768, max_field_size=16384)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if sample:
        await on_first_start(app)
    if on_ready:
        on_ready()
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()


def _stop_with_parent() -> None:
    """Linux: get SIGTERM (a graceful stop) if the supervising parent dies, e.g. SIGKILLed, instead of
    living on as an orphan that still holds the port."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent already died before prctl
            os.kill(os.getpid(), signal.SIGTERM)


def _early_exit(*_: object) -> None:
    raise SystemExit(0)  # stopped while still starting: nothing is in flight yet


def _child(settings: Settings, dsn: str, run_worker: bool) -> None:
    # A forked child inherits the parent's supervisor handlers; replace them until the event loop installs
    # its graceful ones.
    signal.signal(signal.SIGTERM, _early_exit)
    signal.signal(signal.SIGINT, _early_exit)
    _stop_with_parent()
    logs.configure(settings.log_level, settings.log_format)
    # Each process listens on its own SO_REUSEPORT socket: the kernel spreads new connections evenly
    # (one shared accept queue lets whichever process wakes first take most of them).
    sock = bind_socket(settings, reuse_port=True)
    run_fast(_serve_process(settings, dsn, sock, run_worker=run_worker, sample=False))


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    ensure_data_dir(settings)
    workers = args.workers or ((os.cpu_count() or 1) if settings.redis_url else 1)
    if workers > 1 and not settings.redis_url:
        raise SettingError("redis_url", f"--workers {workers} needs Redis for cross-process live messaging; "
                           "set ONAIR_REDIS_URL or use --workers 1")
    token, created = admin_token(settings)
    signing_key(settings)  # create the secrets before forking, so every process reads the same ones
    # With N processes this socket only reserves the port (bound, never listening); each child listens on
    # its own SO_REUSEPORT socket. Fails early and clearly when the port is taken.
    sock = bind_socket(settings, reuse_port=workers > 1, listen=workers == 1)
    if settings.port == 0:
        settings = settings.with_(port=sock.getsockname()[1])
    with database(settings) as dsn:
        if workers == 1:
            run_fast(_serve_process(
                settings, dsn, sock, run_worker=not args.no_worker, sample=not args.no_sample,
                on_ready=lambda: print(banner(settings, token, created, 1), flush=True)))
            return 0
        return _serve_many(settings, dsn, sock, workers, run_worker=not args.no_worker, token=token,
                           created=created)


RESPAWN_LIMIT = 5          # children that may die on their own within RESPAWN_WINDOW before we give up
RESPAWN_WINDOW = 30.0


def _serve_many(settings: Settings, dsn: str, sock: socket.socket, workers: int, *, run_worker: bool, token: str,
                created: bool) -> int:
    """N processes, each accepting on its own SO_REUSEPORT socket; the parent only supervises.

    When a process stops, connections still waiting in its accept queue are reset (clients retry and
    land on another process); in-flight requests finish and WebSockets get 1001 "going away".

    A child that exits on its own (crash, OOM kill, or a SIGTERM aimed at it alone to recycle it) is
    replaced, so the server keeps N processes; its clients reconnect to the others meanwhile. A crash
    loop (RESPAWN_LIMIT deaths within RESPAWN_WINDOW) stops everything with exit status 1 so the
    supervisor (systemd, Kubernetes) sees it. SIGTERM/SIGINT on the parent stops all children gracefully."""
    ctx = multiprocessing.get_context("fork")

    def spawn() -> multiprocessing.process.BaseProcess:
        p = ctx.Process(target=_child, args=(settings, dsn, run_worker), daemon=False)
        p.start()
        return p

    procs = {p.sentinel: p for p in (spawn() for _ in range(workers))}
    print(banner(settings, token, created, workers), flush=True)
    stopping = False
    crash_loop = False
    deaths: list[float] = []

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs.values():
            if p.is_alive() and p.pid:
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    deadline: float | None = None
    exit_codes: list[int | None] = []
    while procs:
        if stopping and deadline is None:
            # Children finish in-flight requests within SHUTDOWN_TIMEOUT; one that hangs beyond is killed.
            deadline = time.monotonic() + SHUTDOWN_TIMEOUT + 20
        if deadline is not None and time.monotonic() >= deadline:
            break
        # Wake at least every second so a signal's `stopping` starts the deadline even if nobody exits.
        for sentinel in wait_any(list(procs), timeout=1.0):
            p = procs.pop(sentinel)  # type: ignore[call-overload]
            p.join()
            if stopping:
                exit_codes.append(p.exitcode)
                continue
            now = time.monotonic()
            deaths[:] = [t for t in deaths if t > now - RESPAWN_WINDOW] + [now]
            if len(deaths) >= RESPAWN_LIMIT:
                log.error("web processes keep dying (%d in %.0f s); stopping", len(deaths), RESPAWN_WINDOW)
                crash_loop = True
                stop()
                continue
            log.warning("web process %s exited with %s; starting a replacement", p.pid, p.exitcode)
            new = spawn()
            procs[new.sentinel] = new
    for p in procs.values():
        log.error("web process %s did not stop; killing it", p.pid)
        p.kill()
        p.join()
        exit_codes.append(p.exitcode)
    sock.close()
    return 1 if crash_loop or any(code != 0 for code in exit_codes) else 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    ensure_data_dir(settings)
    with database(settings) as dsn:
        app, factory = worker_resources_context(settings, dsn, args.concurrency or settings.job_concurrency)

        async def run() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            runner = web.AppRunner(app, handle_signals=False)
            await runner.setup()  # runs the cleanup contexts: pool, storage, bus
            try:
                await factory(app).run(stop)
            finally:
                await runner.cleanup()

        run_fast(run())
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    ensure_data_dir(settings)
    with database(settings):
        print("migrations applied")
    return 0


def cmd_admin_token(args: argparse.Namespace, settings: Settings) -> int:
    ensure_data_dir(settings)
    print(admin_token(settings)[0])
    return 0


def cmd_routes(args: argparse.Namespace, settings: Settings) -> int:
    for route in route_table(settings):
        print(route.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
