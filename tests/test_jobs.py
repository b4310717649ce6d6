"""The PostgreSQL job queue against a real database: exclusivity, retries, dead letters, crash recovery."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from onair.core import jobs
from onair.core.jobs import JobContext, PermanentJobError, Resources, RetryPolicy, Worker
from onair.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FAST_RETRY = RetryPolicy(base_seconds=0.05, factor=1.0)


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def make_worker(db: asyncpg.Pool, dsn: str, handlers: dict, **kw) -> Worker:
    kw.setdefault("retry", FAST_RETRY)
    kw.setdefault("poll_seconds", 0.2)
    return Worker(db, dsn, handlers, Resources(Settings(), db), **kw)


async def run_until(worker: Worker, done: Callable[[], Awaitable[bool]]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_for(done)
    finally:
        stop.set()
        await task


def never_ending() -> tuple[asyncio.Event, Callable[[JobContext], Awaitable[dict]]]:
    """A handler that runs until cancelled, and the event it sets once it has started."""
    started = asyncio.Event()

    async def forever(ctx: JobContext) -> dict:
        started.set()
        await asyncio.sleep(3600)
        return {}

    return started, forever


async def status_of(db: asyncpg.Pool, job_id: int) -> asyncpg.Record:
    return await db.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)


async def test_two_workers_never_run_the_same_job(db: asyncpg.Pool, database_url: str) -> None:
    ran: Counter[int] = Counter()

    async def work(ctx: JobContext) -> dict:
        ran[ctx.job.id] += 1
        await asyncio.sleep(0.001)
        return {"ok": True}

    ids = [await jobs.enqueue(db, "test.work", {"i": i}) for i in range(60)]
    a = make_worker(db, database_url, {"test.work": work}, concurrency=4, name="a")
    b = make_worker(db, database_url, {"test.work": work}, concurrency=4, name="b")

    async def all_done() -> bool:
        return await db.fetchval("SELECT count(*) FROM jobs WHERE status = 'done'") == len(ids)

    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in (a, b)]
    try:
        await wait_for(all_done)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert sorted(ran) == sorted(ids) and set(ran.values()) == {1}
    assert {r["locked_by"] for r in await db.fetch("SELECT locked_by FROM jobs")} == {None}


async def test_failures_retry_with_backoff_then_succeed(db: asyncpg.Pool, database_url: str) -> None:
    async def flaky(ctx: JobContext) -> dict:
        if ctx.job.attempts < 3:
            raise RuntimeError(f"transient failure {ctx.job.attempts}")
        return {"attempt": ctx.job.attempts}

    job_id = await jobs.enqueue(db, "test.flaky", max_attempts=5)
    await run_until(make_worker(db, database_url, {"test.flaky": flaky}),
                    lambda: _is(db, job_id, "done"))
    row = await status_of(db, job_id)
    assert row["attempts"] == 3 and row["result"] == {"attempt": 3}
    assert "transient failure 2" in row["last_error"]


async def test_exhausted_retries_keep_a_dead_job_with_its_error(db: asyncpg.Pool, database_url: str) -> None:
    async def broken(ctx: JobContext) -> dict:
        raise ValueError("disk on fire")

    job_id = await jobs.enqueue(db, "test.broken", max_attempts=2)
    await run_until(make_worker(db, database_url, {"test.broken": broken}), lambda: _is(db, job_id, "dead"))
    row = await status_of(db, job_id)
    assert row["attempts"] == 2 and "disk on fire" in row["last_error"] and row["finished_at"] is not None


async def test_permanent_error_is_not_retried_and_on_done_is_told(db: asyncpg.Pool, database_url: str) -> None:
    async def bad_input(ctx: JobContext) -> dict:
        raise PermanentJobError("not a video file")

    seen: list[dict] = []

    async def after(ctx: JobContext) -> dict:
        seen.append(ctx.payload)
        return {}

    job_id = await jobs.enqueue(db, "test.bad", {"asset": "a1"}, max_attempts=5, on_done="test.after")
    worker = make_worker(db, database_url, {"test.bad": bad_input, "test.after": after})
    await run_until(worker, lambda: _truthy(seen))
    row = await status_of(db, job_id)
    assert row["status"] == "dead" and row["attempts"] == 1
    assert seen[0]["status"] == "dead" and seen[0]["error"] == "not a video file"
    assert seen[0]["payload"] == {"asset": "a1"} and seen[0]["job_id"] == job_id


async def test_progress_reports_are_visible_while_running(db: asyncpg.Pool, database_url: str) -> None:
    release = asyncio.Event()

    async def long(ctx: JobContext) -> dict:
        await ctx.report({"stage": "transcoding", "percent": 42}, force=True)
        await release.wait()
        return {}

    job_id = await jobs.enqueue(db, "test.long")
    stop = asyncio.Event()
    task = asyncio.create_task(make_worker(db, database_url, {"test.long": long}).run(stop))
    try:
        await wait_for(lambda: _progress(db, job_id))
        release.set()
        await wait_for(lambda: _is(db, job_id, "done"))
    finally:
        stop.set()
        await task


async def test_cancel_request_stops_a_running_job(db: asyncpg.Pool, database_url: str) -> None:
    started, forever = never_ending()
    job_id = await jobs.enqueue(db, "test.forever")
    worker = make_worker(db, database_url, {"test.forever": forever}, lease_seconds=0.3)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.wait_for(started.wait(), 10)
        await jobs.request_cancel(db, job_id)
        await wait_for(lambda: _is(db, job_id, "cancelled"))
    finally:
        stop.set()
        await task


async def test_graceful_stop_hands_the_job_back(db: asyncpg.Pool, database_url: str) -> None:
    started, forever = never_ending()
    job_id = await jobs.enqueue(db, "test.forever")
    worker = make_worker(db, database_url, {"test.forever": forever}, graceful_seconds=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(started.wait(), 10)
    stop.set()
    await task
    row = await status_of(db, job_id)
    assert row["status"] == "queued" and row["attempts"] == 0 and row["locked_by"] is None


async def test_job_of_a_sigkilled_worker_completes_on_another(db: asyncpg.Pool, database_url: str,
                                                            tmp_path: Path) -> None:
    marker = tmp_path / "started"
    job_id = await jobs.enqueue(db, "test.slow", {"n": 1})
    child = subprocess.Popen([sys.executable, str(ROOT / "tests" / "job_child.py"), database_url, str(marker)],
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert child.poll() is None, "child worker died before starting the job"
            assert time.monotonic() < deadline, "child worker never started the job"
            await asyncio.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert (await status_of(db, job_id))["status"] == "running"  # the dead worker still "holds" it

    async def quick(ctx: JobContext) -> dict:
        return {"finished_by": "survivor"}

    await run_until(make_worker(db, database_url, {"test.slow": quick}, name="survivor"),
                    lambda: _is(db, job_id, "done"))
    row = await status_of(db, job_id)
    assert row["attempts"] == 2 and row["result"] == {"finished_by": "survivor"}


async def test_unknown_kind_is_dead_not_stuck(db: asyncpg.Pool, database_url: str) -> None:
    job_id = await jobs.enqueue(db, "test.nobody-handles-this")
    await run_until(make_worker(db, database_url, {}), lambda: _is(db, job_id, "dead"))
    assert "no handler" in (await status_of(db, job_id))["last_error"]


async def test_queue_depth_counts_queued_jobs(db: asyncpg.Pool) -> None:
    for _ in range(3):
        await jobs.enqueue(db, "x", queue="transcode")
    await jobs.enqueue(db, "x", queue="default")
    assert await jobs.queue_depth(db) == {"transcode": 3, "default": 1}


async def _is(db: asyncpg.Pool, job_id: int, status: str) -> bool:
    return await db.fetchval("SELECT status FROM jobs WHERE id = $1", job_id) == status


async def _progress(db: asyncpg.Pool, job_id: int) -> bool:
    return (await db.fetchval("SELECT progress FROM jobs WHERE id = $1", job_id)) == {"stage": "transcoding",
                                                                                       "percent": 42}


async def _truthy(items: list) -> bool:
    return bool(items)


async def test_progress_hook_follows_reports_and_requeues(db: asyncpg.Pool, database_url: str) -> None:
    """The per-kind hook sees each report in its transaction, and {stage: queued} when the job is retried."""
    seen: list[tuple[int, dict, dict]] = []

    async def hook(conn: asyncpg.Connection, job, progress) -> None:
        stored = await conn.fetchval("SELECT progress FROM jobs WHERE id = $1", job.id)  # same transaction
        seen.append((job.id, dict(progress), stored))

    async def flaky(ctx: JobContext) -> dict:
        await ctx.report({"stage": "working", "percent": 10.0 * ctx.job.attempts}, force=True)
        if ctx.job.attempts == 1:
            raise RuntimeError("first attempt fails")
        return {}

    job_id = await jobs.enqueue(db, "test.hooked", {})
    other = await jobs.enqueue(db, "test.unhooked", {})
    worker = make_worker(db, database_url, {"test.hooked": flaky, "test.unhooked": flaky},
                         progress_hooks={"test.hooked": hook})
    await run_until(worker, lambda: _all_done(db, (job_id, other)))
    assert [(j, p) for j, p, _ in seen] == [(job_id, {"stage": "working", "percent": 10.0}),
                                            (job_id, {"stage": "queued", "percent": 0.0}),
                                            (job_id, {"stage": "working", "percent": 20.0})]
    assert seen[0][2] == {"stage": "working", "percent": 10.0}


async def _all_done(db: asyncpg.Pool, ids: tuple[int, ...]) -> bool:
    return await db.fetchval("SELECT bool_and(status = 'done') FROM jobs WHERE id = ANY($1::bigint[])", list(ids))
