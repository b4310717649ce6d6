"""The asyncpg pool every domain shares, as an aiohttp cleanup context."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from onair.core.settings import Settings

POOL = web.AppKey("db_pool", asyncpg.Pool)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python objects so domain code never json.dumps by hand.
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def create_pool(dsn: str, *, max_size: int = 10, min_size: int = 1) -> asyncpg.Pool:
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection,
                                     command_timeout=60)


def pool_context(settings: Settings, dsn: str):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await create_pool(dsn, max_size=settings.db_pool_size)
        app[POOL] = pool
        yield
        await pool.close()

    return ctx
