"""What happens to a channel when its encoder run stops: reconnecting for a window, then ended; ending
finalises the live playlists and, for a recorded event, publishes the recording through the catalogue.

Each change is published as a domain event (onair.core.events: webhooks deliver them) in the transaction that
makes it: `live.started` when the encoder's first segments are out (also after a reconnect, `resumed: true`),
`live.reconnecting` when the publisher drops, `live.ended` however the event ends. `recording.ready` comes from
the catalogue, which is the one that turns the recording `ready`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import asyncpg

from onair.core import events, job_kinds
from onair.core.jobs import Handler, Job, JobContext, ProgressHook, enqueue
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


async def end_event(conn: asyncpg.Connection, channel_id: str, event_no: int, reason: str,
                    only_from: tuple[str, ...]) -> channels.Channel | None:
    """End the event (if still in `only_from`) and say so to subscribers."""
    ended = await channels.set_ended(conn, channel_id, event_no, reason, only_from)
    if ended is not None:
        last = ended.recordings[-1] if ended.recordings else None   # set_ended lists this event's recording
        ended_at = ended.ended_at.isoformat() if ended.ended_at else None
        recording = last["asset_id"] if last and last["ended_at"] == ended_at else None
        await events.publish(conn, "live.ended", {"channel_id": channel_id, "event": event_no, "reason": reason,
                                                  "recording_asset_id": recording})
    return ended


async def encoder_progress(conn: asyncpg.Connection, job: Job, progress: Mapping[str, Any]) -> None:
    """Progress hook of `transcode.live`: its first published segments put the channel `live` (with the input
    facts and ladder the encoder reported just before), in the transaction that records the report."""
    if progress.get("stage") != "live":
        return
    p = job.payload
    merged = dict(await conn.fetchval("SELECT progress FROM jobs WHERE id = $1", job.id) or {})
    if await channels.set_live(conn, p["channel_id"], p["event"], merged.get("input") or {},
                               merged.get("ladder") or {}):
        await events.publish(conn, "live.started", {
            "channel_id": p["channel_id"], "event": p["event"], "resumed": bool(p.get("resumed")),
            "input": merged.get("input"), "ingest_protocol": "rtmp" if p.get("format") == "flv" else "srt"})


async def encoder_done(ctx: JobContext) -> dict[str, Any]:
    done = ctx.payload
    p = done["payload"]
    reason = (done.get("result") or {}).get("reason") or done.get("error") or done["status"]
    pool, settings = ctx.resources.pool, ctx.resources.settings
    async with pool.acquire() as conn, conn.transaction():
        ch = await channels.get_channel(conn, p["channel_id"])
        if ch is None:
            return {"skipped": "channel deleted"}
        if done["status"] == "done" and ch.status in channels.ON_AIR and ch.status_reason:
            reason = ch.status_reason   # the ingest knows why the input ended (stalled, closed); the encoder does not
        if ch.job_id != done["job_id"] and ch.status in channels.ON_AIR:
            return {"skipped": "a newer run holds the channel"}
        produced = bool((done.get("result") or {}).get("segments"))
        if done["status"] != "done" and not produced:  # bad input or no encoder: nothing to wait for
            ended = await end_event(conn, ch.id, p["event"], reason, ("starting", "live", "reconnecting"))
            if ended is not None:
                await finalise(conn, p)
            return {"status": "ended", "reason": reason}
        if await channels.set_reconnecting(conn, ch.id, p["event"], reason):
            await events.publish(conn, "live.reconnecting", {
                "channel_id": ch.id, "event": p["event"], "reason": reason,
                "window_seconds": settings.live_reconnect_seconds})
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
        ended = await end_event(conn, ch.id, p["event"], "the publisher did not come back", ("reconnecting",))
        if ended is None:
            return {"skipped": f"channel is {ch.status}"}
        await finalise(conn, p)
    return {"status": "ended"}


async def end_now(pool: asyncpg.Pool, channel: channels.Channel) -> channels.Channel | None:
    """The studio pressed End. A running encoder drains (its on_done finalises); otherwise finalise now."""
    async with pool.acquire() as conn, conn.transaction():
        ended = await end_event(conn, channel.id, channel.event_no, "ended by the studio",
                                ("starting", "live", "reconnecting"))
        if ended is not None and channel.status == "reconnecting" and channel.job_id is not None:
            payload = await conn.fetchval("SELECT payload FROM jobs WHERE id = $1", channel.job_id)
            if payload:
                await finalise(conn, payload)
    return ended


HANDLERS: dict[str, Handler] = {job_kinds.LIVE_ENCODER_DONE: encoder_done, job_kinds.LIVE_END_IF_IDLE: end_if_idle}
PROGRESS_HOOKS: dict[str, ProgressHook] = {job_kinds.TRANSCODE_LIVE: encoder_progress}
