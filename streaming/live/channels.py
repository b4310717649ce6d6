"""The `live_channels` table: the only module that writes it.

A channel's status: idle -> live (a publisher is sending and the encoder runs) -> reconnecting (the
publisher dropped; the event continues if it comes back within the window) -> ended. `starting` is the
short time between an accepted publish and the encoder's first segment.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from streaming.catalog.rights import Rights

_ALPHABET = "abcdefghijkmnopqrstuvwxyz23456789"
ON_AIR = ("starting", "live")


def new_channel_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(12))


def new_stream_key() -> str:
    return "live_" + secrets.token_urlsafe(24)


def live_prefix(channel_id: str) -> str:
    """Object-store prefix of a channel's playlists (and, without recording, its segments)."""
    return f"live/{channel_id}/"


@dataclass(frozen=True)
class Channel:
    id: str
    title: str
    stream_key: str
    record: bool
    dvr_seconds: int
    visibility: str
    latency: str          # low | standard (LL-HLS parts and LL-DASH on top of the same segments)
    status: str
    status_reason: str | None
    event_no: int
    ingest_protocol: str | None
    input: dict[str, Any] | None
    ladder: dict[str, Any] | None
    recording_asset: str | None
    recordings: list[dict[str, Any]]
    job_id: int | None
    started_at: datetime | None
    ended_at: datetime | None
    created_at: datetime
    updated_at: datetime
    rights: Rights = Rights()

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Channel:
        return cls(row["id"], row["title"], row["stream_key"], row["record"], row["dvr_seconds"], row["visibility"],
                   row["latency"], row["status"], row["status_reason"], row["event_no"], row["ingest_protocol"],
                   row["input"], row["ladder"], row["recording_asset"], list(row["recordings"] or []), row["job_id"],
                   row["started_at"], row["ended_at"], row["created_at"], row["updated_at"],
                   Rights(row["available_from"], row["available_until"], tuple(row["geo_allow"]),
                          tuple(row["geo_deny"])))


DB = asyncpg.Pool | asyncpg.Connection


async def create_channel(db: DB, *, title: str, record: bool, dvr_seconds: int, visibility: str,
                         latency: str = "standard", rights: Rights = Rights()) -> Channel:
    row = await db.fetchrow(
        """INSERT INTO live_channels (id, title, stream_key, record, dvr_seconds, visibility, latency,
                                      available_from, available_until, geo_allow, geo_deny)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *""",
        new_channel_id(), title, new_stream_key(), record, dvr_seconds, visibility, latency, rights.available_from,
        rights.available_until, list(rights.geo_allow), list(rights.geo_deny))
    return Channel.from_row(row)


# What PATCH may change (the caller validates values; rights columns as in the assets table).
UPDATABLE = ("title", "record", "dvr_seconds", "visibility", "available_from", "available_until", "geo_allow",
             "geo_deny")


async def update_channel(db: DB, channel_id: str, changes: dict[str, Any]) -> Channel | None:
    """Change settings; an event on air keeps its recording's rights (they were copied when it started)."""
    cols = [c for c in changes if c in UPDATABLE]
    if len(cols) != len(changes):
        raise TypeError(f"update_channel: unknown fields {sorted(set(changes) - set(UPDATABLE))}")
    sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(cols))
    row = await db.fetchrow(
        f"UPDATE live_channels SET {sets}{', ' if sets else ''}updated_at = now() WHERE id = $1 RETURNING *",
        channel_id, *[changes[c] for c in cols])
    return Channel.from_row(row) if row else None


async def get_channel(db: DB, channel_id: str) -> Channel | None:
    row = await db.fetchrow("SELECT * FROM live_channels WHERE id = $1", channel_id)
    return Channel.from_row(row) if row else None


async def channel_by_key(db: DB, stream_key: str) -> Channel | None:
    row = await db.fetchrow("SELECT * FROM live_channels WHERE stream_key = $1", stream_key)
    return Channel.from_row(row) if row else None


async def list_channels(db: DB, limit: int = 100) -> list[Channel]:
    rows = await db.fetch("SELECT * FROM live_channels ORDER BY created_at DESC, id DESC LIMIT $1", limit)
    return [Channel.from_row(r) for r in rows]


async def any_channel(db: DB) -> bool:
    return bool(await db.fetchval("SELECT EXISTS (SELECT 1 FROM live_channels)"))


async def rotate_key(db: DB, channel_id: str) -> Channel | None:
    row = await db.fetchrow("UPDATE live_channels SET stream_key = $2, updated_at = now() WHERE id = $1 RETURNING *",
                            channel_id, new_stream_key())
    return Channel.from_row(row) if row else None


async def delete_channel(db: DB, channel_id: str) -> bool:
    done = await db.execute("DELETE FROM live_channels WHERE id = $1", channel_id)
    return not done.endswith(" 0")


async def claim_publish(conn: asyncpg.Connection, channel_id: str, protocol: str) -> tuple[Channel, bool] | None:
    """Take the channel for a new publisher (call in a transaction). None while another publisher holds it.
    Returns (channel, new_event): a publisher returning inside the reconnect window continues the event."""
    row = await conn.fetchrow("SELECT * FROM live_channels WHERE id = $1 FOR UPDATE", channel_id)
    if row is None or row["status"] in ON_AIR:
        return None
    new_event = row["status"] != "reconnecting"
    row = await conn.fetchrow(
        """UPDATE live_channels SET status = 'starting', status_reason = NULL, ingest_protocol = $2,
                  event_no = event_no + CASE WHEN $3 THEN 1 ELSE 0 END,
                  started_at = CASE WHEN $3 THEN now() ELSE started_at END,
                  ended_at = NULL, input = CASE WHEN $3 THEN NULL ELSE input END, updated_at = now()
           WHERE id = $1 RETURNING *""", channel_id, protocol, new_event)
    return Channel.from_row(row), new_event


async def set_recording_asset(db: DB, channel_id: str, asset_id: str | None) -> None:
    await db.execute("UPDATE live_channels SET recording_asset = $2, updated_at = now() WHERE id = $1",
                     channel_id, asset_id)


async def set_live(db: DB, channel_id: str, event_no: int, input_facts: dict[str, Any],
                   ladder: dict[str, Any]) -> bool:
    """starting -> live (the encoder's first segments are out); False when the channel was not starting."""
    done = await db.execute(
        """UPDATE live_channels SET status = 'live', input = $3::jsonb, ladder = $4::jsonb, updated_at = now()
           WHERE id = $1 AND event_no = $2 AND status = 'starting'""",
        channel_id, event_no, input_facts, ladder)
    return not done.endswith(" 0")


async def note_ingest_reason(db: DB, channel_id: str, event_no: int, reason: str) -> None:
    """Why the ingest let the publisher go (stalled, closed, refused mid-stream), while the encoder drains: the
    encoder only sees its input end, so the channel's status after the run names this reason."""
    await db.execute("""UPDATE live_channels SET status_reason = $3, updated_at = now()
                        WHERE id = $1 AND event_no = $2 AND status IN ('starting', 'live')""",
                     channel_id, event_no, reason)


async def set_reconnecting(db: DB, channel_id: str, event_no: int, reason: str) -> bool:
    done = await db.execute(
        """UPDATE live_channels SET status = 'reconnecting', status_reason = $3, ingest_protocol = NULL,
                  updated_at = now() WHERE id = $1 AND event_no = $2 AND status IN ('starting', 'live')""",
        channel_id, event_no, reason)
    return not done.endswith(" 0")


async def set_ended(conn: asyncpg.Connection, channel_id: str, event_no: int, reason: str,
                    only_from: tuple[str, ...]) -> Channel | None:
    """End the event if the channel is still in one of `only_from`; the recording (if any) is listed."""
    row = await conn.fetchrow(
        """UPDATE live_channels SET status = 'ended', status_reason = $3, ingest_protocol = NULL,
                  ended_at = now(), updated_at = now()
           WHERE id = $1 AND event_no = $2 AND status = ANY($4::text[]) RETURNING *""",
        channel_id, event_no, reason, list(only_from))
    if row is None:
        return None
    if row["recording_asset"]:
        entry = {"asset_id": row["recording_asset"], "started_at": row["started_at"].isoformat(),
                 "ended_at": row["ended_at"].isoformat()}
        row = await conn.fetchrow(
            """UPDATE live_channels SET recordings = recordings || $2::jsonb, recording_asset = NULL
               WHERE id = $1 RETURNING *""", channel_id, [entry])
    return Channel.from_row(row)


async def set_run(db: DB, channel_id: str, job_id: int, recording_asset: str | None) -> None:
    await db.execute("UPDATE live_channels SET job_id = $2, recording_asset = $3, updated_at = now() WHERE id = $1",
                     channel_id, job_id, recording_asset)


async def job_progress(db: DB, job_id: int | None) -> tuple[str | None, dict[str, Any]]:
    """(status, progress) of the channel's current encoder run, for the API's view of a channel."""
    if job_id is None:
        return None, {}
    row = await db.fetchrow("SELECT status, progress FROM jobs WHERE id = $1", job_id)
    return (row["status"], dict(row["progress"] or {})) if row else (None, {})
