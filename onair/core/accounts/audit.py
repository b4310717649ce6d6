"""The audit log (its only writer): who did what to which object, when, from where."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

DB = asyncpg.Pool | asyncpg.Connection


async def record(db: DB, actor: str, action: str, *, user_id: int | None = None, object_type: str | None = None,
                 object_id: str | None = None, ip: str | None = None, detail: dict[str, Any] | None = None) -> None:
    await db.execute(
        "INSERT INTO audit_log (actor, user_id, action, object_type, object_id, ip, detail) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
        actor, user_id, action, object_type, object_id, ip, json.dumps(detail or {}))


def _entry(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "at": row["at"].isoformat(), "actor": row["actor"], "action": row["action"],
            "object_type": row["object_type"], "object_id": row["object_id"], "ip": row["ip"],
            "detail": json.loads(row["detail"])}


async def recent(db: DB, *, limit: int = 100, before: int | None = None, action: str | None = None,
                 actor: str | None = None, since: datetime | None = None) -> list[dict[str, Any]]:
    """Newest first; `before` is the id of the last entry of the previous page."""
    rows = await db.fetch(
        "SELECT id, at, actor, action, object_type, object_id, ip, detail::text AS detail FROM audit_log "
        "WHERE ($1::bigint IS NULL OR id < $1) AND ($2::text IS NULL OR action = $2) "
        "AND ($3::text IS NULL OR actor = $3) AND ($4::timestamptz IS NULL OR at >= $4) "
        "ORDER BY id DESC LIMIT $5", before, action, actor, since, limit)
    return [_entry(r) for r in rows]
