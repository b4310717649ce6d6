"""/metrics tells the truth about every process: `onair serve --workers 3` counts what all three served,
a process that dies keeps its counts, and `onair worker --metrics-port` exposes the job side."""

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
from prometheus_client.parser import text_string_to_metric_families

from onair.core.lifecycle import PROCESS_HEADER
from onair.core.metrics import LabelBudget
from tests.conftest import ADMIN_TOKEN
from tests.helpers import OnairServer, spawn_server
from tests.tools import free_port

ROOT = Path(__file__).resolve().parent.parent


def _get(url: str) -> tuple[int, dict[str, str], str]:
    # urllib sends Connection: close, so every request is a new connection the kernel hands to any process.
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def samples(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


@pytest.fixture
def three_workers(tmp_path: Path, redis_url: str, database_url: str) -> Iterator[OnairServer]:
    with spawn_server(tmp_path / "data", {"ONAIR_REDIS_URL": redis_url, "ONAIR_DATABASE_URL": database_url,
                                          "ONAIR_ADMIN_TOKEN": ADMIN_TOKEN, "ONAIR_LOG_LEVEL": "WARNING"},
                      args=("--workers", "3", "--no-sample")) as server:
        yield server


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(x) for x in path.read_text().split()} if path.exists() else set()


def test_metrics_count_requests_of_all_processes(three_workers: OnairServer) -> None:
    base = three_workers.url
    n, seen = 90, set()
    for _ in range(n):
        status, headers, _ = _get(base + "/healthz")
        assert status == 200
        seen.add(headers[PROCESS_HEADER])
    assert len(seen) == 3, f"all three processes served (the kernel spreads connections): {seen}"

    status, _, text = _get(base + "/metrics")
    assert status == 200
    assert samples(text, "onair_http_requests_total", route="/healthz", status="200") == n
    assert samples(text, "onair_http_request_seconds_count", route="/healthz") == n
    assert samples(text, "onair_http_in_flight") == 1  # the scrape itself, in whichever process answered

    # A process that dies keeps its counts (totals never go backwards); the supervisor starts a replacement.
    children = _children(three_workers.proc.pid)
    os.kill(min(children), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = _children(three_workers.proc.pid)
        if len(now) == 3 and min(children) not in now:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the supervisor did not replace the killed process")
    texts = [_get(base + "/metrics")[2] for _ in range(6)]  # whichever process answers says the same
    for text in texts:
        assert samples(text, "onair_http_requests_total", route="/healthz", status="200") == n


def test_worker_serves_metrics(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONAIR_")}
    env.update(PYTHONPATH=str(ROOT), ONAIR_DATA_DIR=str(tmp_path / "data"), ONAIR_DATABASE_URL=database_url,
               ONAIR_HOST="127.0.0.1", ONAIR_LOG_LEVEL="WARNING", ONAIR_LOG_FORMAT="text")
    proc = subprocess.Popen([sys.executable, "-m", "onair.cli", "worker", "--metrics-port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, text = time.monotonic() + 60, ""
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                text = _get(f"http://127.0.0.1:{port}/metrics")[2]
                break
            except OSError:
                time.sleep(0.2)
        assert "onair_transcode_speed" in text and "onair_webhook_deliveries" in text, text[:500]
        assert samples(text, "onair_bus_up") == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_client_chosen_labels_are_bounded() -> None:
    """Chat rooms are created by posting: past the budget they count as "other"."""
    budget = LabelBudget(3)
    assert [budget(r) for r in ("a", "b", "a", "c", "d", "e", "b")] == ["a", "b", "a", "c", "other", "other", "b"]


def test_a_killed_servers_metrics_directory_goes_at_the_next_start(tmp_path: Path, redis_url: str,
                                                                     database_url: str) -> None:
    env = {"ONAIR_REDIS_URL": redis_url, "ONAIR_DATABASE_URL": database_url, "ONAIR_ADMIN_TOKEN": ADMIN_TOKEN,
           "ONAIR_LOG_LEVEL": "WARNING", "TMPDIR": str(tmp_path)}
    with spawn_server(tmp_path / "one", env, args=("--workers", "2", "--no-sample")) as first:
        _get(first.url + "/healthz")
        (left,) = tmp_path.glob("onair-metrics-*")
        assert any(left.glob("counter_*.db"))
        first.kill9()  # no clean-up runs; its children stop with it (PDEATHSIG)
        first.proc.wait(10)
    assert left.exists()
    with spawn_server(tmp_path / "two", env, args=("--workers", "2", "--no-sample")):
        assert not left.exists(), "the dead server's directory was swept"
        (mine,) = tmp_path.glob("onair-metrics-*")
    assert not mine.exists(), "a clean stop removes its own directory"
