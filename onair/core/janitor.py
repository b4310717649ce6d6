"""Leftovers of killed processes, swept on start and every ONAIR_JANITOR_INTERVAL_SECONDS by each job worker.

A SIGKILL (OOM killer, kill -9, a node lost) skips every `finally`: the local store's half-written temp files and
the scratch folders (`<data dir>/scratch/<name>-<job id>`) of jobs that will never run again stay behind and
fill the disk. Temp files go once their writer's process is gone; a scratch folder goes once no live lease on
its job exists (a job that runs again wipes its own scratch first, so deleting it early is always safe).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import asyncpg
from aiohttp import web

from onair.core.db.pool import POOL
from onair.core.settings import Settings
from onair.core.storage import STORE

log = logging.getLogger("onair.core.janitor")

TEMP_MAX_AGE = 24 * 3600.0   # a temp file whose writer pid may have been reused: gone after a day anyway
_SCRATCH_NAME = re.compile(r"^[a-z]+-(\d+)$")


def scratch_root(settings: Settings) -> Path:
    return settings.data_dir / "scratch"


def _scratch_folders(root: Path) -> dict[int, Path]:
    try:
        return {int(m.group(1)): p for p in root.iterdir() if (m := _SCRATCH_NAME.match(p.name))}
    except FileNotFoundError:
        return {}


async def sweep_scratch(pool: asyncpg.Pool, root: Path) -> int:
    """Delete scratch folders of jobs without a live lease. Returns how many went."""
    folders = await asyncio.to_thread(_scratch_folders, root)
    if not folders:
        return 0
    live = {r["id"] for r in await pool.fetch(
        "SELECT id FROM jobs WHERE id = ANY($1::bigint[]) AND status = 'running' AND lease_until >= now()",
        list(folders))}
    dead = [p for job_id, p in folders.items() if job_id not in live]
    for folder in dead:
        await asyncio.to_thread(shutil.rmtree, folder, True)
    return len(dead)


Sweep = Callable[[asyncpg.Pool, Settings], Awaitable[int]]


async def run_sweeps(settings: Settings, pool: asyncpg.Pool, sweeps: Sequence[Sweep]) -> int:
    """The domains' periodic clean-ups (privacy retention); one failing does not stop the others."""
    done = 0
    for extra in sweeps:
        try:
            done += await extra(pool, settings)
        except Exception as exc:  # a database blip: the next round tries again
            log.warning("periodic clean-up %s failed: %s", getattr(extra, "__qualname__", extra), exc)
    return done


async def sweep(settings: Settings, pool: asyncpg.Pool, store: object) -> tuple[int, int]:
    temp = 0
    if (sweep_temp := getattr(store, "sweep_temp", None)) is not None:  # the local store; S3 has lifecycle rules
        temp = await asyncio.to_thread(sweep_temp, TEMP_MAX_AGE)
    scratch = await sweep_scratch(pool, scratch_root(settings))
    if temp or scratch:
        log.warning("removed what killed processes left: %d temp file(s), %d scratch folder(s)", temp, scratch)
    return temp, scratch


def janitor_context(settings: Settings, sweeps: Sequence[Sweep] = ()):
    """Sweep at start (before the worker takes jobs) and then periodically, for as long as the app runs;
    `sweeps` are the domains' own clean-ups (Domain.sweeps), run on the same rounds."""

    async def loop(app: web.Application) -> None:
        while True:
            await asyncio.sleep(settings.janitor_interval_seconds)
            try:
                await sweep(settings, app[POOL], app[STORE])
            except Exception as exc:  # a database or disk blip: the next round tries again
                log.warning("sweeping leftovers failed: %s", exc)
            await run_sweeps(settings, app[POOL], sweeps)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        try:
            await sweep(settings, app[POOL], app[STORE])
        except Exception as exc:
            log.warning("sweeping leftovers at start failed: %s", exc)
        await run_sweeps(settings, app[POOL], sweeps)
        task = asyncio.create_task(loop(app), name="janitor")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx
