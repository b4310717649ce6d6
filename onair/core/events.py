"""Domain events (`asset.ready`, `poll.closed`, ...) for the outside world: webhooks today, more later.

An event is published as a durable job (`events.published`) in the caller's transaction when given a
connection, so it exists exactly when the change that caused it does; whoever subscribes (the webhooks area)
fans it out later, and a slow receiver never slows the request that caused it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg

from onair.core import job_kinds
from onair.core.jobs import enqueue

# Every event type, with what it means; webhooks subscriptions may name only these.
EVENT_TYPES: dict[str, str] = {
    "asset.created": "An asset was created (upload, URL pull or partner publish).",
    "asset.ready": "An asset finished transcoding and can be played.",
    "asset.failed": "An asset could not be processed; `data.error` says why.",
    "asset.updated": "An asset's metadata, visibility or rights changed.",
    "asset.deleted": "An asset and its media were deleted.",
    "poll.opened": "A poll started taking votes.",
    "poll.closed": "A poll stopped taking votes; `data.results` is the exact final tally.",
    "live.started": "A live channel went on air.",
    "live.reconnecting": "A live channel lost its encoder and waits for it.",
    "live.ended": "A live channel ended.",
    "recording.ready": "The recording of a live event is a ready asset.",
    "chat.message.held": "A chat message waits in the pre-moderation queue.",
    "partner.usage.threshold": "A partner key passed its usage threshold.",
    "cdn.purge": "CDN copies of an asset must go: `data` has its cache `tags`, `asset_id`, `reason` and `paths`.",
}


def new_message_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


async def publish(db: asyncpg.Pool | asyncpg.Connection, event_type: str, data: Mapping[str, Any], *,
                  at: datetime | None = None, delay_seconds: float = 0.0) -> str:
    """Record an event for delivery (after `delay_seconds`); returns its message id (the `webhook-id`
    receivers deduplicate on)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    message_id = new_message_id()
    timestamp = (at or datetime.now(UTC)).isoformat()
    await enqueue(db, job_kinds.EVENT_PUBLISHED,
                  {"id": message_id, "type": event_type, "timestamp": timestamp, "data": dict(data)},
                  queue="default", priority=50, max_attempts=10, delay_seconds=delay_seconds)
    return message_id
