"""Live polls: definitions, voting window, results and audit trail. SQL lives here; HTTP does not."""

from __future__ import annotations

import csv
import functools
import io
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from onair.core import events, job_kinds
from onair.core.jobs import JobContext, enqueue
from streaming.interaction import ballots, integrity

_ALPHABET = "abcdefghijkmnopqrstuvwxyz23456789"
# How often a TV without SSE should poll /results (ms); the response is cacheable for 1 s anyway.
POLL_INTERVAL_MS = 1000


def new_poll_id() -> str:
    return "p" + "".join(secrets.choice(_ALPHABET) for _ in range(10))


@dataclass(frozen=True)
class Poll:
    id: str
    question: str
    options: tuple[tuple[int, str], ...]
    status: str                    # stored status: draft | open | closed
    show: str | None
    channel: str | None
    opens_at: datetime | None
    closes_at: datetime | None
    allow_change: bool
    opened_at: datetime | None
    closed_at: datetime | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Poll:
        return cls(id=row["id"], question=row["question"],
                   options=tuple((int(o["id"]), o["label"]) for o in row["options"]),
                   status=row["status"], show=row["show"], channel=row["channel"], opens_at=row["opens_at"],
                   closes_at=row["closes_at"], allow_change=row["allow_change"], opened_at=row["opened_at"],
                   closed_at=row["closed_at"], created_at=row["created_at"])

    @functools.cached_property  # asked on every vote of a cached poll; works on a frozen dataclass (no __setattr__)
    def option_ids(self) -> frozenset[int]:
        return frozenset(o for o, _ in self.options)


def accepting(status: str, opens_at: datetime | None, closes_at: datetime | None, now: datetime) -> bool:
    """Votes count only inside the window: opened by hand (or by its schedule) and not yet closed."""
    if status == "closed" or (closes_at is not None and now >= closes_at):
        return False
    if opens_at is not None and now < opens_at:
        return False
    return status == "open" or opens_at is not None


def effective_status(poll: Poll, now: datetime) -> str:
    if accepting(poll.status, poll.opens_at, poll.closes_at, now):
        return "open"
    if poll.status == "closed" or (poll.closes_at is not None and now >= poll.closes_at):
        return "closed"
    return "draft"


def window(poll: Poll) -> dict[str, Any]:
    return {"opens_at": poll.opens_at.isoformat() if poll.opens_at else None,
            "closes_at": poll.closes_at.isoformat() if poll.closes_at else None,
            "opened_at": poll.opened_at.isoformat() if poll.opened_at else None,
            "closed_at": poll.closed_at.isoformat() if poll.closed_at else None}


def to_json(poll: Poll, now: datetime) -> dict[str, Any]:
    return {"id": poll.id, "question": poll.question, "status": effective_status(poll, now),
            "options": [{"id": i, "label": label} for i, label in poll.options], "show": poll.show,
            "channel": poll.channel, "allow_change": poll.allow_change, **window(poll),
            "created_at": poll.created_at.isoformat()}


_COLUMNS = ("id, question, options, status, show, channel, opens_at, closes_at, allow_change, opened_at, "
            "closed_at, created_at")


async def create(db: asyncpg.Pool, *, question: str, options: list[str], show: str | None = None,
                 channel: str | None = None, opens_at: datetime | None = None, closes_at: datetime | None = None,
                 allow_change: bool = False) -> Poll:
    poll_id = new_poll_id()
    opts = [{"id": i, "label": label} for i, label in enumerate(options, start=1)]
    async with db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            # a `show` naming a show object links the poll to it (the show page finds its polls that way)
            f"""INSERT INTO polls (id, question, options, show, channel, opens_at, closes_at, allow_change, show_slug)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, (SELECT slug FROM shows WHERE slug = $4))
                RETURNING {_COLUMNS}""",
            poll_id, question, opts, show, channel, opens_at, closes_at, allow_change)
        await ballots.init_tallies(conn, poll_id, [o["id"] for o in opts])
        await conn.execute("INSERT INTO poll_audit (poll_id, action, detail) VALUES ($1, 'created', $2)",
                           poll_id, {"question": question, "options": options})
        await _schedule_close(conn, poll_id, closes_at, datetime.now(UTC))
    return Poll.from_row(row)


async def get(db: asyncpg.Pool | asyncpg.Connection, poll_id: str) -> Poll | None:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM polls WHERE id = $1", poll_id)
    return Poll.from_row(row) if row else None


async def list_recent(db: asyncpg.Pool, limit: int = 50) -> list[Poll]:
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM polls ORDER BY created_at DESC, id LIMIT $1", limit)
    return [Poll.from_row(r) for r in rows]


