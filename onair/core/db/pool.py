"""The asyncpg pool every domain shares, as an aiohttp cleanup context.

Every wait on the database is bounded: a connection from the pool (`acquire_timeout`), a new connection
(`timeout`) and each statement (`command_timeout`). A frozen or crashed PostgreSQL then surfaces as a
TimeoutError or connection error within seconds, which the error middleware answers with 503 + Retry-After,
instead of every request hanging for the whole stall.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from onair.core.settings import Settings

POOL = web.AppKey("db_pool", asyncpg.Pool)


class BoundedPool(asyncpg.Pool):
    """asyncpg's pool with a default acquire timeout (its own default waits forever)."""

    def __init__(self, *args, acquire_timeout: float | None = None, **kwargs) -> None:
        self._acquire_timeout = acquire_timeout
        super().__init__(*args, **kwargs)

    def acquire(self, *, timeout: float | None = None):
        return super().acquire(timeout=timeout if timeout is not None else self._acquire_timeout)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python objects so domain code never json.dumps by hand.
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(dsn: str, *, max_size: int = 10, min_size: int = 1, acquire_timeout: float | None = None,
                      statement_timeout: float = 60.0) -> asyncpg.Pool:
    pool = BoundedPool(dsn, min_size=min_size, max_size=max_size, max_queries=50000,
                       max_inactive_connection_lifetime=300.0, init=_init_connection, loop=None,
                       connection_class=asyncpg.Connection, record_class=asyncpg.Record,
                       acquire_timeout=acquire_timeout, command_timeout=statement_timeout,
                       timeout=acquire_timeout or 60.0)
    return await pool


def pool_context(settings: Settings, dsn: str):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await create_pool(dsn, max_size=settings.db_pool_size, acquire_timeout=settings.db_acquire_timeout,
                                 statement_timeout=settings.db_statement_timeout)
        app[POOL] = pool
        yield
        await pool.close()

    return ctx
