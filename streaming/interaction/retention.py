"""Privacy retention for live interaction: client IPs, device ids and vote integrity data older than
ONAIR_PRIVACY_RETENTION_DAYS are deleted. The janitor (onair/core/janitor.py) runs this on each round.

What stays: tallies and exclusion counts (numbers, no person behind them), chat texts without their device ids.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import asyncpg

from onair.core.settings import Settings
from streaming.interaction import ballots, chat

log = logging.getLogger("streaming.retention")


async def forget(pool: asyncpg.Pool, settings: Settings, now: datetime | None = None) -> int:
    """One round; returns how many rows lost personal data (or went)."""
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(days=settings.privacy_retention_days)
    async with pool.acquire() as conn, conn.transaction():
        done = await ballots.forget_before(conn, cutoff) + await chat.forget_before(conn, cutoff, now)
    if done:
        log.info("privacy retention: %d row(s) older than %s cleared or deleted", done, cutoff.isoformat())
    return done
