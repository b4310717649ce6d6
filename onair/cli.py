"""`onair` command line: serve, worker, migrate, admin-token (domains add ingest, partner)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from aiohttp import web

from onair import logs
from onair.auth import admin_token
from onair.db.embedded import EmbeddedPostgres, EmbeddedPostgresError
from onair.db.migrate import migrate_url
from onair.settings import SettingError, Settings, documented

log = logging.getLogger("onair.cli")


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

    for register in EXTRA_COMMANDS:
        register(sub)
    return parser


# Domain commands (ingest, partner) register themselves here from onair.commands.
EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def main(argv: list[str] | None = None) -> int:
    from onair import commands  # noqa: F401  (registers domain commands)

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


def ensure_data_dir(settings: Settings) -> None:
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        probe = settings.data_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise SettingError("data_dir", f"{settings.data_dir} is not writable ({exc.strerror})") from None


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[str]:
    """Yield a migrated database URL: the configured one, or an embedded server for the duration."""
    if settings.database_url:
        dsn = settings.database_url
        _migrate(dsn)
        yield dsn
        return
    pg = EmbeddedPostgres(settings.data_dir / "pg")
    dsn = pg.start()
    try:
        _migrate(dsn)
        yield dsn
    finally:
        pg.stop()


def _migrate(dsn: str) -> None:
    try:
        applied = asyncio.run(migrate_url(dsn))
    except OSError as exc:
        raise SettingError("database_url", f"cannot connect ({exc})") from None
    if applied:
        log.info("applied %d migration(s)", len(applied))


def bind_socket(settings: Settings, reuse_port: bool) -> socket.socket:
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
    sock.listen(2048)
    sock.set_inheritable(True)
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


async def _serve_process(settings: Settings, dsn: str, sock: socket.socket, *, run_worker: bool,
                         sample: bool, on_ready: Callable[[], None] | None = None) -> None:
    from onair.app import create_app, on_first_start

    app = create_app(settings, dsn, run_worker=run_worker)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=10, access_log=None)
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


def _child(settings: Settings, dsn: str, fd: int, run_worker: bool) -> None:
    logs.configure(settings.log_level, settings.log_format)
    sock = socket.socket(fileno=fd)
    asyncio.run(_serve_process(settings, dsn, sock, run_worker=run_worker, sample=False))


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    ensure_data_dir(settings)
    workers = args.workers or ((os.cpu_count() or 1) if settings.redis_url else 1)
    if workers > 1 and not settings.redis_url:
        raise SettingError("redis_url", f"--workers {workers} needs Redis for cross-process live messaging; "
                           "set ONAIR_REDIS_URL or use --workers 1")
    token, created = admin_token(settings)
    sock = bind_socket(settings, reuse_port=False)
    with database(settings) as dsn:
        if workers == 1:
            asyncio.run(_serve_process(
                settings, dsn, sock, run_worker=not args.no_worker, sample=not args.no_sample,
                on_ready=lambda: print(banner(settings, token, created, 1), flush=True)))
            return 0
        return _serve_many(settings, dsn, sock, workers, run_worker=not args.no_worker, token=token,
                           created=created)


def _serve_many(settings: Settings, dsn: str, sock: socket.socket, workers: int, *, run_worker: bool, token: str,
                created: bool) -> int:
    """N processes accept on one listening socket; the parent only supervises."""
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_child, args=(settings, dsn, sock.fileno(), run_worker), daemon=False)
             for _ in range(workers)]
    for p in procs:
        p.start()
    print(banner(settings, token, created, workers), flush=True)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.is_alive() and p.pid:
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for p in procs:
        p.join()
    sock.close()
    return 0 if stopping or all(p.exitcode == 0 for p in procs) else 1


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from onair.app import worker_resources_context

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

        asyncio.run(run())
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


def data_path(settings: Settings, *parts: str) -> Path:
    return settings.data_dir.joinpath(*parts)


if __name__ == "__main__":
    # Run the importable module's main, not __main__'s copy: domain commands register on onair.cli.EXTRA_COMMANDS.
    from onair.cli import main as _main

    sys.exit(_main())
