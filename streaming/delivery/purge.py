"""Tell CDNs to drop an asset's cached objects: a `cdn.purge` event, delivered as a webhook.

The origin labels every cacheable response with `asset-<id>` (Surrogate-Key / Cache-Tag /
Edge-Cache-Tag), so one tag purge removes manifests, segments and images of that asset from any CDN
that supports tag purges (Fastly, Cloudflare, Akamai). A small adapter the operator points at their CDN's
purge API receives the event; its `data` is

    {"tags": ["asset-<id>"], "asset_id": "<id>", "reason": "deleted", "paths": ["/media/<id>/*"]}

Delivery is the webhooks machinery's (syndication/webhooks): Standard Webhooks signatures, retries with
back-off, a delivery log. ONAIR_PURGE_WEBHOOK_URL is one such endpoint; more CDNs can subscribe to
`cdn.purge` through the webhooks API. Publishing is durable (a job, in the caller's transaction when given a
connection) and never waits for the CDN, so the delete/unpublish that caused it never fails because of it.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from onair.core import events
from onair.core.db.pool import POOL
from onair.core.settings import SETTINGS, Settings

EVENT = "cdn.purge"
# After a switch of what a URL serves (a replaced source), purge only once no origin process can still answer
# from its one-second lookup cache (streaming.delivery.origin.LOOKUP_TTL): a CDN refetching in that second would
# keep the old manifest for its whole max-age.
SETTLE_SECONDS = 3.0


def settle_seconds(settings: Settings) -> float:
    """SETTLE_SECONDS, plus the time the offload nginx may keep a decision (a whole second more: nginx counts
    X-Accel-Expires to the end of a second), during which it still sends the old generation's file."""
    kept = settings.origin_offload_decision_seconds if settings.origin_offload == "nginx" else 0
    return SETTLE_SECONDS + (kept + 1 if kept else 0)


def purge_payload(asset_id: str, reason: str) -> dict[str, Any]:
    return {"tags": [f"asset-{asset_id}"], "asset_id": asset_id, "reason": reason,
            "paths": [f"/media/{asset_id}/*"]}


async def purge_asset(app: web.Application, asset_id: str, reason: str) -> str:
    """Purge from a request handler, now and once more after settle_seconds; returns the first event's message
    id (the deliveries' webhook-id).

    The first purge drops CDN copies at once. For about a second more an origin process answers from its lookup
    cache (and the offload nginx from a kept decision for its seconds), so a CDN refetching in that gap would
    keep the old answer for its whole max-age (a year for a segment); the second purge removes that copy."""
    async with app[POOL].acquire() as conn, conn.transaction():
        first = await purge(conn, asset_id, reason)
        await purge(conn, asset_id, reason, delay_seconds=settle_seconds(app[SETTINGS]))
    return first


async def purge(db: asyncpg.Pool | asyncpg.Connection, asset_id: str, reason: str, *,
                delay_seconds: float = 0.0) -> str:
    return await events.publish(db, EVENT, purge_payload(asset_id, reason), delay_seconds=delay_seconds)
