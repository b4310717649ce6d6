"""The ballot box: the only writer of `votes` and `poll_tallies` (one row per device and poll; sharded counters).

The vote batcher calls these inside its group-commit transaction; poll creation and reset call them inside theirs.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

import asyncpg

TALLY_SHARDS = 64

# streaming.interaction.polls.accepting() as SQL over a polls row `p` and the batch's clock ($4), for the
# one-statement write (cast): both must say the same, and tests/test_polls.py checks them against each other.
ACCEPTING_SQL = ("NOT (p.status = 'closed' OR (p.closes_at IS NOT NULL AND $4 >= p.closes_at))"
                 " AND NOT (p.opens_at IS NOT NULL AND $4 < p.opens_at)"
                 " AND (p.status = 'open' OR p.opens_at IS NOT NULL)")


async def init_tallies(conn: asyncpg.Connection, poll_id: str, option_ids: Sequence[int]) -> None:
    await conn.executemany("INSERT INTO poll_tallies (poll_id, option_id) VALUES ($1, $2)",
                           [(poll_id, o) for o in option_ids])


async def clear(conn: asyncpg.Connection, poll_id: str) -> int:
    """Remove every vote of a poll and zero its counters; returns how many votes were removed."""
    removed = await conn.fetchval(
        "WITH d AS (DELETE FROM votes WHERE poll_id = $1 RETURNING 1) SELECT count(*) FROM d", poll_id)
    await conn.execute("UPDATE poll_tallies SET votes = 0 WHERE poll_id = $1", poll_id)
    return int(removed)


async def insert_new(conn: asyncpg.Connection,
                     rows: Sequence[tuple[str, str, int, str | None, datetime | None]], now: datetime
                     ) -> set[tuple[str, str]]:
    """Insert (poll, device, option, client IP, device issued at) rows; returns the (poll, device) pairs that
    were new. The IPs go as text (already normalised by the caller): asyncpg's inet[] encoder parses each one
    with Python's ipaddress, about 10 us a vote; PostgreSQL parses them in C."""
    inserted = await conn.fetch(
        """INSERT INTO votes (poll_id, device_id, option_id, created_at, client_ip, device_issued_at)
           SELECT p, d, o, $4, ip::inet, iss
           FROM unnest($1::text[], $2::text[], $3::int[], $5::text[], $6::timestamptz[]) AS u(p, d, o, ip, iss)
           ON CONFLICT DO NOTHING RETURNING poll_id, device_id""",
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], now, [r[3] for r in rows],
        [r[4] for r in rows])
    return {(r["poll_id"], r["device_id"]) for r in inserted}


class Cast(NamedTuple):
    polls: dict[str, tuple[bool, bool]]   # poll id -> (accepting now, allow_change), for each poll that exists
    written: set[tuple[str, str]]         # (poll, device) pairs that were new and are now counted


