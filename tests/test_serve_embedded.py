"""End to end on embedded defaults: `onair serve` starts PostgreSQL from the wheel, migrates, serves,
stops cleanly on Ctrl-C (no postgres left behind) and keeps its data for the next start."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import OnairServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not under pytest's 0700 tmp dir: the embedded server runs as `nobody` when we are root.
    path = Path(tempfile.mkdtemp(prefix="onair-e2e-"))
    os.chmod(path, 0o755)
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)


def postgres_processes(data_dir: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"postgres" in cmdline and str(data_dir).encode() in cmdline:
                pids.append(int(proc.name))
    return pids


def stop(server: OnairServer) -> str:
    """Ctrl-C, as `make run` gets it; the exit must be clean."""
    code = server.stop(signal.SIGINT, timeout=60)
    assert code == 0, server.output()
    return server.output()


def test_serve_on_embedded_postgres_stops_cleanly_and_keeps_data(data_dir: Path) -> None:
    first = OnairServer(data_dir).start().wait_ready()
    port = first.port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
        assert resp.status == 200
    assert postgres_processes(data_dir), "expected an embedded postgres while serving"
    out1 = stop(first)
    assert not postgres_processes(data_dir), "postgres left running after Ctrl-C"
    token = (data_dir / "admin_token").read_text().strip()
    assert token in out1 and (data_dir / "admin_token").stat().st_mode & 0o777 == 0o600
    assert "applied migration" in out1

    second = OnairServer(data_dir, port=port).start().wait_ready()
    out2 = stop(second)
    assert "applied migration" not in out2, "second start re-applied migrations: data was not kept"
    assert token in out2 and "(new;" not in out2
    assert not postgres_processes(data_dir)


def test_port_in_use_is_one_clear_line_exit_2(data_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        server = OnairServer(data_dir, port=port).start()
        assert server.proc is not None and server.proc.wait(60) == 2
        out = server.output()
    assert out.strip().splitlines()[-1] == f"onair: error: ONAIR_PORT: 127.0.0.1:{port} is already in use"
    assert not postgres_processes(data_dir)


def test_unwritable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONAIR_")}
    env.update(ONAIR_DATA_DIR=str(blocker / "data"), PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "onair.cli", "migrate"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("onair: error: ONAIR_DATA_DIR:") and "not writable" in result.stderr


def _login_status(port: int, name: str, password: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/studio/login", urllib.parse.urlencode({"name": name, "password": password}),
                 {"Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    conn.close()
    return resp.status if resp.getheader("Location") == "/studio/" else 401


def test_user_and_partner_commands_leave_a_serving_embedded_database_alone(data_dir: Path) -> None:
    """Issue 16: `onair partner add` used to stop the running embedded PostgreSQL."""
    server = OnairServer(data_dir).start().wait_ready()
    try:
        _commands_while_serving(server, data_dir)
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.stop(signal.SIGINT, timeout=60)
    assert not postgres_processes(data_dir)


def postmaster_pid(data_dir: Path) -> int:
    """The embedded server's postmaster, from its pid file (its children come and go with the load)."""
    return int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])


def _commands_while_serving(server: OnairServer, data_dir: Path) -> None:
    port = server.port
    pg_before = postmaster_pid(data_dir)
    statuses: list[int] = []
    done = threading.Event()

    def probe() -> None:  # readyz all along
        while not done.is_set():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
                    statuses.append(resp.status)
            except OSError as exc:
                statuses.append(getattr(exc, "code", 0) or 0)
            time.sleep(0.05)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONAIR_")}
    env.update(ONAIR_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT))
    run = [sys.executable, "-m", "onair.cli"]
    try:
        user = subprocess.run([*run, "user", "add", "ed", "--role", "editor"], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        partner = subprocess.run([*run, "partner", "add", "acme"], env=env, cwd=ROOT, capture_output=True,
                                 text=True, timeout=60)
    finally:
        done.set()
        prober.join()
    assert user.returncode == 0, user.stderr
    assert partner.returncode == 0, partner.stderr
    assert statuses and set(statuses) == {200}, statuses
    assert postmaster_pid(data_dir) == pg_before  # the same server, never restarted
    assert _login_status(port, "ed", user.stdout.strip()) == 303

    first = re.search(r"user 'admin', one-time password (\S+)", server.output())
    assert first, server.output()
    assert _login_status(port, "admin", first.group(1)) == 303
    stop(server)