async def attach_show(db: asyncpg.Pool, poll_id: str, slug: str | None) -> bool:
    """Point a poll at a show (None detaches it); False when there is no such poll."""
    row = await db.fetchrow("UPDATE polls SET show_slug = $2, show = coalesce($2, show) WHERE id = $1 RETURNING id",
                            poll_id, slug)
    return row is not None


async def current_for_show(db: asyncpg.Pool, slug: str, now: datetime) -> Poll | None:
    """The poll a show's page shows: an open one, else one scheduled to open, else the latest closed one."""
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM polls WHERE show_slug = $1 ORDER BY created_at DESC LIMIT 20",
                          slug)
    found = [Poll.from_row(r) for r in rows]
    order = {"open": 0, "draft": 1, "closed": 2}
    found.sort(key=lambda p: order[effective_status(p, now)])  # stable: newest first within each state
    return found[0] if found else None


async def transition(db: asyncpg.Pool, poll_id: str, action: str, now: datetime) -> Poll | None:
    """open | close | reset. Takes the poll row lock, so it orders strictly with vote batches."""
    async with db.acquire() as conn, conn.transaction():
        current = await conn.fetchrow(f"SELECT {_COLUMNS} FROM polls WHERE id = $1 FOR UPDATE", poll_id)
        if current is None:
            return None
        if action == "open":
            # Opening by hand means "now": a future schedule start or a past end no longer applies.
            await conn.execute(
                """UPDATE polls SET status = 'open', opened_at = $2, closed_at = NULL,
                          opens_at = CASE WHEN opens_at > $2 THEN NULL ELSE opens_at END,
                          closes_at = CASE WHEN closes_at <= $2 THEN NULL ELSE closes_at END
                   WHERE id = $1""", poll_id, now)
        elif action == "close":
            await conn.execute("UPDATE polls SET status = 'closed', closed_at = $2 WHERE id = $1", poll_id, now)
        elif action == "reset":
            removed = await ballots.clear(conn, poll_id)
            await conn.execute("DELETE FROM poll_exclusions WHERE poll_id = $1", poll_id)
            await conn.execute("INSERT INTO poll_audit (poll_id, action, detail, at) VALUES ($1, $2, $3, $4)",
                               poll_id, "reset", {"votes_removed": removed}, now)
        else:
            raise ValueError(action)
        if action != "reset":
            await conn.execute("INSERT INTO poll_audit (poll_id, action, at) VALUES ($1, $2, $3)",
                               poll_id, action + ("ed" if action == "open" else "d"), now)
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM polls WHERE id = $1", poll_id)
        poll = Poll.from_row(row)
        if action == "open":
            await _schedule_close(conn, poll_id, poll.closes_at, now)
        if action in ("open", "close"):
            # Inside the transaction that holds the poll row FOR UPDATE: no vote batch can commit in between,
            # so the tally a `poll.closed` event carries is the exact final one.
            await events.publish(conn, "poll.opened" if action == "open" else "poll.closed",
                                 await results(conn, poll, now), at=now)
    return poll


async def results(db: asyncpg.Pool | asyncpg.Connection, poll: Poll, now: datetime) -> dict[str, Any]:
    """`options`/`total`: every accepted vote (the acknowledged tally, never changed); `after_exclusions`, when
    the producer excluded flagged votes, the same counts without them."""
    rows = await db.fetch("SELECT option_id, sum(votes) AS votes FROM poll_tallies WHERE poll_id = $1 "
                          "GROUP BY option_id", poll.id)
    counts = {r["option_id"]: int(r["votes"]) for r in rows}
    options = [{"id": i, "label": label, "votes": counts.get(i, 0)} for i, label in poll.options]
    out = {"poll_id": poll.id, "question": poll.question, "status": effective_status(poll, now),
           "total": sum(o["votes"] for o in options), "options": options,
           "poll_interval_ms": POLL_INTERVAL_MS}
    excl = await db.fetchrow("SELECT flags, removed, at FROM poll_exclusions WHERE poll_id = $1", poll.id)
    if excl is not None:
        removed = {int(k): int(v) for k, v in excl["removed"].items()}
        kept = [{"id": o["id"], "label": o["label"], "votes": o["votes"] - removed.get(o["id"], 0)} for o in options]
        out["after_exclusions"] = {"flags": list(excl["flags"]), "excluded": sum(removed.values()),
                                   "total": sum(o["votes"] for o in kept), "options": kept,
                                   "at": excl["at"].isoformat()}
    return out


