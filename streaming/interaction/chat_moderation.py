"""HTTP for chat moderation (the studio, staff with chat:moderate): rooms, delete, approve, ban."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from aiohttp import web
from pydantic import BaseModel, Field, field_validator

from onair.core.auth import audit, requires
from onair.core.bus import BUS, BusUnavailable
from onair.core.clock import now
from onair.core.db.pool import POOL
from onair.core.errors import BadRequest, Conflict, NotFound, read_json
from onair.core.metrics import METRICS
from onair.core.openapi import described
from streaming.interaction import chat
from streaming.interaction.chat_hub import channel


def _room(request: web.Request) -> str:
    return chat.check_room(request.match_info["room"])


class RoomPatch(BaseModel):
    slow_mode_seconds: int | None = Field(default=None, ge=0, le=3600)
    paused: bool | None = None
    premoderation: bool | None = None
    words: list[str] | None = Field(default=None, max_length=1000)


class RoomIn(BaseModel):
    room: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=200)

    @field_validator("room")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not chat.ROOM_RE.match(value):
            raise ValueError("room names are 1-64 letters, digits, '.', '_' or '-'")
        if value in chat.RESERVED_ROOMS:
            raise ValueError(f"{value!r} is reserved")
        return value


class BanIn(BaseModel):
    message_id: int | None = None
    device_id: str | None = Field(default=None, max_length=200)
    nickname: str | None = Field(default=None, max_length=200)
    minutes: float = Field(default=60, gt=0, le=60 * 24 * 365)
    reason: str = Field(default="", max_length=500)


@requires("chat:moderate")
@described(body=RoomIn, status=201)
async def create_room(request: web.Request) -> web.Response:
    """Open a chat room (viewers' messages never create one)."""
    body = await read_json(request, RoomIn, max_bytes=4096)
    room = await chat.create_room(request.app[POOL], body.room, body.name)
    if room is None:
        raise Conflict(f"A chat room named {body.room!r} exists", code="room-exists", field="room")
    await audit(request, "chat.room.create", object_type="chat_room", object_id=room.room)
    return web.json_response(room.to_json(), status=201, headers={"Location": f"/api/v1/chat/{room.room}",
                                                                  "Cache-Control": "no-store"})


@requires("chat:moderate")
async def get_room(request: web.Request) -> web.Response:
    room = await chat.ensure_room(request.app[POOL], _room(request))
    pending = [chat.message_json(r, admin=True) for r in await chat.pending(request.app[POOL], room.room)]
    return web.json_response({**room.to_json(), "pending": pending}, headers={"Cache-Control": "no-store"})


@requires("chat:moderate")
@described(body=RoomPatch)
async def patch_room(request: web.Request) -> web.Response:
    body = await read_json(request, RoomPatch)
    changes = body.model_dump(exclude_none=True)
    if "words" in changes:
        changes["words"] = sorted({w.strip() for w in changes["words"] if w.strip()})
    room = await chat.update_room(request.app[POOL], _room(request), changes)
    with contextlib.suppress(BusUnavailable):
        await request.app[BUS].publish(channel(room.room), {"type": "room", **room.to_json()})
    return web.json_response(room.to_json(), headers={"Cache-Control": "no-store"})


@requires("chat:moderate")
async def delete_message(request: web.Request) -> web.Response:
    room = _room(request)
    message_id = _message_id(request)
    seq = await chat.delete(request.app[POOL], room, message_id)
    if seq is None:
        raise NotFound(f"No message {message_id} in {room}", code="message-not-found")
    with contextlib.suppress(BusUnavailable):  # stored: long-polls and reconnecting sockets read the tombstone
        await request.app[BUS].publish(channel(room), {"type": "deleted", "id": message_id})
        await request.app[BUS].publish(channel(room), {"type": "seq", "cursor": str(seq)})  # wakes long-polls
    return web.Response(status=204)


@requires("chat:moderate")
async def approve_message(request: web.Request) -> web.Response:
    room = _room(request)
    row = await chat.approve(request.app[POOL], room, _message_id(request))
    if row is None:
        raise NotFound("No pending message with that id", code="message-not-found")
    message = chat.message_json(row)
    METRICS.chat_messages.labels(room, row["status"]).inc()
    with contextlib.suppress(BusUnavailable):
        await request.app[BUS].publish(channel(room), {"type": "message", "message": message})
    return web.json_response(message)


@requires("chat:moderate")
@described(body=BanIn)
async def ban(request: web.Request) -> web.Response:
    room = _room(request)
    body = await read_json(request, BanIn)
    targets: list[tuple[str, str]] = []
    if body.message_id is not None:
        found = await chat.message_device(request.app[POOL], room, body.message_id)
        if found is None:
            raise NotFound("No message with that id", code="message-not-found")
        targets += [("device", found[0]), ("nickname", found[1])]
    if body.device_id:
        targets.append(("device", body.device_id))
    if body.nickname:
        targets.append(("nickname", body.nickname))
    if not targets:
        raise BadRequest("name a message_id, device_id or nickname to ban", code="invalid-body")
    until = now(request.app) + timedelta(minutes=body.minutes)
    for kind, value in targets:
        await chat.ban(request.app[POOL], room, kind, value, until, body.reason)
    await audit(request, "chat.ban", object_type="chat_room", object_id=room,
                detail={"kinds": [k for k, _ in targets], "minutes": body.minutes, "reason": body.reason})
    return web.json_response({"room": room, "until": until.isoformat(),
                              "banned": [{"kind": k, "value": v if k == "nickname" else v[:6] + "…"}
                                         for k, v in targets]}, status=201)


def _message_id(request: web.Request) -> int:
    try:
        return int(request.match_info["message_id"])
    except ValueError:
        raise NotFound("No such message", code="message-not-found") from None
