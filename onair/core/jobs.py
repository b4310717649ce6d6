"""A durable job queue in PostgreSQL.

* enqueue is an INSERT (inside the caller's transaction if given a connection) plus NOTIFY;
* a worker claims one job per statement with FOR UPDATE SKIP LOCKED, so two workers never
  run the same job;
* a running job holds a lease that a heartbeat renews; if the worker dies (SIGKILL, OOM,
  lost host) the lease expires and another worker claims the job again;
* failures retry with exponential back-off up to `max_attempts`, then the job is kept as
  `dead` with its last error; `PermanentJobError` skips the retries (bad input stays bad);
* *transient* failures (a full disk, storage, database or network down: `is_transient`) do not use up
  attempts: they back off exponentially with jitter for `horizon_seconds` from the first of them, so an
  outage of minutes to hours delays a job instead of killing it;
* `on_done` names a job kind enqueued, in the same transaction, when a job ends — this is
  how one domain hands results to another without importing it;
* a progress hook, registered per job kind by the domain that wants to follow that kind, sees every
  progress report in the transaction that records it (and `{"stage": "queued"}` when the job goes back
  to the queue), so the domain keeps its own tables current without the job's code importing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web

from onair.core.bus import Bus
from onair.core.errors import infrastructure_problem
from onair.core.logs import REQUEST_ID
from onair.core.settings import Settings
from onair.core.storage import ObjectStore

log = logging.getLogger("onair.core.jobs")

CHANNEL = "onair_jobs"


class PermanentJobError(Exception):
    """The job can never succeed (bad input); do not retry."""


class TransientJobError(Exception):
    """Infrastructure trouble (disk, storage, database, network) that time will fix; retry over the horizon."""


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (TransientJobError, TimeoutError)) or infrastructure_problem(exc) is not None


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 2.0
    factor: float = 3.0
    max_seconds: float = 600.0
    horizon_seconds: float = 6 * 3600.0

    def delay(self, attempt: int) -> float:
        return min(self.base_seconds * self.factor ** max(attempt - 1, 0), self.max_seconds)

    def transient_delay(self, retry: int) -> float:
        """Exponential (x2) with "equal jitter": workers that failed together do not all return together."""
        ceiling = min(self.base_seconds * 2 ** retry, self.max_seconds)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(base_seconds=settings.job_retry_base_seconds, max_seconds=settings.job_retry_max_seconds,
                   horizon_seconds=settings.job_retry_horizon_seconds)


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    queue: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    on_done: str | None
    created_at: datetime
    request_id: str | None = None   # of the request that enqueued it (or of the job that did)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Job:
        return cls(row["id"], row["kind"], row["queue"], row["payload"], row["attempts"], row["max_attempts"],
                   row["on_done"], row["created_at"], row.get("request_id"))


@dataclass
class Resources:
    """What a handler may use: shared infrastructure, never another domain."""

    settings: Settings
    pool: asyncpg.Pool
    store: ObjectStore | None = None   # None only in tests whose handlers touch no objects
    bus: Bus | None = None
    signing_key: bytes = b""            # read once at start-up, not from disk inside each job


ProgressHook = Callable[[asyncpg.Connection, Job, Mapping[str, Any]], Awaitable[None]]

# What a hook is told when the framework hands a job back to the queue (retry with back-off, or shutdown).
REQUEUED: Mapping[str, Any] = {"stage": "queued", "percent": 0.0}


@dataclass
class JobContext:
    job: Job
    resources: Resources
    on_progress: ProgressHook | None = None
    _last_report: float = 0.0

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload

    async def report(self, progress: Mapping[str, Any], *, force: bool = False) -> None:
        """Merge `progress` into the job's progress document (at most ~2 writes/s unless forced)."""
        now = time.monotonic()
        if not force and now - self._last_report < 0.5:
            return
        self._last_report = now
        async with self.resources.pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE jobs SET progress = progress || $2::jsonb WHERE id = $1",
                               self.job.id, dict(progress))
            if self.on_progress is not None:
                await self.on_progress(conn, self.job, progress)


Handler = Callable[[JobContext], Awaitable[Mapping[str, Any] | None]]


async def enqueue(db: asyncpg.Pool | asyncpg.Connection, kind: str, payload: Mapping[str, Any] | None = None, *,
                  queue: str = "default", priority: int = 100, max_attempts: int = 3,
                  delay_seconds: float = 0.0, on_done: str | None = None) -> int:
    job_id = await db.fetchval(
        """INSERT INTO jobs (queue, kind, payload, priority, max_attempts, run_after, on_done, request_id)
           VALUES ($1, $2, $3::jsonb, $4, $5, now() + make_interval(secs => $6), $7, $8) RETURNING id""",
        queue, kind, dict(payload or {}), priority, max_attempts, delay_seconds, on_done, REQUEST_ID.get())
    # NOTIFY is transactional: inside the caller's transaction it fires on commit.
    await db.execute("SELECT pg_notify($1, $2)", CHANNEL, queue)
    return job_id


