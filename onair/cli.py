"""`onair` command line: serve, worker, migrate, admin-token, routes (domains add ingest, partner); the
process machinery of `serve` is onair/supervisor.py."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import TypeVar

from aiohttp import web

try:  # optional speed-up (Linux/macOS wheels); the pure asyncio loop works the same
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]

from accounts.commands import bootstrap_line
from onair.app import DOMAIN_COMMANDS, route_table, worker_resources_context
from onair.core import backup, health, logs, metrics
from onair.core.auth import admin_token, signing_key
from onair.core.db.embedded import EmbeddedPostgresError
from onair.core.runtime import database, ensure_data_dir
from onair.core.settings import SettingError, Settings, documented
from onair.supervisor import bind_socket, run_fast, serve_many, serve_process

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
    worker.add_argument("--metrics-port", type=int, default=None,
                        help="serve /metrics (transcode and live encoder speed, webhook deliveries) on this port")
    worker.set_defaults(func=cmd_worker)

    mig = sub.add_parser("migrate", help="apply database migrations and exit")
    mig.set_defaults(func=cmd_migrate)

    tok = sub.add_parser("admin-token", help="print the admin token")
    tok.set_defaults(func=cmd_admin_token)

    routes = sub.add_parser("routes", help="print every HTTP route: method, path, permission, handler")
    routes.set_defaults(func=cmd_routes)
    backup.register(sub)  # backup DEST, restore SRC

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


def banner(settings: Settings, token: str, token_created: bool, workers: int, first_admin: str | None = None) -> str:
    base = settings.base_url
    lines = [
        "",
        f"  onair is serving on {base}  ({workers} web process{'es' if workers > 1 else ''})",
        f"    studio        {base}/studio/",
        f"    assets API    {base}/api/v1/assets",
        f"    feeds         {base}/feeds/mrss.xml",
        f"    health        {base}/healthz  {base}/readyz  {base}/metrics",
        f"    admin token   {token}" + ("  (new; stored in data dir)" if token_created else ""),
        *([first_admin] if first_admin else []),
        "  Press Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


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
        first_admin = bootstrap_line(dsn)
        if workers == 1:
            run_fast(serve_process(
                settings, dsn, sock, run_worker=not args.no_worker, sample=not args.no_sample,
                on_ready=lambda: print(banner(settings, token, created, 1, first_admin), flush=True)))
            return 0
        # N processes write their metrics to one per-run directory that any of them reads for /metrics.
        metrics.enable_multiprocess()
        try:
            return serve_many(settings, dsn, sock, workers, run_worker=not args.no_worker,
                              on_started=lambda: print(banner(settings, token, created, workers, first_admin),
                                                       flush=True))
        finally:
            metrics.disable_multiprocess()


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    ensure_data_dir(settings)
    with database(settings) as dsn:
        app, factories = worker_resources_context(settings, dsn, args.concurrency or settings.job_concurrency)

        async def run() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            if args.metrics_port is not None:
                app.router.add_get("/metrics", health.metrics_view)
            runner = web.AppRunner(app, handle_signals=False, access_log=None)
            await runner.setup()  # runs the cleanup contexts: pool, storage, bus
            if args.metrics_port is not None:
                await web.TCPSite(runner, settings.host, args.metrics_port).start()
            try:
                await asyncio.gather(*(factory(app).run(stop) for factory in factories))
            finally:
                await runner.cleanup()

        run_fast(run())
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    ensure_data_dir(settings)
    with database(settings, attach=True):
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
