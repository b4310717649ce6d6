"""One pub/sub contract, two backends: in-process and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from onair.core.bus import Bus, BusUnavailable, InProcessBus, RedisBus


@pytest.fixture(params=["inprocess", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    b: Bus = InProcessBus() if request.param == "inprocess" else RedisBus(request.getfixturevalue("redis_url"))
    await b.start()
    yield b
    await b.close()


async def next_message(sub, timeout: float = 5.0) -> dict:
    return await asyncio.wait_for(sub.get(), timeout)


async def test_subscribers_get_messages_in_order(bus: Bus) -> None:
    async with bus.subscribe("poll:1") as a, bus.subscribe("poll:1") as b:
        for i in range(5):
            await bus.publish("poll:1", {"n": i})
        assert [(await next_message(a))["n"] for _ in range(5)] == list(range(5))
        assert [(await next_message(b))["n"] for _ in range(5)] == list(range(5))


async def test_channels_are_separate(bus: Bus) -> None:
    async with bus.subscribe("room:a") as a, bus.subscribe("room:b") as b:
        await bus.publish("room:b", {"to": "b"})
        await bus.publish("room:a", {"to": "a"})
        assert (await next_message(a)) == {"to": "a"}
        assert (await next_message(b)) == {"to": "b"}


async def test_slow_subscriber_loses_oldest_not_others(bus: Bus) -> None:
    async with bus.subscribe("t", maxsize=3) as slow, bus.subscribe("t") as fast:
        for i in range(10):
            await bus.publish("t", {"n": i})
        assert [(await next_message(fast))["n"] for _ in range(10)] == list(range(10))
        # the slow one kept only the newest three
        got = [(await next_message(slow))["n"] for _ in range(3)]
        assert got == [7, 8, 9] and slow.dropped == 7
        assert slow.queue.empty()


async def test_redis_bus_fans_out_between_processes(redis_url: str) -> None:
    """Two RedisBus instances stand for two worker processes."""
    one, two = RedisBus(redis_url), RedisBus(redis_url)
    await one.start()
    await two.start()
    try:
        async with two.subscribe("chat:x") as sub:
            await one.publish("chat:x", {"text": "hello"})
            assert (await next_message(sub)) == {"text": "hello"}
    finally:
        await one.close()
        await two.close()


async def test_redis_unreachable_is_bus_unavailable() -> None:
    from tests.tools import free_port

    bus = RedisBus(f"redis://127.0.0.1:{free_port()}/0")
    await bus.start()
    try:
        with pytest.raises(BusUnavailable) as err:
            await bus.publish("x", {"a": 1})
        assert err.value.status == 503 and err.value.headers["Retry-After"]
        with pytest.raises(BusUnavailable):
            await bus.check()
    finally:
        await bus.close()


async def test_redis_bus_recovers_after_redis_restart(tmp_path) -> None:
    import shutil
    import subprocess
    import time

    from tests.tools import free_port, need_binary, port_open

    binary = need_binary("redis-server", "apt-get install redis-server")
    port = free_port()

    def start() -> subprocess.Popen:
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", port):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
        return proc

    proc = start()
    bus = RedisBus(f"redis://127.0.0.1:{port}/0")
    await bus.start()
    try:
        async with bus.subscribe("room:r") as sub:
            await bus.publish("room:r", {"n": 1})
            assert (await next_message(sub)) == {"n": 1}
            proc.kill()
            proc.wait()
            with pytest.raises(BusUnavailable):
                await bus.publish("room:r", {"n": 2})
            proc = start()
            # The reader resubscribes with back-off; publish until the subscriber hears again.
            deadline = time.monotonic() + 15
            while True:
                try:
                    await bus.publish("room:r", {"n": 3})
                    msg = await asyncio.wait_for(sub.get(), 0.5)
                    if msg == {"n": 3}:
                        break
                except (BusUnavailable, TimeoutError):
                    pass
                assert time.monotonic() < deadline, "bus did not recover after Redis came back"
    finally:
        await bus.close()
        proc.kill()
        proc.wait()
        shutil.rmtree(tmp_path, ignore_errors=True)
