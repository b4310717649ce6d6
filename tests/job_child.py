"""A job worker process for crash tests: runs `test.slow` jobs, announcing each start in a file."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from onair.core.db.pool import create_pool
from onair.core.jobs import JobContext, Resources, Worker
from onair.core.settings import Settings


async def main(dsn: str, marker: str) -> None:
    pool = await create_pool(dsn, max_size=3)

    async def slow(ctx: JobContext) -> dict:
        Path(marker).write_text(str(ctx.job.id))
        await asyncio.sleep(3600)
        return {}

    worker = Worker(pool, dsn, {"test.slow": slow}, Resources(Settings(), pool), lease_seconds=1.0, name="child")
    await worker.run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
