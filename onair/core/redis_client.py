"""The Redis client every onair part uses: a bounded pool whose callers wait for a free connection.

redis-py's default pool fails at once (MaxConnectionsError) when its 100 connections are all in use, so a burst of
viewers arriving together (a presenter says "open the app now": hundreds of first WebSocket connects, each checking
the bus) got 503s on a perfectly healthy Redis. A blocking pool queues the burst instead; a short wait bounds it, so
a Redis that really is stuck still answers 503 within seconds.
"""

from __future__ import annotations

import redis.asyncio as aioredis

POOL_SIZE = 64  # per process and client; Redis allows 10,000 clients by default
POOL_WAIT = 2.0  # seconds a caller may wait for a free connection before the request answers 503


def connect(url: str, *, socket_timeout: float | None, connect_timeout: float = 2.0,
            health_check_interval: int = 0) -> aioredis.Redis:
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=POOL_SIZE, timeout=POOL_WAIT, socket_connect_timeout=connect_timeout,
        socket_timeout=socket_timeout, health_check_interval=health_check_interval)
    return aioredis.Redis.from_pool(pool)  # closing the client closes its pool
