"""`onair serve --workers N`: N real processes share the port; SIGTERM stops them all cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from onair.cli import PROCESS_HEADER
from tests.conftest import ADMIN_TOKEN
from tests.tools import free_port, port_open

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONAIR_")}
    env.update(PYTHONPATH=str(ROOT), ONAIR_HOST="127.0.0.1", ONAIR_PORT=str(port),
               ONAIR_DATA_DIR=str(tmp_path / "data"), ONAIR_ADMIN_TOKEN=ADMIN_TOKEN, ONAIR_LOG_FORMAT="text",
               ONAIR_LOG_LEVEL="WARNING", **extra)
    return env


def _get(url: str) -> tuple[int, dict[str, str]]:
    # A fresh connection per request (urllib sends Connection: close), so each one is accepted anew.
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers)


def _wait_ready(proc: subprocess.Popen[str], base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited early ({proc.returncode}): {proc.communicate()[1]}")
        try:
            if _get(base + "/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail("server did not become ready")


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(x) for x in path.read_text().split()} if path.exists() else set()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[1][0] != "Z"  # zombies are gone for our purposes


@pytest.fixture
def two_workers(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "onair.cli", "serve", "--workers", "2", "--no-sample"],
        cwd=ROOT, env=_env(tmp_path, port, ONAIR_REDIS_URL=redis_url, ONAIR_DATABASE_URL=database_url),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(proc, base)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def test_both_processes_answer_then_sigterm_stops_everything(two_workers) -> None:
    proc, base = two_workers
    children = _children(proc.pid)
    assert len(children) == 2, children

    seen: set[int] = set()
    for _ in range(400):  # the kernel hands new connections to whichever process accepts first
        status, headers = _get(base + "/healthz")
        assert status == 200
        seen.add(int(headers[PROCESS_HEADER]))
        if len(seen) == 2:
            break
    assert seen == children, "each request is served by one of the two web processes, and both serve"

    # Every process serves every route: readiness (DB + bus) and metrics too.
    assert _get(base + "/readyz")[0] == 200
    assert _get(base + "/metrics")[0] == 200

    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=40)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert not any(_alive(pid) for pid in children), "no web process left behind"
    assert not port_open("127.0.0.1", int(base.rsplit(":", 1)[1])), "the port is released"


def test_a_crashed_process_stops_the_server(two_workers) -> None:
    """A supervisor must see the failure: the parent stops the survivor and exits non-zero."""
    proc, _base = two_workers
    victim, survivor = sorted(_children(proc.pid))
    os.kill(victim, signal.SIGKILL)
    _out, err = proc.communicate(timeout=40)
    assert proc.returncode == 1
    assert "exited with -9" in err
    assert not _alive(survivor)


def test_several_workers_without_redis_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "onair.cli", "serve", "--workers", "2", "--no-sample"],
                            cwd=ROOT, env=_env(tmp_path, free_port()), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "ONAIR_REDIS_URL" in lines[0] and "--workers 2" in lines[0]
