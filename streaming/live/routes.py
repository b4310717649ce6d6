"""Live channels API (editors: live:write; producers end events: live:control) and the time endpoint DASH
players sync their clocks with."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from onair.core.auth import audit, requires
from onair.core.db.pool import POOL
from onair.core.errors import BadRequest, NotFound, read_json
from onair.core.openapi import described
from onair.core.settings import SETTINGS, Settings
from onair.core.storage import STORE
from streaming.catalog.rights import CountryCode, Rights
from streaming.live import channels, events
from streaming.live.service import LIVE_INGEST


class _RightsFields(BaseModel):
    """The rights fields of an asset (streaming/catalog/rights.py), for a channel and its recordings."""
    available_from: AwareDatetime | None = None
    available_until: AwareDatetime | None = None
    geo_allow: list[CountryCode] | None = None
    geo_deny: list[CountryCode] | None = None

    @field_validator("geo_allow", "geo_deny")
    @classmethod
    def _distinct(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else sorted(set(v))


class ChannelCreate(_RightsFields):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(min_length=1, max_length=500)]
    record: bool = False
    dvr_seconds: Annotated[int, Field(ge=10, le=86400)] = 7200
    visibility: Literal["public", "unlisted", "private"] = "public"
    latency: Literal["low", "standard"] | None = None   # None: the deployment's ONAIR_LIVE_LATENCY

    def rights(self) -> Rights:
        return Rights(self.available_from, self.available_until, tuple(self.geo_allow or ()),
                      tuple(self.geo_deny or ()))


class ChannelPatch(_RightsFields):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    record: bool | None = None
    dvr_seconds: Annotated[int, Field(ge=10, le=86400)] | None = None
    visibility: Literal["public", "unlisted", "private"] | None = None


def _check_window(start: datetime | None, end: datetime | None) -> None:
    if start and end and end <= start:
        raise BadRequest("available_until must be after available_from", code="invalid-body")


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
        "visibility": ch.visibility, "latency": ch.latency, "event": ch.event_no,
        "ingest_protocol": ch.ingest_protocol,
        "rights": {"available_from": _iso(ch.rights.available_from),
                   "available_until": _iso(ch.rights.available_until),
                   "geo_allow": list(ch.rights.geo_allow), "geo_deny": list(ch.rights.geo_deny)},
        "input": progress.get("input") if ch.status in channels.ON_AIR else ch.input,
        "ladder": progress.get("ladder") if ch.status in channels.ON_AIR else ch.ladder,
        # the encoder fell behind and stepped down (dropped the top rung / a faster preset), while on air
        "degraded": progress.get("degraded") if ch.status in channels.ON_AIR else None,
        "ingest": {"rtmp": f"rtmp://{host}:{settings.live_rtmp_port}/live/{ch.stream_key}",
                   "srt": f"srt://{host}:{settings.live_srt_port}?streamid=publish:{ch.stream_key}"},
        "playback": {"hls": f"{base}/live/{ch.id}/hls/master.m3u8", "dash": f"{base}/live/{ch.id}/dash/manifest.mpd",
                     "dash_standard": f"{base}/live/{ch.id}/dash/standard.mpd",   # for DASH players without LL
                     "embed": f"{base}/embed/live/{ch.id}", "poster": f"{base}/live/{ch.id}/images/poster.jpg"},
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


@requires("live:write")
@described(body=ChannelCreate)
async def create(request: web.Request) -> web.Response:
    body = await read_json(request, ChannelCreate)
    _check_window(body.available_from, body.available_until)
    ch = await channels.create_channel(request.app[POOL], title=body.title, record=body.record,
                                       dvr_seconds=body.dvr_seconds, visibility=body.visibility,
                                       latency=body.latency or request.app[SETTINGS].live_latency,
                                       rights=body.rights())
    await request.app[LIVE_INGEST].ensure_started()
    await audit(request, "live.create", object_type="live_channel", object_id=ch.id)
    return await _respond(request, ch, 201)


@requires("live:write")
async def listing(request: web.Request) -> web.Response:
    pool, settings = request.app[POOL], request.app[SETTINGS]
    items = [channel_json(ch, await channels.job_progress(pool, ch.job_id), settings)
             for ch in await channels.list_channels(pool)]
    return web.json_response({"items": items}, headers={"Cache-Control": "no-store"})


@requires("live:write")
async def read(request: web.Request) -> web.Response:
    return await _respond(request, await _channel(request))


@requires("live:write")
@described(body=ChannelPatch)
async def patch(request: web.Request) -> web.Response:
    """Title, recording, DVR depth, visibility and rights; the origin applies rights from the next request."""
    current = await _channel(request)
    changes = (await read_json(request, ChannelPatch)).model_dump(exclude_unset=True)
    for key in ("title", "record", "dvr_seconds", "visibility", "geo_allow", "geo_deny"):
        if key in changes and changes[key] is None:
            raise BadRequest(f"{key} cannot be null", code="invalid-body")
    _check_window(changes.get("available_from", current.rights.available_from),
                  changes.get("available_until", current.rights.available_until))
    ch = await channels.update_channel(request.app[POOL], current.id, changes)
    if ch is None:
        raise NotFound(f"No live channel {current.id!r}")
    return await _respond(request, ch)


@requires("live:write")
async def rotate_key(request: web.Request) -> web.Response:
    ch = await channels.rotate_key(request.app[POOL], (await _channel(request)).id)
    assert ch is not None
    return await _respond(request, ch)


@requires("live:control")
async def end(request: web.Request) -> web.Response:
    ch = await _channel(request)
    await events.end_now(request.app[POOL], ch)
    await audit(request, "live.end", object_type="live_channel", object_id=ch.id)
    return await _respond(request, await _channel(request))


@requires("live:write")
async def delete(request: web.Request) -> web.Response:
    ch = await _channel(request)
    await events.end_now(request.app[POOL], ch)
    await channels.delete_channel(request.app[POOL], ch.id)
    await request.app[STORE].delete_prefix(channels.live_prefix(ch.id))
    await audit(request, "live.delete", object_type="live_channel", object_id=ch.id)
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
    app.router.add_patch("/api/v1/live/channels/{channel_id}", patch, name="live-update")
    app.router.add_delete("/api/v1/live/channels/{channel_id}", delete, name="live-delete")
    app.router.add_post("/api/v1/live/channels/{channel_id}/rotate-key", rotate_key, name="live-rotate-key")
    app.router.add_post("/api/v1/live/channels/{channel_id}/end", end, name="live-end")
    app.router.add_get("/api/v1/time", time_now, name="time")