async def exclude(db: asyncpg.Pool, poll_id: str, flags: list[str], thresholds: integrity.Thresholds,
                  now: datetime) -> dict[str, Any] | None:
    """Exclude votes carrying any of `flags` from a closed poll's second tally (an empty list clears it).
    None when the poll is not closed: the set of votes must be final for the counts to mean anything."""
    async with db.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM polls WHERE id = $1 FOR UPDATE", poll_id)
        if row is None or effective_status(Poll.from_row(row), now) != "closed":
            return None
        removed = await integrity.removed_by(conn, poll_id, flags, thresholds)
        if flags:
            await conn.execute(
                """INSERT INTO poll_exclusions (poll_id, flags, removed, at) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (poll_id) DO UPDATE SET flags = $2, removed = $3, at = $4""",
                poll_id, flags, {str(k): v for k, v in removed.items()}, now)
        else:
            await conn.execute("DELETE FROM poll_exclusions WHERE poll_id = $1", poll_id)
        # The audit trail (and so the CSV export) says who excluded what, with the thresholds it was judged by.
        await conn.execute(
            "INSERT INTO poll_audit (poll_id, action, detail, at) VALUES ($1, $2, $3, $4)", poll_id,
            "excluded" if flags else "exclusions-cleared",
            {"flags": flags, "removed": sum(removed.values()), "thresholds": thresholds.to_json()}, now)
        return await results(conn, Poll.from_row(row), now)


def _cell(value: object) -> object:
    """Spreadsheets run cells starting with = + - @ as formulas; viewers' labels must stay text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def export_csv(db: asyncpg.Pool, poll: Poll, now: datetime) -> str:
    """Counts per option, then the timestamped audit trail (created/opened/closed/reset)."""
    res = await results(db, poll, now)
    audit = await db.fetch("SELECT action, detail, at FROM poll_audit WHERE poll_id = $1 ORDER BY id", poll.id)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["poll_id", "question", "option_id", "label", "votes"])
    for o in res["options"]:
        w.writerow([poll.id, _cell(poll.question), o["id"], _cell(o["label"]), o["votes"]])
    w.writerow(["total", "", "", "", res["total"]])
    w.writerow([])
    w.writerow(["at", "action", "detail"])
    for a in audit:
        w.writerow([a["at"].isoformat(), a["action"], a["detail"] or ""])
    w.writerow([now.isoformat(), "exported", {"total": res["total"]}])
    return out.getvalue()


# --- a window that ends on schedule ---------------------------------------------------------------------------
# Votes stop at `closes_at` by themselves (every batch checks the window); this job makes the end an event too:
# at `closes_at` it marks the poll closed and publishes `poll.closed` with the final tally, taking the row FOR
# UPDATE like a manual close, so the last batch of the window has committed and the tally is exact.

async def _schedule_close(conn: asyncpg.Connection, poll_id: str, closes_at: datetime | None, now: datetime) -> None:
    if closes_at is not None and closes_at > now:
        await enqueue(conn, job_kinds.POLL_WINDOW_CLOSED, {"poll_id": poll_id, "closes_at": closes_at.isoformat()},
                      delay_seconds=(closes_at - now).total_seconds(), max_attempts=5)


async def close_when_due(ctx: JobContext) -> dict[str, Any]:
    poll_id, due = ctx.payload["poll_id"], datetime.fromisoformat(ctx.payload["closes_at"])
    early = (due - datetime.now(UTC)).total_seconds()
    if early > 0:  # the job clock ran ahead of ours: come back when it is time
        await enqueue(ctx.resources.pool, job_kinds.POLL_WINDOW_CLOSED, dict(ctx.payload), delay_seconds=early,
                      max_attempts=5)
        return {"waiting": early}
    async with ctx.resources.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM polls WHERE id = $1 FOR UPDATE", poll_id)
        # closed by hand already, or re-scheduled (opened again with another end): that path has its own event
        if row is None or row["status"] == "closed" or row["closes_at"] != due:
            return {"skipped": "closed or re-scheduled"}
        await conn.execute("UPDATE polls SET status = 'closed', closed_at = $2 WHERE id = $1", poll_id, due)
        await conn.execute("INSERT INTO poll_audit (poll_id, action, detail, at) VALUES ($1, 'closed', $2, $3)",
                           poll_id, {"by": "schedule"}, due)
        poll = Poll.from_row(await conn.fetchrow(f"SELECT {_COLUMNS} FROM polls WHERE id = $1", poll_id))
        await events.publish(conn, "poll.closed", await results(conn, poll, due), at=due)
    return {"poll_id": poll_id, "closed_at": due.isoformat()}
