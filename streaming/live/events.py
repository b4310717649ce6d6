"""What happens to a channel when its encoder run stops: reconnecting for a window, then ended; ending
finalises the live playlists and, for a recorded event, publishes the recording through the catalogue."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from onair.core import job_kinds
from onair.core.jobs import Handler, JobContext, enqueue
from streaming import catalog
from streaming.live import channels

log = logging.getLogger("onair.live")


async def finalise(conn: asyncpg.Connection, payload: dict[str, Any]) -> None:
    """Queue the end-of-event packaging (ENDLIST / static MPD): for a recording through the catalogue, so the
    asset turns `ready` from the very segments viewers watched live."""
    job = {"state_key": payload["state_key"], "live_prefix": payload["live_prefix"],
           "media_prefix": payload["media_prefix"], "event": payload["event"], "channel_id": payload["channel_id"]}
    asset_id = payload.get("asset_id")
    if asset_id and await catalog.get_asset(conn, asset_id) is not None:
        await catalog.start_packaging(conn, asset_id, job_kinds.TRANSCODE_LIVE_VOD,
                                      {**job, "asset_prefix": catalog.media_prefix(asset_id)})
    else:
        await enqueue(conn, job_kinds.TRANSCODE_LIVE_VOD, job, queue="live", priority=0)


async def encoder_done(ctx: JobContext) -> dict[str, Any]:
    done = ctx.payload
    p = done["payload"]
    reason = (done.get("result") or {}).get("reason") or done.get("error") or done["status"]
    pool, settings = ctx.resources.pool, ctx.resources.settings
    async with pool.acquire() as conn, conn.transaction():
        ch = await channels.get_channel(conn, p["channel_id"])
        if ch is None:
            return {"skipped": "channel deleted"}
        if ch.job_id != done["job_id"] and ch.status in channels.ON_AIR:
            return {"skipped": "a newer run holds the channel"}
        produced = bool((done.get("result") or {}).get("segments"))
        if done["status"] != "done" and not produced:  # bad input or no encoder: nothing to wait for
            ended = await channels.set_ended(conn, ch.id, p["event"], reason, ("starting", "live", "reconnecting"))
            if ended is not None:
                await finalise(conn, p)
            return {"status": "ended", "reason": reason}
        if await channels.set_reconnecting(conn, ch.id, p["event"], reason):
            await enqueue(conn, job_kinds.LIVE_END_IF_IDLE, {**p, "job_id": done["job_id"]}, queue="live",
                          delay_seconds=settings.live_reconnect_seconds, priority=0)
            return {"status": "reconnecting"}
        if ch.status == "ended" and ch.event_no == p["event"]:  # ended from the API while this run drained
            await finalise(conn, p)
    return {"status": ch.status}


async def end_if_idle(ctx: JobContext) -> dict[str, Any]:
    p = ctx.payload
    async with ctx.resources.pool.acquire() as conn, conn.transaction():
        ch = await channels.get_channel(conn, p["channel_id"])
        if ch is None or ch.job_id != p["job_id"]:
            return {"skipped": "the publisher came back"}
        ended = await channels.set_ended(conn, ch.id, p["event"], "the publisher did not come back",
                                         ("reconnecting",))
        if ended is None:
            return {"skipped": f"channel is {ch.status}"}
        await finalise(conn, p)
    return {"status": "ended"}


async def end_now(pool: asyncpg.Pool, channel: channels.Channel) -> channels.Channel | None:
    """The studio pressed End. A running encoder drains (its on_done finalises); otherwise finalise now."""
    async with pool.acquire() as conn, conn.transaction():
        ended = await channels.set_ended(conn, channel.id, channel.event_no, "ended by the studio",
                                         ("starting", "live", "reconnecting"))
        if ended is not None and channel.status == "reconnecting" and channel.job_id is not None:
            payload = await conn.fetchval("SELECT payload FROM jobs WHERE id = $1", channel.job_id)
            if payload:
                await finalise(conn, payload)
    return ended


HANDLERS: dict[str, Handler] = {job_kinds.LIVE_ENCODER_DONE: encoder_done, job_kinds.LIVE_END_IF_IDLE: end_if_idle}
