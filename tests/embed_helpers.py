"""Shared by the embed/oEmbed tests: a clock the test moves, and ready assets from the shared factory."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from tests.helpers import OUTPUTS, make_asset


class FakeClock:
    """A clock the test moves; install it as app[CLOCK] before the app starts."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def insert_asset(db: asyncpg.Pool, *, title: str = "Harbour fire", status: str = "ready",
                       outputs: dict[str, Any] | None = OUTPUTS, duration: float = 3.0, asset_id: str | None = None,
                       **fields: Any) -> str:
    """A ready (or still processing) public asset, through the shared factory."""
    return await make_asset(db, asset_id, title=title, status=status, outputs=outputs, duration=duration, **fields)
