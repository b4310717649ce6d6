"""Webhook endpoints and deliveries: the only writer of `webhook_endpoints` and `webhook_deliveries`."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

Db = asyncpg.Pool | asyncpg.Connection


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    events: tuple[str, ...]
    secret: str
    description: str
    disabled_at: datetime | None
    disabled_reason: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Endpoint:
        return cls(row["id"], row["url"], tuple(row["events"]), row["secret"], row["description"],
                   row["disabled_at"], row["disabled_reason"], row["created_at"])

    def public(self, *, with_secret: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id, "url": self.url, "events": list(self.events), "description": self.description,
            "enabled": self.disabled_at is None, "disabled_reason": self.disabled_reason,
            "created_at": self.created_at.isoformat()}
        if with_secret:
            body["secret"] = self.secret
        return body


def new_secret() -> str:
    """The Standard Webhooks form: `whsec_` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


async def create(db: Db, url: str, events: Sequence[str], description: str) -> Endpoint:
    row = await db.fetchrow(
        """INSERT INTO webhook_endpoints (id, url, events, secret, description) VALUES ($1, $2, $3, $4, $5)
           RETURNING *""", "ep_" + secrets.token_urlsafe(12), url, list(events), new_secret(), description)
    return Endpoint.from_row(row)


async def get(db: Db, endpoint_id: str) -> Endpoint | None:
    row = await db.fetchrow("SELECT * FROM webhook_endpoints WHERE id = $1", endpoint_id)
    return Endpoint.from_row(row) if row else None


async def list_all(db: Db) -> list[Endpoint]:
    return [Endpoint.from_row(r) for r in await db.fetch("SELECT * FROM webhook_endpoints ORDER BY created_at, id")]


async def update(db: Db, endpoint_id: str, *, url: str | None, events: Sequence[str] | None,
                 description: str | None, enabled: bool | None) -> Endpoint | None:
    row = await db.fetchrow(
        """UPDATE webhook_endpoints SET url = coalesce($2, url), events = coalesce($3, events),
                  description = coalesce($4, description),
                  disabled_at = CASE WHEN $5::boolean IS NULL THEN disabled_at
                                     WHEN $5 THEN NULL ELSE coalesce(disabled_at, now()) END,
                  disabled_reason = CASE WHEN $5::boolean IS NULL THEN disabled_reason
                                         WHEN $5 THEN NULL ELSE 'disabled by an admin' END
           WHERE id = $1 RETURNING *""",
        endpoint_id, url, list(events) if events is not None else None, description, enabled)
    return Endpoint.from_row(row) if row else None


async def keep_system_endpoint(db: Db, endpoint_id: str, url: str | None, events: Sequence[str], secret: str,
                               description: str, unset_reason: str) -> None:
    """An endpoint that follows the configuration (the purge webhook): created or updated while `url` is set,
    disabled (its delivery log kept) when it is not. A changed URL re-enables it; so does setting it again."""
    if url is None:
        await db.execute("UPDATE webhook_endpoints SET disabled_at = coalesce(disabled_at, now()), "
                         "disabled_reason = $2 WHERE id = $1", endpoint_id, unset_reason)
        return
    await db.execute(
        """INSERT INTO webhook_endpoints (id, url, events, secret, description) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (id) DO UPDATE SET events = EXCLUDED.events, secret = EXCLUDED.secret,
               description = EXCLUDED.description, url = EXCLUDED.url,
               disabled_at = CASE WHEN webhook_endpoints.url <> EXCLUDED.url OR webhook_endpoints.disabled_reason = $6
                                  THEN NULL ELSE webhook_endpoints.disabled_at END,
               disabled_reason = CASE WHEN webhook_endpoints.url <> EXCLUDED.url
                                           OR webhook_endpoints.disabled_reason = $6
                                      THEN NULL ELSE webhook_endpoints.disabled_reason END""",
        endpoint_id, url, list(events), secret, description, unset_reason)


async def delete(db: Db, endpoint_id: str) -> bool:
    return (await db.execute("DELETE FROM webhook_endpoints WHERE id = $1", endpoint_id)) != "DELETE 0"


async def disable(db: Db, endpoint_id: str, reason: str) -> None:
    await db.execute("UPDATE webhook_endpoints SET disabled_at = now(), disabled_reason = $2 WHERE id = $1",
                     endpoint_id, reason)


async def subscribers(db: Db, event_type: str) -> list[str]:
    rows = await db.fetch("SELECT id FROM webhook_endpoints WHERE disabled_at IS NULL AND $1 = ANY(events)",
                          event_type)
    return [r["id"] for r in rows]


# --- deliveries --------------------------------------------------------------------------------------------

async def add_delivery(db: Db, endpoint_id: str, message: dict[str, Any]) -> int | None:
    """One delivery of a message to an endpoint; None when it exists already (the fan-out ran twice)."""
    return await db.fetchval(
        """INSERT INTO webhook_deliveries (endpoint_id, message_id, event_type, payload, event_at)
           VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT (endpoint_id, message_id) DO NOTHING RETURNING id""",
        endpoint_id, message["id"], message["type"], message, datetime.fromisoformat(message["timestamp"]))


async def get_delivery(db: Db, delivery_id: int) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT * FROM webhook_deliveries WHERE id = $1", delivery_id)


async def blocked_until(db: Db, delivery: asyncpg.Record) -> datetime | None:
    """When an earlier event to the same endpoint is still pending, the time it is next tried (this one waits
    for it: per-endpoint order); None when nothing earlier is pending."""
    return await db.fetchval(
        """SELECT min(coalesce(next_attempt_at, now())) FROM webhook_deliveries
           WHERE endpoint_id = $1 AND status = 'pending' AND (event_at, id) < ($2, $3)""",
        delivery["endpoint_id"], delivery["event_at"], delivery["id"])


async def record_attempt(db: Db, delivery_id: int, *, ok: bool, code: int | None, latency_ms: int,
                         error: str | None, next_attempt_at: datetime | None, gave_up: bool) -> None:
    status = "delivered" if ok else ("failed" if gave_up else "pending")
    await db.execute(
        """UPDATE webhook_deliveries SET attempts = attempts + 1, status = $2, response_code = $3,
                  latency_ms = $4, last_error = $5, next_attempt_at = $6,
                  finished_at = CASE WHEN $2 = 'pending' THEN NULL ELSE now() END
           WHERE id = $1""", delivery_id, status, code, latency_ms, error, next_attempt_at)


async def reopen(db: Db, delivery_id: int) -> None:
    """Manual replay: the same message (same webhook-id) goes out again, from attempt one."""
    await db.execute("""UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = NULL,
                               finished_at = NULL WHERE id = $1""", delivery_id)


async def deliveries(db: Db, endpoint_id: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = await db.fetch(
        """SELECT id, message_id, event_type, status, attempts, response_code, latency_ms, last_error,
                  next_attempt_at, created_at, finished_at
           FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY id DESC LIMIT $2""", endpoint_id, limit)
    return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in dict(r).items()} for r in rows]
