"""Counters every web process shares: fixed-window rate limits and "seen once" marks.

With ONAIR_REDIS_URL they live in Redis, so `serve --workers 4` (or four pods) gives an abuser one budget,
not four; without it, in this process (a single-process deployment has nobody to share with). Memory is
bounded either way: Redis keys expire with their window, the in-process maps are `Bounded`.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from aiohttp import web
from redis.exceptions import RedisError

from onair.core import redis_client
from onair.core.bounded import Bounded
from onair.core.errors import Unavailable
from onair.core.settings import Settings

_PREFIX = "onair:limit:"


class Limits(Protocol):
    async def hit(self, key: str, window: float) -> tuple[int, float]:
        """Count one event under `key` in the current fixed window: (events so far, seconds left in it)."""
        ...

    async def first(self, key: str, ttl: float) -> bool:
        """True the first time `key` is marked within `ttl` seconds, False on every repeat."""
        ...

    async def seen(self, key: str) -> bool:
        """Whether `key` is marked (by `first`) and not expired; marks nothing."""
        ...

    async def close(self) -> None: ...


class LocalLimits:
    def __init__(self, max_entries: int, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counts: Bounded[tuple[str, int], int] = Bounded(max_entries, ttl=24 * 3600)
        self._seen: Bounded[str, float] = Bounded(max_entries, ttl=24 * 3600)

    async def hit(self, key: str, window: float) -> tuple[int, float]:
        now = self._clock()
        slot = int(now // window)
        count = self._counts.get((key, slot), 0) + 1
        self._counts.set((key, slot), count)
        return count, (slot + 1) * window - now

    async def first(self, key: str, ttl: float) -> bool:
        now = self._clock()
        until = self._seen.get(key)
        if until is not None and until > now:
            return False
        self._seen.set(key, now + ttl)
        return True

    async def seen(self, key: str) -> bool:
        until = self._seen.get(key)
        return until is not None and until > self._clock()

    async def close(self) -> None:
        return None


class RedisLimits:
    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        self._redis = redis_client.connect(url, socket_timeout=2)
        self._clock = clock

    async def hit(self, key: str, window: float) -> tuple[int, float]:
        now = self._clock()
        slot = int(now // window)
        name = f"{_PREFIX}{key}:{slot}"
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, int(window) + 1)
                count, _ = await pipe.execute()
        except RedisError as exc:
            raise _down() from exc
        return int(count), (slot + 1) * window - now

    async def first(self, key: str, ttl: float) -> bool:
        try:
            return bool(await self._redis.set(f"{_PREFIX}seen:{key}", b"1", nx=True, ex=max(1, int(ttl))))
        except RedisError as exc:
            raise _down() from exc

    async def seen(self, key: str) -> bool:
        try:
            return bool(await self._redis.exists(f"{_PREFIX}seen:{key}"))
        except RedisError as exc:
            raise _down() from exc

    async def close(self) -> None:
        await self._redis.aclose()


def _down() -> Unavailable:
    # Limits are checked before anything is counted or stored: refusing briefly beats letting floods through.
    return Unavailable("Shared limits (Redis) are not answering; retry shortly", code="limits-unavailable",
                       headers={"Retry-After": "2"})


def subnet(ip: str | None) -> str:
    """The network a client shares with its neighbours: its /24 (IPv4) or /48 (IPv6)."""
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return "unknown"
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


LIMITS = web.AppKey("limits", object)


def make(settings: Settings) -> Limits:
    if settings.redis_url:
        return RedisLimits(settings.redis_url)
    return LocalLimits(settings.vote_ip_entries)


def limits_context(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        limits = make(settings)
        app[LIMITS] = limits
        yield
        await limits.close()

    return ctx


def limits_of(app: web.Application) -> Limits:
    return app[LIMITS]  # type: ignore[return-value]
