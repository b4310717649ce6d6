"""HTTP for shows: producers create them and attach a live channel, chat room, HbbTV app and polls;
anyone reads one (the show page and apps use the same JSON)."""

from __future__ import annotations

import asyncpg
from aiohttp import web
from pydantic import BaseModel, Field

from onair.core.auth import audit, requires
from onair.core.clock import now
from onair.core.db.pool import POOL
from onair.core.errors import BadRequest, Conflict, NotFound, read_json
from onair.core.openapi import described
from streaming.interaction import chat, polls, shows

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class ShowIn(BaseModel):
    slug: str = Field(pattern=shows.SLUG_RE.pattern)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)
    schedule: str = Field(default="", max_length=500)
    live_channel: str | None = Field(default=None, pattern=ID_PATTERN)
    chat_room: str | None = Field(default=None, pattern=chat.ROOM_RE.pattern)
    hbbtv_app: str | None = Field(default=None, pattern=ID_PATTERN)


class ShowPatch(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    schedule: str | None = Field(default=None, max_length=500)
    live_channel: str | None = Field(default=None, pattern=ID_PATTERN)
    chat_room: str | None = Field(default=None, pattern=chat.ROOM_RE.pattern)
    hbbtv_app: str | None = Field(default=None, pattern=ID_PATTERN)


class AttachPoll(BaseModel):
    poll_id: str = Field(min_length=1, max_length=64)


async def require_show(db: asyncpg.Pool, slug: str) -> shows.Show:
    show = await shows.get(db, slug) if shows.SLUG_RE.match(slug) else None
    if show is None:
        raise NotFound(f"No show {slug!r}", code="show-not-found")
    return show


async def show_json(db: asyncpg.Pool, show: shows.Show, request: web.Request) -> dict:
    t = now(request.app)
    poll = await polls.current_for_show(db, show.slug, t)
    return {**show.to_json(), "poll": polls.to_json(poll, t) if poll else None}


@requires("shows:write")
@described(body=ShowIn)
async def create_show(request: web.Request) -> web.Response:
    body = await read_json(request, ShowIn)
    show = await shows.create(request.app[POOL], **body.model_dump())
    if show is None:
        raise Conflict(f"A show named {body.slug!r} exists", code="show-exists")
    await chat.create_room(request.app[POOL], show.room, show.title)  # a show comes with its room
    await audit(request, "show.create", object_type="show", object_id=show.slug)
    return web.json_response(await show_json(request.app[POOL], show, request), status=201,
                             headers={"Location": f"/api/v1/shows/{show.slug}"})


async def list_shows(request: web.Request) -> web.Response:
    """Every show, or (`?hbbtv_app=`) the one a red-button app belongs to: the TV learns its live channel."""
    app_slug = request.query.get("hbbtv_app")
    if app_slug is not None:
        found = await shows.for_hbbtv_app(request.app[POOL], app_slug)
        items = [found.to_json()] if found else []
    else:
        items = [s.to_json() for s in await shows.list_all(request.app[POOL])]
    return web.json_response({"shows": items}, headers={"Cache-Control": "no-store"})


async def get_show(request: web.Request) -> web.Response:
    show = await require_show(request.app[POOL], request.match_info["slug"])
    return web.json_response(await show_json(request.app[POOL], show, request),
                             headers={"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"})


@requires("shows:write")
@described(body=ShowPatch)
async def patch_show(request: web.Request) -> web.Response:
    slug = request.match_info["slug"]
    await require_show(request.app[POOL], slug)
    body = await read_json(request, ShowPatch)
    changes = body.model_dump(exclude_unset=True)
    # title, description and schedule always have a value (null only unlinks a channel, room or app)
    for field in ("title", "description", "schedule"):
        if field in changes and changes[field] is None:
            raise BadRequest(f"{field} cannot be null", code="invalid-body", field=field)
    show = await shows.update(request.app[POOL], slug, changes)
    if show is None:
        raise NotFound(f"No show {slug!r}", code="show-not-found")
    if "chat_room" in changes:
        await chat.create_room(request.app[POOL], show.room, show.title)
    await audit(request, "show.update", object_type="show", object_id=slug)
    return web.json_response(await show_json(request.app[POOL], show, request))


@requires("shows:write")
async def delete_show(request: web.Request) -> web.Response:
    slug = request.match_info["slug"]
    if not (shows.SLUG_RE.match(slug) and await shows.delete(request.app[POOL], slug)):
        raise NotFound(f"No show {slug!r}", code="show-not-found")
    await audit(request, "show.delete", object_type="show", object_id=slug)
    return web.Response(status=204)


@requires("shows:write")
@described(body=AttachPoll)
async def attach_poll(request: web.Request) -> web.Response:
    show = await require_show(request.app[POOL], request.match_info["slug"])
    body = await read_json(request, AttachPoll)
    if not await polls.attach_show(request.app[POOL], body.poll_id, show.slug):
        raise NotFound(f"No poll {body.poll_id!r}", code="poll-not-found")
    await audit(request, "show.attach_poll", object_type="show", object_id=show.slug,
                detail={"poll_id": body.poll_id})
    return web.json_response(await show_json(request.app[POOL], show, request))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/shows", create_show, name="shows.create")
    r.add_get("/api/v1/shows", list_shows, name="shows.list")
    r.add_get("/api/v1/shows/{slug}", get_show, name="shows.get")
    r.add_patch("/api/v1/shows/{slug}", patch_show, name="shows.patch")
    r.add_delete("/api/v1/shows/{slug}", delete_show, name="shows.delete")
    r.add_post("/api/v1/shows/{slug}/polls", attach_poll, name="shows.attach_poll")
