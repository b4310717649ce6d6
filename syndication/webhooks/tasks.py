"""Webhook jobs: fan a published event out to its subscribers, then deliver each one with back-off.

Delivery is at least once (a receiver deduplicates on `webhook-id`), in event order per endpoint (a delivery
waits while an earlier one to the same endpoint is pending), and never in the request that caused the event.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from onair.core import job_kinds
from onair.core.jobs import Handler, JobContext, enqueue
from onair.core.metrics import METRICS
from syndication.webhooks import sender, store
from syndication.webhooks.purge_endpoint import configured

log = logging.getLogger("onair.webhooks")

WAIT_FOR_EARLIER = 1.0   # seconds after its predecessor's next try that a waiting delivery looks again


def retry_delays(schedule: str) -> list[float]:
    return [float(v) for v in schedule.split(",")]


async def fan_out(ctx: JobContext) -> dict[str, Any]:
    message = ctx.payload
    pool = ctx.resources.pool
    queued = 0
    async with pool.acquire() as conn, conn.transaction():
        for endpoint_id in await store.subscribers(conn, message["type"]):
            delivery_id = await store.add_delivery(conn, endpoint_id, message)
            if delivery_id is not None:
                await enqueue(conn, job_kinds.WEBHOOK_DELIVER, {"delivery_id": delivery_id}, max_attempts=5)
                queued += 1
    return {"deliveries": queued}


async def deliver(ctx: JobContext) -> dict[str, Any]:
    pool, settings = ctx.resources.pool, ctx.resources.settings
    delivery_id = ctx.payload["delivery_id"]
    delivery = await store.get_delivery(pool, delivery_id)
    if delivery is None or delivery["status"] != "pending":
        return {"skipped": "not pending"}
    endpoint = await store.get(pool, delivery["endpoint_id"])
    if endpoint is None or endpoint.disabled_at is not None:
        return {"skipped": "endpoint disabled or deleted"}
    blocked = await store.blocked_until(pool, delivery)
    if blocked is not None:
        wait = max(WAIT_FOR_EARLIER, (blocked - datetime.now(UTC)).total_seconds() + WAIT_FOR_EARLIER)
        await enqueue(pool, job_kinds.WEBHOOK_DELIVER, {"delivery_id": delivery_id}, max_attempts=5,
                      delay_seconds=wait)
        return {"waiting": "an earlier event to this endpoint is still pending"}
    private_ok = settings.allow_private_urls or configured(settings, endpoint.id, endpoint.url)
    outcome = await sender.send(endpoint.url, endpoint.secret, delivery["payload"],
                                timeout_seconds=settings.webhook_timeout_seconds, allow_private=private_ok,
                                request_id=ctx.job.request_id)
    delays = retry_delays(settings.webhook_retry_schedule)
    attempt = delivery["attempts"] + 1
    gave_up = not outcome.ok and attempt > len(delays)
    delay = None if outcome.ok or gave_up else delays[attempt - 1] * random.uniform(1.0, 1.2)  # jitter
    next_at = datetime.now(UTC) + timedelta(seconds=delay) if delay is not None else None
    METRICS.webhook_deliveries.labels("delivered" if outcome.ok else "gave-up" if gave_up else "retrying").inc()
    if outcome.latency_ms is not None:
        METRICS.webhook_latency.observe(outcome.latency_ms / 1000)
    async with pool.acquire() as conn, conn.transaction():
        await store.record_attempt(conn, delivery_id, ok=outcome.ok, code=outcome.code,
                                   latency_ms=outcome.latency_ms, error=outcome.error, next_attempt_at=next_at,
                                   gave_up=gave_up)
        if delay is not None:
            await enqueue(conn, job_kinds.WEBHOOK_DELIVER, {"delivery_id": delivery_id}, max_attempts=5,
                          delay_seconds=delay)
        if gave_up:
            reason = f"delivery {delivery_id} failed {attempt} times (last: {outcome.error})"
            await store.disable(conn, endpoint.id, reason)
            log.warning("webhook endpoint %s disabled: %s", endpoint.id, reason)
    return {"attempt": attempt, "ok": outcome.ok, "code": outcome.code}


HANDLERS: dict[str, Handler] = {job_kinds.EVENT_PUBLISHED: fan_out, job_kinds.WEBHOOK_DELIVER: deliver}
