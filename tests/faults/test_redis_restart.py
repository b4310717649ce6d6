"""Redis restarts under a live subscriber: pub/sub must flow again without restarting onair.

Fault: a private redis-server is SIGKILLed, stays down for REDIS_DOWN seconds, then starts again on the same
port. Stated recovery: messages flow again <= 5 s after Redis accepts connections (back-off is capped at 2 s)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path

import pytest

from onair.core.bus import BusUnavailable, RedisBus
from tests.conftest import _redis_server_binary
from tests.faults.params import REDIS_DOWN
from tests.tools import free_port, missing, port_open

RECOVERY_SECONDS = 5.0


def start_redis(binary: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                             "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not port_open("127.0.0.1", port):
        assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    return proc


async def test_bus_resubscribes_after_redis_restart(tmp_path: Path, fault_report) -> None:
    binary = _redis_server_binary()
    if binary is None:
        missing("redis-server", "apt-get install redis-server")
    port = free_port()
    server = start_redis(binary, port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    bus, publisher = RedisBus(url), RedisBus(url)
    await bus.start()
    await publisher.start()
    try:
        async with bus.subscribe("tallies:p1") as sub:
            await publisher.publish("tallies:p1", {"n": 0})
            assert (await asyncio.wait_for(sub.get(), 5)) == {"n": 0}

            server.send_signal(signal.SIGKILL)
            server.wait(10)
            down_until = time.monotonic() + REDIS_DOWN
            # While Redis is down: health says so, publishing fails fast with a 503-kind error.
            deadline = time.monotonic() + 10
            while bus.healthy and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert not bus.healthy
            with pytest.raises(BusUnavailable):
                await bus.check()
            with pytest.raises(BusUnavailable):
                await publisher.publish("tallies:p1", {"n": -1})
            await asyncio.sleep(max(0.0, down_until - time.monotonic()))

            server = start_redis(binary, port, tmp_path)
            back = time.monotonic()
            n, received = 0, None
            while received is None and time.monotonic() - back < RECOVERY_SECONDS:
                n += 1
                try:
                    await publisher.publish("tallies:p1", {"n": n})
                    received = await asyncio.wait_for(sub.get(), 0.25)
                except (BusUnavailable, TimeoutError):
                    continue
            recovered = time.monotonic() - back
            assert received is not None, f"no message within {RECOVERY_SECONDS}s after Redis returned"
            print(f"redis down {REDIS_DOWN:.0f}s: messages flow again {recovered:.2f}s after it returned")
            fault_report(f"redis SIGKILL, down {REDIS_DOWN:.0f}s, restarted", "1 subscriber, 1 publisher",
                         acknowledged=2, statuses={503: 1}, recovery_seconds=recovered,
                         bound_seconds=RECOVERY_SECONDS)
            assert bus.healthy and bus.reconnects >= 1
            await bus.check()
    finally:
        await bus.close()
        await publisher.close()
        server.send_signal(signal.SIGKILL)
        server.wait(10)
