"""Read-only figures about the job queue for /metrics (the `jobs` table is written by onair.core.jobs)."""

from __future__ import annotations

from typing import NamedTuple

import asyncpg


class QueueStat(NamedTuple):
    queue: str
    kind: str
    depth: int
    oldest_seconds: float   # how long the oldest job that is due has been waiting (0 when none is due)


_STATS = """
SELECT queue, kind, count(*) AS depth,
       coalesce(extract(epoch FROM now() - min(run_after) FILTER (WHERE run_after <= now())), 0) AS oldest
  FROM jobs WHERE status = 'queued' GROUP BY queue, kind
"""


async def queue_stats(db: asyncpg.Pool | asyncpg.Connection) -> list[QueueStat]:
    return [QueueStat(r["queue"], r["kind"], r["depth"], float(r["oldest"])) for r in await db.fetch(_STATS)]
