"""Live channels API (admin credentials) and the time endpoint DASH players sync their clocks with."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from onair.core.auth import admin_required
from onair.core.db.pool import POOL
from onair.core.errors import NotFound, read_json
from onair.core.openapi import described
from onair.core.settings import SETTINGS, Settings
from onair.core.storage import STORE
from streaming.live import channels, events
from streaming.live.service import LIVE_INGEST


class ChannelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(min_length=1, max_length=500)]
    record: bool = False
    dvr_seconds: Annotated[int, Field(ge=10, le=86400)] = 7200
    visibility: Literal["public", "unlisted", "private"] = "public"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def channel_json(ch: channels.Channel, job: tuple[str | None, dict[str, Any]], settings: Settings) -> dict[str, Any]:
    base = settings.base_url
    host = urlsplit(settings.public_url).hostname if settings.public_url else None
    host = host or settings.live_ingest_host or settings.host
    job_status, progress = job
    status = ch.status
    if status == "starting" and job_status == "running" and progress.get("stage") == "live":
        status = "live"  # the encoder has published its first segments
    return {
        "id": ch.id, "title": ch.title, "stream_key": ch.stream_key, "status": status,
        "status_reason": ch.status_reason, "record": ch.record, "dvr_seconds": ch.dvr_seconds,
        "visibility": ch.visibility, "event": ch.event_no, "ingest_protocol": ch.ingest_protocol,
        "input": progress.get("input") if ch.status in channels.ON_AIR else ch.input,
        "ladder": progress.get("ladder") if ch.status in channels.ON_AIR else ch.ladder,
        "ingest": {"rtmp": f"rtmp://{host}:{settings.live_rtmp_port}/live/{ch.stream_key}",
                   "srt": f"srt://{host}:{settings.live_srt_port}?streamid=publish:{ch.stream_key}"},
        "playback": {"hls": f"{base}/live/{ch.id}/hls/master.m3u8", "dash": f"{base}/live/{ch.id}/dash/manifest.mpd",
                     "embed": f"{base}/embed/live/{ch.id}"},
        "recordings": ch.recordings, "recording_asset": ch.recording_asset,
        "started_at": _iso(ch.started_at), "ended_at": _iso(ch.ended_at),
        "created_at": _iso(ch.created_at), "updated_at": _iso(ch.updated_at),
    }


async def _respond(request: web.Request, ch: channels.Channel, status: int = 200) -> web.Response:
    job = await channels.job_progress(request.app[POOL], ch.job_id)
    return web.json_response(channel_json(ch, job, request.app[SETTINGS]), status=status,
                             headers={"Cache-Control": "no-store"})


async def _channel(request: web.Request) -> channels.Channel:
    ch = await channels.get_channel(request.app[POOL], request.match_info["channel_id"])
    if ch is None:
        raise NotFound(f"No live channel {request.match_info['channel_id']!r}")
    return ch


@admin_required
@described(body=ChannelCreate)
async def create(request: web.Request) -> web.Response:
    body = await read_json(request, ChannelCreate)
    ch = await channels.create_channel(request.app[POOL], title=body.title, record=body.record,
                                       dvr_seconds=body.dvr_seconds, visibility=body.visibility)
    await request.app[LIVE_INGEST].ensure_started()
    return await _respond(request, ch, 201)


@admin_required
async def listing(request: web.Request) -> web.Response:
    pool, settings = request.app[POOL], request.app[SETTINGS]
    items = [channel_json(ch, await channels.job_progress(pool, ch.job_id), settings)
             for ch in await channels.list_channels(pool)]
    return web.json_response({"items": items}, headers={"Cache-Control": "no-store"})


@admin_required
async def read(request: web.Request) -> web.Response:
    return await _respond(request, await _channel(request))


@admin_required
async def rotate_key(request: web.Request) -> web.Response:
    ch = await channels.rotate_key(request.app[POOL], (await _channel(request)).id)
    assert ch is not None
    return await _respond(request, ch)


@admin_required
async def end(request: web.Request) -> web.Response:
    ch = await _channel(request)
    await events.end_now(request.app[POOL], ch)
    return await _respond(request, await _channel(request))


@admin_required
async def delete(request: web.Request) -> web.Response:
    ch = await _channel(request)
    await events.end_now(request.app[POOL], ch)
    await channels.delete_channel(request.app[POOL], ch.id)
    await request.app[STORE].delete_prefix(channels.live_prefix(ch.id))
    return web.Response(status=204)


async def time_now(_request: web.Request) -> web.Response:
    """urn:mpeg:dash:utc:http-iso:2014: the server's clock as ISO 8601, never cached."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return web.Response(text=now, content_type="text/plain",
                        headers={"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"})


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/live/channels", create, name="live-create")
    app.router.add_get("/api/v1/live/channels", listing, name="live-list")
    app.router.add_get("/api/v1/live/channels/{channel_id}", read, name="live-read")
    app.router.add_delete("/api/v1/live/channels/{channel_id}", delete, name="live-delete")
    app.router.add_post("/api/v1/live/channels/{channel_id}/rotate-key", rotate_key, name="live-rotate-key")
    app.router.add_post("/api/v1/live/channels/{channel_id}/end", end, name="live-end")
    app.router.add_get("/api/v1/time", time_now, name="time")