async def cast(conn: asyncpg.Connection, poll_ids: Sequence[str],
               rows: Sequence[tuple[str, str, int, str | None, datetime | None]], now: datetime) -> Cast:
    """A batch's new votes in one statement (one round trip, its own transaction): lock the polls FOR SHARE, in
    id order as every writer does, insert the votes of those accepting at `now`, and add them to one tally
    shard. A close/reset holds the row FOR UPDATE, so a vote commits only if its window was open when the
    batch ran. Votes that conflict (a device that voted before) are left to the caller."""
    shard = random.randrange(TALLY_SHARDS)
    found = await conn.fetch(
        f"""WITH p AS MATERIALIZED (
                SELECT id, status, opens_at, closes_at, allow_change FROM polls
                WHERE id = ANY($1::text[]) ORDER BY id FOR SHARE),
            ok AS (SELECT p.id FROM p WHERE {ACCEPTING_SQL}),
            ins AS (
                INSERT INTO votes (poll_id, device_id, option_id, created_at, client_ip, device_issued_at)
                SELECT u.p, u.d, u.o, $4, u.ip::inet, u.iss
                FROM unnest($2::text[], $3::text[], $5::int[], $6::text[], $7::timestamptz[]) AS u(p, d, o, ip, iss)
                JOIN ok ON ok.id = u.p
                ON CONFLICT DO NOTHING RETURNING poll_id, device_id, option_id),
            t AS (
                INSERT INTO poll_tallies (poll_id, option_id, shard, votes)
                SELECT poll_id, option_id, $8, count(*) FROM ins GROUP BY poll_id, option_id
                ORDER BY poll_id, option_id
                ON CONFLICT (poll_id, option_id, shard) DO UPDATE SET votes = poll_tallies.votes + EXCLUDED.votes)
            SELECT p.id AS poll_id, NULL::text AS device_id, ok.id IS NOT NULL AS accepting, p.allow_change
            FROM p LEFT JOIN ok ON ok.id = p.id
            UNION ALL
            SELECT poll_id, device_id, NULL, NULL FROM ins""",
        list(poll_ids), [r[0] for r in rows], [r[1] for r in rows], now, [r[2] for r in rows],
        [r[3] for r in rows], [r[4] for r in rows], shard)
    polls: dict[str, tuple[bool, bool]] = {}
    written: set[tuple[str, str]] = set()
    for r in found:
        if r["device_id"] is None:
            polls[r["poll_id"]] = (r["accepting"], r["allow_change"])
        else:
            written.add((r["poll_id"], r["device_id"]))
    return Cast(polls, written)


async def recorded(conn: asyncpg.Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The recorded option of each (poll, device)."""
    rows = await conn.fetch(
        """SELECT v.poll_id, v.device_id, v.option_id FROM votes v
           JOIN unnest($1::text[], $2::text[]) AS u(p, d) ON v.poll_id = u.p AND v.device_id = u.d""",
        [k[0] for k in keys], [k[1] for k in keys])
    return {(r["poll_id"], r["device_id"]): r["option_id"] for r in rows}


async def change(conn: asyncpg.Connection, rows: Sequence[tuple[str, str, int]], now: datetime) -> None:
    await conn.execute(
        """UPDATE votes v SET option_id = u.o, created_at = $4
           FROM unnest($1::text[], $2::text[], $3::int[]) AS u(p, d, o)
           WHERE v.poll_id = u.p AND v.device_id = u.d""",
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], now)


async def add_to_tallies(conn: asyncpg.Connection, deltas: dict[tuple[str, int], int]) -> None:
    # Counters are sharded (migration 0220): a batch adds to a random shard, so batches of other
    # processes rarely wait on its row locks. A fixed order keeps lock order the same everywhere.
    shard = random.randrange(TALLY_SHARDS)
    updates = [(p, o, shard, d) for (p, o), d in sorted(deltas.items()) if d]
    if updates:
        await conn.executemany(
            """INSERT INTO poll_tallies (poll_id, option_id, shard, votes) VALUES ($1, $2, $3, $4)
               ON CONFLICT (poll_id, option_id, shard) DO UPDATE SET votes = poll_tallies.votes + $4""",
            updates)


async def forget_before(conn: asyncpg.Connection, cutoff: datetime) -> int:
    """Privacy retention: votes cast before `cutoff` lose their client IP and device age, and those of polls
    closed before it go altogether (their device ids with them). Tallies live in poll_tallies and stay exact.
    Returns how many vote rows were cleared or deleted."""
    deleted = await conn.fetchval(
        """WITH d AS (DELETE FROM votes v USING polls p
                      WHERE v.poll_id = p.id AND v.created_at < $1 AND p.status = 'closed' AND p.closed_at < $1
                      RETURNING 1) SELECT count(*) FROM d""", cutoff)
    cleared = await conn.fetchval(
        """WITH u AS (UPDATE votes SET client_ip = NULL, device_issued_at = NULL
                      WHERE created_at < $1 AND (client_ip IS NOT NULL OR device_issued_at IS NOT NULL)
                      RETURNING 1) SELECT count(*) FROM u""", cutoff)
    return int(deleted) + int(cleared)
