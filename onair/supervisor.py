"""Running the web server: one process, or N processes sharing the port under a supervising parent."""

from __future__ import annotations

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

from onair.app import create_app, on_first_start
from onair.core import logs, memory, metrics
from onair.core.settings import SettingError, Settings

log = logging.getLogger("onair.supervisor")
T = TypeVar("T")


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


SHUTDOWN_TIMEOUT = 10.0


async def serve_process(settings: Settings, dsn: str, sock: socket.socket, *, run_worker: bool,
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
    memory.settle_heap()  # after start-up: its objects stay for good
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
    run_fast(serve_process(settings, dsn, sock, run_worker=run_worker, sample=False))


RESPAWN_LIMIT = 5          # children that may die on their own within RESPAWN_WINDOW before we give up
RESPAWN_WINDOW = 30.0


class Supervisor:
    """N processes, each accepting on its own SO_REUSEPORT socket; the parent only supervises.

    When a process stops, connections still waiting in its accept queue are reset (clients retry and
    land on another process); in-flight requests finish and WebSockets get 1001 "going away".

    A child that exits on its own (crash, OOM kill, or a SIGTERM aimed at it alone to recycle it) is
    replaced, so the server keeps N processes; its clients reconnect to the others meanwhile. A crash
    loop (RESPAWN_LIMIT deaths within RESPAWN_WINDOW) stops everything with exit status 1 so the
    supervisor (systemd, Kubernetes) sees it. SIGTERM/SIGINT on the parent stops all children gracefully."""

    def __init__(self, settings: Settings, dsn: str, run_worker: bool) -> None:
        self._ctx = multiprocessing.get_context("fork")
        self._args = (settings, dsn, run_worker)
        self.procs: dict[int, multiprocessing.process.BaseProcess] = {}
        self.stopping = False
        self.crash_loop = False
        self._deaths: list[float] = []
        self.exit_codes: list[int | None] = []

    def spawn(self) -> None:
        p = self._ctx.Process(target=_child, args=self._args, daemon=False)
        p.start()
        self.procs[p.sentinel] = p

    def stop(self, *_: object) -> None:
        self.stopping = True
        for p in self.procs.values():
            if p.is_alive() and p.pid:
                os.kill(p.pid, signal.SIGTERM)

    def _reap(self, sentinel: int) -> None:
        p = self.procs.pop(sentinel)
        p.join()
        if p.pid is not None:
            metrics.process_died(p.pid)
        if self.stopping:
            self.exit_codes.append(p.exitcode)
            return
        now = time.monotonic()
        self._deaths[:] = [t for t in self._deaths if t > now - RESPAWN_WINDOW] + [now]
        if len(self._deaths) >= RESPAWN_LIMIT:
            log.error("web processes keep dying (%d in %.0f s); stopping", len(self._deaths), RESPAWN_WINDOW)
            self.crash_loop = True
            self.stop()
            return
        log.warning("web process %s exited with %s; starting a replacement", p.pid, p.exitcode)
        self.spawn()

    def run(self, workers: int, on_started: Callable[[], None]) -> int:
        for _ in range(workers):
            self.spawn()
        on_started()
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGTERM, self.stop)
        deadline: float | None = None
        while self.procs:
            if self.stopping and deadline is None:
                # Children finish in-flight requests within SHUTDOWN_TIMEOUT; one that hangs beyond is killed.
                deadline = time.monotonic() + SHUTDOWN_TIMEOUT + 20
            if deadline is not None and time.monotonic() >= deadline:
                break
            # Wake at least every second so a signal's `stopping` starts the deadline even if nobody exits.
            for sentinel in wait_any(list(self.procs), timeout=1.0):
                self._reap(sentinel)  # type: ignore[arg-type]
        for p in self.procs.values():
            log.error("web process %s did not stop; killing it", p.pid)
            p.kill()
            p.join()
            self.exit_codes.append(p.exitcode)
        return 1 if self.crash_loop or any(code != 0 for code in self.exit_codes) else 0


def serve_many(settings: Settings, dsn: str, sock: socket.socket, workers: int, *, run_worker: bool,
               on_started: Callable[[], None]) -> int:
    try:
        return Supervisor(settings, dsn, run_worker).run(workers, on_started)
    finally:
        sock.close()
