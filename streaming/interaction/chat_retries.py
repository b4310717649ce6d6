"""Idempotent chat posts: a message sent again under the key its device named it with is the message stored
the first time, never a second one.

Across processes the unique index on (room, device_id, idempotency_key) decides (chat.post). Within one
process a retry can arrive while its original is still being stored (the client gave up waiting for the
answer); it waits for that attempt here instead of being refused by the duplicate-text rule."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from streaming.interaction import chat


class Attempts:
    def __init__(self) -> None:
        self._under_way: dict[tuple[str, str, str], asyncio.Event] = {}

    @contextlib.asynccontextmanager
    async def first(self, db: asyncpg.Pool, room: str, device_id: str,
                    key: str) -> AsyncIterator[dict[str, Any] | None]:
        """Yields the stored original when the device sent this key before; else None, with this attempt marked
        as under way until the block ends."""
        ident = (room, device_id, key)
        while True:
            while (busy := self._under_way.get(ident)) is not None:
                await busy.wait()
            original = await chat.sent_before(db, room, device_id, key)
            if original is not None:
                yield original
                return
            if ident not in self._under_way:  # nobody started it while we looked
                break
        done = asyncio.Event()
        self._under_way[ident] = done
        try:
            yield None
        finally:
            del self._under_way[ident]
            done.set()