async def request_cancel(db: asyncpg.Pool | asyncpg.Connection, job_id: int) -> None:
    await db.execute(
        """UPDATE jobs SET cancel_requested = true,
                  status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
                  finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END
           WHERE id = $1 AND status IN ('queued', 'running')""", job_id)


async def queue_depth(db: asyncpg.Pool | asyncpg.Connection) -> dict[str, int]:
    rows = await db.fetch("SELECT queue, count(*) AS n FROM jobs WHERE status = 'queued' GROUP BY queue")
    return {r["queue"]: r["n"] for r in rows}


_CLAIM = """
WITH next AS (
    SELECT id FROM jobs
    WHERE queue = ANY($1::text[])
      AND ((status = 'queued' AND run_after <= now())
           OR (status = 'running' AND lease_until < now()))
    ORDER BY priority, run_after, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs j
   SET status = 'running', attempts = j.attempts + 1, locked_by = $2,
       lease_until = now() + make_interval(secs => $3), started_at = now()
  FROM next
 WHERE j.id = next.id
RETURNING j.*
"""


class Worker:
    def __init__(self, pool: asyncpg.Pool, dsn: str, handlers: Mapping[str, Handler], resources: Resources, *,
                 queues: tuple[str, ...] = ("default",), concurrency: int = 2, lease_seconds: float = 30.0,
                 poll_seconds: float = 5.0, graceful_seconds: float = 10.0,
                 retry: RetryPolicy | None = None, name: str | None = None,
                 progress_hooks: Mapping[str, ProgressHook] | None = None) -> None:
        self.pool = pool
        self.dsn = dsn
        self.handlers = dict(handlers)
        self.progress_hooks = dict(progress_hooks or {})
        self.resources = resources
        self.queues = list(queues)
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = min(poll_seconds, lease_seconds)
        self.graceful_seconds = graceful_seconds
        self.retry = retry or RetryPolicy()
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = asyncio.Event()
        self._running: dict[int, asyncio.Task[None]] = {}

    async def run(self, stop: asyncio.Event) -> None:
        listener = await self._listen()
        log.info("worker %s polling queues %s (concurrency %d)", self.name, self.queues, self.concurrency)
        try:
            while not stop.is_set():
                await self._fill()
                self._wake.clear()
                waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
                await asyncio.wait(waiters, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
                for w in waiters:
                    w.cancel()
        finally:
            await self._shutdown()
            if listener is not None:
                with contextlib.suppress(Exception):
                    await listener.close()

    async def _listen(self) -> asyncpg.Connection | None:
        try:
            conn = await asyncpg.connect(self.dsn)
            await conn.add_listener(CHANNEL, lambda *_: self._wake.set())
            return conn
        except Exception as exc:  # polling still works; LISTEN only makes it prompt
            log.warning("LISTEN failed (%s); falling back to polling", exc)
            return None

    async def _fill(self) -> None:
        while len(self._running) < self.concurrency:
            try:
                row = await self.pool.fetchrow(_CLAIM, self.queues, self.name, self.lease_seconds)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("claim failed: %s", exc)
                return
            if row is None:
                return
            job = Job.from_row(row)
            task = asyncio.create_task(self._execute(job), name=f"job-{job.id}")
            self._running[job.id] = task
            task.add_done_callback(lambda _t, jid=job.id: (self._running.pop(jid, None), self._wake.set()))

    async def _execute(self, job: Job) -> None:
        REQUEST_ID.set(job.request_id)  # this task's logs and the jobs it enqueues carry the request's id
        if job.attempts > job.max_attempts:  # its lease expired once too often: the worker keeps dying on it
            await self._finish(job, "dead", error="worker lost the job (lease expired) too many times")
            return
        handler = self.handlers.get(job.kind)
        if handler is None:
            await self._finish(job, "dead", error=f"no handler for job kind {job.kind!r}")
            return
        ctx = JobContext(job, self.resources, self.progress_hooks.get(job.kind))
        work = asyncio.create_task(handler(ctx))
        beat = asyncio.create_task(self._heartbeat(job, work))
        log.info("job %s %s started (attempt %d/%d)", job.id, job.kind, job.attempts, job.max_attempts)
        try:
            result = await asyncio.shield(work)
        except asyncio.CancelledError:
            reason = beat.result() if beat.done() and not beat.cancelled() else None
            if work.cancelled() and reason:
                await asyncio.shield(self._finish(job, "cancelled", error=reason))
                return
            work.cancel()
            with contextlib.suppress(BaseException):
                await work
            await asyncio.shield(self._release(job))
            raise
        except PermanentJobError as exc:
            await asyncio.shield(self._finish(job, "dead", error=str(exc)))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if is_transient(exc):
                log.warning("job %s %s hit a transient failure: %s", job.id, job.kind, error)
                await asyncio.shield(self._retry_transient(job, error))
                return
            log.exception("job %s %s failed (attempt %d)", job.id, job.kind, job.attempts)
            if job.attempts >= job.max_attempts:
                await asyncio.shield(self._finish(job, "dead", error=error))
            else:
                await asyncio.shield(self._retry(job, error))
        else:
            await asyncio.shield(self._finish(job, "done", result=dict(result or {})))
        finally:
            beat.cancel()

    async def _heartbeat(self, job: Job, work: asyncio.Task[Any]) -> str | None:
        """Renew the lease while `work` runs; cancel it, and return why, when the job is cancelled or lost."""
        while not work.done():
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                row = await self.pool.fetchrow(
                    """UPDATE jobs SET lease_until = now() + make_interval(secs => $3)
                       WHERE id = $1 AND locked_by = $2 AND status = 'running' RETURNING cancel_requested""",
                    job.id, self.name, self.lease_seconds)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("lease renewal for job %s failed: %s", job.id, exc)
                continue
            if row is None or row["cancel_requested"]:
                reason = "cancelled on request" if row is not None else "lease lost to another worker"
                log.warning("job %s: %s", job.id, reason)
                work.cancel()
                return reason
        return None

    async def _finish(self, job: Job, status: str, *, result: Mapping[str, Any] | None = None,
                      error: str | None = None) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            updated = await conn.execute(
                """UPDATE jobs SET status = $2, result = $3::jsonb, last_error = coalesce($4, last_error),
                          finished_at = now(), locked_by = NULL, lease_until = NULL
                   WHERE id = $1 AND locked_by = $5""",
                job.id, status, None if result is None else dict(result), error, self.name)
            if updated.endswith(" 0"):  # someone else owns it now; their outcome wins
                return
            if job.on_done:
                await enqueue(conn, job.on_done, {"job_id": job.id, "kind": job.kind, "status": status,
                                                  "result": dict(result or {}), "error": error,
                                                  "payload": job.payload}, queue=job.queue, priority=0)
        log.info("job %s %s %s%s", job.id, job.kind, status, f": {error}" if error else "")

    async def _retry(self, job: Job, error: str) -> None:
        delay = self.retry.delay(job.attempts)
        async with self.pool.acquire() as conn, conn.transaction():
            updated = await conn.execute(
                """UPDATE jobs SET status = 'queued', last_error = $2, run_after = now() + make_interval(secs => $3),
                          locked_by = NULL, lease_until = NULL
                   WHERE id = $1 AND locked_by = $4""", job.id, error, delay, self.name)
            await self._requeued(conn, job, updated)
        log.info("job %s %s will retry in %.0fs", job.id, job.kind, delay)

    async def _retry_transient(self, job: Job, error: str) -> None:
        """Queue again without using up an attempt, unless the failures have lasted past the horizon."""
        row = await self.pool.fetchrow(
            """SELECT transient_retries, extract(epoch FROM now() - coalesce(failing_since, now())) AS failing
               FROM jobs WHERE id = $1 AND locked_by = $2""", job.id, self.name)
        if row is None:
            return
        if row["failing"] >= self.retry.horizon_seconds:
            await self._finish(job, "dead", error=f"gave up after {row['failing']:.0f} s of transient failures: "
                                                  f"{error}")
            return
        delay = self.retry.transient_delay(row["transient_retries"])
        await self.pool.execute(
            """UPDATE jobs SET status = 'queued', last_error = $2, run_after = now() + make_interval(secs => $3),
                      attempts = greatest(attempts - 1, 0), transient_retries = transient_retries + 1,
                      failing_since = coalesce(failing_since, now()), locked_by = NULL, lease_until = NULL
               WHERE id = $1 AND locked_by = $4""", job.id, error, delay, self.name)
        log.info("job %s %s will retry in %.1fs (transient)", job.id, job.kind, delay)

    async def _release(self, job: Job) -> None:
        # Shutting down: hand the job back untouched so the next worker starts it fresh.
        with contextlib.suppress(Exception):
            async with self.pool.acquire() as conn, conn.transaction():
                updated = await conn.execute(
                    """UPDATE jobs SET status = 'queued', attempts = greatest(attempts - 1, 0), locked_by = NULL,
                              lease_until = NULL, run_after = now()
                       WHERE id = $1 AND locked_by = $2""", job.id, self.name)
                await self._requeued(conn, job, updated)
            await self.pool.execute("SELECT pg_notify($1, $2)", CHANNEL, job.queue)

    async def _requeued(self, conn: asyncpg.Connection, job: Job, updated: str) -> None:
        hook = self.progress_hooks.get(job.kind)
        if hook is not None and not updated.endswith(" 0"):
            await hook(conn, job, REQUEUED)

    async def _shutdown(self) -> None:
        if not self._running:
            return
        tasks = list(self._running.values())
        _done, pending = await asyncio.wait(tasks, timeout=self.graceful_seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


WORKER_TASK = web.AppKey("job_worker_task", asyncio.Task)


def worker_context(worker_factory: Callable[[web.Application], Worker]):
    """Run a job worker inside the web process (the embedded default)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        worker = worker_factory(app)
        task = asyncio.create_task(worker.run(stop), name="job-worker")
        app[WORKER_TASK] = task
        yield
        stop.set()
        await task

    return ctx
