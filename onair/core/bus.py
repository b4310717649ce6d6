"""Pub/sub between the processes of one deployment: in-process (default) or Redis.

Messages are JSON-able dicts. Subscribers get a bounded queue: a consumer that falls
behind loses the oldest messages (and is told via `dropped`) instead of slowing the
publisher or other subscribers, which is what live tallies and chat need.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator
from typing import Any, Protocol

from aiohttp import web

from onair.core import redis_client
from onair.core.errors import Unavailable
from onair.core.settings import Settings

log = logging.getLogger("onair.core.bus")

RECONNECT_FIRST = 0.1
RECONNECT_MAX = 2.0

# Delivered to every local subscriber of a channel once it is subscribed again after an outage: whatever was
# published meanwhile is gone, so the subscriber reloads its state from the database (tallies, chat cursors).
RESYNC: dict[str, Any] = {"type": "bus-resync"}


class BusUnavailable(Unavailable):
    code = "bus-unavailable"

    def __init__(self, detail: str = "Live messaging is temporarily unavailable; retry shortly") -> None:
        super().__init__(detail, headers={"Retry-After": "2"})


class Subscription:
    def __init__(self, channel: str, maxsize: int) -> None:
        self.channel = channel
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize)
        self.dropped = 0

    def deliver(self, message: dict[str, Any]) -> None:
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(message)

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self.queue.get()


class Bus(Protocol):
    async def publish(self, channel: str, message: dict[str, Any]) -> None: ...
    def subscribe(self, channel: str, maxsize: int = 1000) -> contextlib.AbstractAsyncContextManager[Subscription]: ...
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def check(self) -> None: ...


class _LocalFanout:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = {}

    def add(self, sub: Subscription) -> bool:
        subs = self._subs.setdefault(sub.channel, set())
        subs.add(sub)
        return len(subs) == 1

    def remove(self, sub: Subscription) -> bool:
        subs = self._subs.get(sub.channel, set())
        subs.discard(sub)
        if not subs:
            self._subs.pop(sub.channel, None)
            return True
        return False

    def dispatch(self, channel: str, message: dict[str, Any]) -> None:
        for sub in tuple(self._subs.get(channel, ())):
            sub.deliver(message)

    def channels(self) -> list[str]:
        return list(self._subs)


class InProcessBus:
    def __init__(self) -> None:
        self._fanout = _LocalFanout()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def check(self) -> None:
        return None

    healthy = True
    reconnects = 0

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        self._fanout.dispatch(channel, message)  # never lost, so never a RESYNC

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str, maxsize: int = 1000) -> AsyncIterator[Subscription]:
        sub = Subscription(channel, maxsize)
        self._fanout.add(sub)
        try:
            yield sub
        finally:
            self._fanout.remove(sub)


class RedisBus:
    """One Redis pub/sub connection per process, fanned out locally to every subscriber."""

    def __init__(self, url: str) -> None:
        self._redis = redis_client.connect(url, socket_timeout=None, health_check_interval=10)
        self._pubsub = self._redis.pubsub()
        self._fanout = _LocalFanout()
        # Set when Redis confirms a SUBSCRIBE, so a publish right after subscribe() is never missed.
        self._confirmed: dict[str, asyncio.Event] = {}
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._lost = False  # the connection dropped and the channels are not subscribed again yet
        self._resync: set[str] = set()  # resubscribed channels whose confirmation brings a RESYNC
        self.reconnects = 0

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read_loop(), name="redis-bus-reader")

    async def close(self) -> None:
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        await self._redis.aclose()

    async def check(self) -> None:
        try:
            await self._redis.ping()
        except Exception as exc:
            raise BusUnavailable() from exc
        if self._lost:
            raise BusUnavailable("Live messaging is reconnecting; retry shortly")

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        try:
            await self._redis.publish(channel, json.dumps(message, separators=(",", ":"), default=str))
        except Exception as exc:
            log.warning("redis publish failed: %s", exc)
            raise BusUnavailable() from exc

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str, maxsize: int = 1000) -> AsyncIterator[Subscription]:
        sub = Subscription(channel, maxsize)
        async with self._lock:
            if self._fanout.add(sub):
                confirmed = self._confirmed[channel] = asyncio.Event()
                try:
                    await self._pubsub.subscribe(channel)
                    await asyncio.wait_for(confirmed.wait(), timeout=5)
                except Exception as exc:
                    self._fanout.remove(sub)
                    raise BusUnavailable() from exc
        try:
            yield sub
        finally:
            async with self._lock:
                if self._fanout.remove(sub):
                    self._confirmed.pop(channel, None)
                    with contextlib.suppress(Exception):
                        await self._pubsub.unsubscribe(channel)

    async def _read_loop(self) -> None:
        """Read messages; on any connection trouble, reconnect and resubscribe every channel, with back-off,
        until Redis answers again (an outage of any length ends with subscribers receiving again)."""
        backoff = RECONNECT_FIRST
        while True:
            try:
                if self._lost:
                    await self._resubscribe()
                    backoff = RECONNECT_FIRST
                if not self._pubsub.subscribed:
                    await asyncio.sleep(0.05)
                    continue
                message = await self._pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                raw = message["channel"]
                channel = raw.decode() if isinstance(raw, bytes) else raw
                if message["type"] == "subscribe":
                    if event := self._confirmed.get(channel):
                        event.set()
                    if channel in self._resync:  # confirmed: anything published from now on arrives
                        self._resync.discard(channel)
                        self._fanout.dispatch(channel, RESYNC)
                elif message["type"] == "message":
                    self._fanout.dispatch(channel, json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: keep local subscribers, resubscribe when it returns
                if not self._lost:
                    log.warning("redis bus connection lost (%s); reconnecting", exc)
                self._lost = True
                # Jitter, so the processes of a deployment do not all reconnect in the same instant.
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, RECONNECT_MAX)

    async def _resubscribe(self) -> None:
        async with self._lock:
            old, self._pubsub = self._pubsub, self._redis.pubsub()
            with contextlib.suppress(Exception):
                await old.aclose()
            channels = self._fanout.channels()
            self._resync = set(channels)
            if channels:
                await self._pubsub.subscribe(*channels)
            else:
                await self._redis.ping()
            self._lost = False
            self.reconnects += 1
        log.info("redis bus reconnected; %d channel(s) resubscribed", len(channels))

    @property
    def healthy(self) -> bool:
        return not self._lost


BUS = web.AppKey("bus", Bus)


def live_parts_channel(channel_id: str) -> str:
    """Where a low-latency live channel's encoder announces each new part (transcode publishes, the live origin
    wakes its held playlist requests); named here because neither domain may import the other."""
    return f"live-parts:{channel_id}"


def make_bus(settings: Settings) -> Bus:
    return RedisBus(settings.redis_url) if settings.redis_url else InProcessBus()


def bus_context(settings: Settings, bus: Bus | None = None):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        instance = bus or make_bus(settings)
        await instance.start()
        app[BUS] = instance
        yield
        await instance.close()

    return ctx
