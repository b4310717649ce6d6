"""Group commit for votes: requests queue in-process and are written in one transaction every few ms.

A request's future resolves only after its batch has committed (synchronous_commit), so an
acknowledged vote is a durable vote. Throughput comes from sharing one commit between many votes,
not from acknowledging early.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, TypeVar

import asyncpg

from onair.core.metrics import METRICS
from streaming.interaction import ballots
from streaming.interaction.polls import accepting

log = logging.getLogger("streaming.votes")
T = TypeVar("T")

class Vote(NamedTuple):  # a tuple: built once per vote, a frozen dataclass costs a setattr per field
    poll_id: str
    device_id: str
    option_id: int
    # For the integrity report (integrity.py): stored with the vote, never checked on the way in.
    client_ip: str | None = None
    device_issued_at: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    kind: str                       # created | repeat | changed | closed | unknown
    option_id: int | None = None


# Outcomes are immutable and few (kind x option): one instance each, not one per vote.
_OUTCOMES: dict[tuple[str, int | None], Outcome] = {}
RECORDED = ("created", "repeat", "changed")


def _outcome(kind: str, option_id: int | None = None) -> Outcome:
    found = _OUTCOMES.get((kind, option_id))
    if found is None:
        found = _OUTCOMES[(kind, option_id)] = Outcome(kind, option_id)
    return found


class VoteBatcher:
    def __init__(self, pool: asyncpg.Pool, clock: Callable[[], datetime], *, max_batch: int = 2000,
                 flushers: int = 2, on_commit: Callable[[set[str]], None] | None = None) -> None:
        self._pool = pool
        self._clock = clock
        self._max_batch = max_batch
        self._flushers = flushers
        self._on_commit = on_commit
        self._pending: list[tuple[Vote, asyncio.Future[Outcome]]] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.batches = 0
        self.largest_batch = 0

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(), name=f"vote-flusher-{i}") for i in range(self._flushers)]

    async def stop(self) -> None:
        # Let queued votes commit before the pool closes; only then stop the flushers.
        for _ in range(200):
            if not self._pending:
                break
            await asyncio.sleep(0.01)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def submit(self, vote: Vote) -> Outcome:
        fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append((vote, fut))
        self._wake.set()
        return await fut

    async def _run(self) -> None:
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            batch, self._pending = self._pending[:self._max_batch], self._pending[self._max_batch:]
            if self._pending:
                self._wake.set()
            try:
                outcomes = await self._flush([v for v, _ in batch])
            except Exception as exc:
                log.warning("vote batch of %d failed: %s", len(batch), exc)
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), outcome in zip(batch, outcomes, strict=True):
                if not fut.done():  # the client may have gone; the vote still counts
                    fut.set_result(outcome)

    @staticmethod
    async def _retrying(write: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(5):
            try:
                return await write()
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                # The transaction rolled back as a whole; nothing was acknowledged, so retrying is safe.
                await asyncio.sleep(0.002 * (attempt + 1))
        return await write()

    @staticmethod
    async def _repeats(conn: asyncpg.Connection, repeats: list[Vote], now: datetime
                       ) -> tuple[dict[tuple[str, int], int], dict[tuple[str, str], tuple[str, int]]]:
        """Devices that had voted before: a change where the poll allows it, else their recorded choice. Its own
        transaction, with the polls locked again: a change commits only if the window is still open."""
        deltas: dict[tuple[str, int], int] = {}
        recorded: dict[tuple[str, str], tuple[str, int]] = {}
        async with conn.transaction():
            rows = await conn.fetch(
                "SELECT id, status, opens_at, closes_at, allow_change FROM polls WHERE id = ANY($1::text[]) "
                "ORDER BY id FOR SHARE", sorted({v.poll_id for v in repeats}))
            open_polls = {r["id"]: r for r in rows if accepting(r["status"], r["opens_at"], r["closes_at"], now)}
            repeats = [v for v in repeats if v.poll_id in open_polls]
            old = await ballots.recorded(conn, [(v.poll_id, v.device_id) for v in repeats])
            changes = []
            for v in repeats:
                before = old[(v.poll_id, v.device_id)]
                if before != v.option_id and open_polls[v.poll_id]["allow_change"]:
                    changes.append((v.poll_id, v.device_id, v.option_id))
                    deltas[(v.poll_id, before)] = deltas.get((v.poll_id, before), 0) - 1
                    deltas[(v.poll_id, v.option_id)] = deltas.get((v.poll_id, v.option_id), 0) + 1
                    recorded[(v.poll_id, v.device_id)] = ("changed", v.option_id)
                else:
                    recorded[(v.poll_id, v.device_id)] = ("repeat", before)
            if changes:
                await ballots.change(conn, changes, now)
                await ballots.add_to_tallies(conn, deltas)
        return deltas, recorded

    async def _flush(self, votes: list[Vote]) -> list[Outcome]:
        now = self._clock()
        started = time.perf_counter()
        # The first request of a device in a batch is the one written; its twins get its answer.
        first: dict[tuple[str, str], Vote] = {}
        for v in votes:
            first.setdefault((v.poll_id, v.device_id), v)
        async with self._pool.acquire() as conn:
            # New votes, the common case, in one statement and one round trip (ballots.cast).
            poll_ids = sorted({p for p, _ in first})
            rows = [(v.poll_id, v.device_id, v.option_id, v.client_ip, v.device_issued_at) for v in first.values()]
            cast = await self._retrying(lambda: ballots.cast(conn, poll_ids, rows, now))
            polls = cast.polls
            open_ids = {pid for pid, (is_open, _) in polls.items() if is_open}
            deltas: dict[tuple[str, int], int] = {}
            recorded: dict[tuple[str, str], tuple[str, int]] = {}
            repeats = []
            for key, v in first.items():
                if key in cast.written:
                    deltas[(v.poll_id, v.option_id)] = deltas.get((v.poll_id, v.option_id), 0) + 1
                    recorded[key] = ("created", v.option_id)
                elif v.poll_id in open_ids:
                    repeats.append(v)
            if repeats:
                # only after the new votes committed: retrying here never writes them twice
                changed, again = await self._retrying(lambda: self._repeats(conn, repeats, now))
                recorded.update(again)  # a poll that closed in between: its repeats are answered as closed
                for k, d in changed.items():
                    deltas[k] = deltas.get(k, 0) + d
        METRICS.vote_commit.observe(time.perf_counter() - started)
        METRICS.vote_batch.observe(len(votes))
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(votes))
        if self._on_commit and deltas:
            self._on_commit({p for p, _ in deltas})
        out: list[Outcome] = []
        counts = dict.fromkeys(RECORDED, 0)
        for v in votes:
            key = (v.poll_id, v.device_id)
            found = recorded.get(key)
            if found is None:
                out.append(_outcome("unknown" if v.poll_id not in polls else "closed"))
            else:
                kind, option = found
                kind = kind if first[key] is v else "repeat"
                counts[kind] += 1
                out.append(_outcome(kind, option))
        for kind, n in counts.items():  # one write per batch, not per vote (a file write with --workers N)
            if n:
                METRICS.votes_accepted.labels(kind).inc(n)
        return out
