"""HTTP for chat: POST, long-poll and WebSocket for viewers; moderation for the studio (admin)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta
from typing import Any

import asyncpg
from aiohttp import WSMsgType, web
from pydantic import BaseModel, Field, ValidationError, field_validator

from onair.core.auth import audit, has_permission, label, requires
from onair.core.bus import BUS, BusUnavailable
from onair.core.clock import now
from onair.core.db.pool import POOL
from onair.core.errors import (
    AppError,
    BadRequest,
    Conflict,
    NotFound,
    Unavailable,
    parse_query,
    pydantic_detail,
    read_json,
)
from onair.core.lifecycle import Stopping, unless_stopping
from onair.core.metrics import METRICS, ROOMS
from onair.core.openapi import described
from onair.core.settings import SETTINGS
from streaming.interaction import chat, chat_limits, chat_retries, devices
from streaming.interaction.chat_hub import Hubs, channel

LONG_POLL_MAX = 25.0
IDEMPOTENCY_KEY_MAX = 100


class ChatState:
    def __init__(self, app: web.Application) -> None:
        s = app[SETTINGS]
        self.rules = chat.Rules(max_bytes=s.chat_max_bytes, rate_messages=s.chat_rate_messages,
                                rate_seconds=s.chat_rate_seconds, cooloff_seconds=s.chat_cooloff_seconds,
                                history=s.chat_history)
        self.guard = chat.Guard(self.rules, max_entries=s.chat_guard_entries)
        self.hubs = Hubs(lambda: app[BUS], lambda: app[POOL])
        self.attempts = chat_retries.Attempts()


CHAT = web.AppKey("chat", ChatState)


class MessageIn(BaseModel):
    device_id: str = Field(max_length=200)
    nickname: str = Field(max_length=200)
    text: str = Field(max_length=64 * 1024)
    # the client's own name for this message (or the Idempotency-Key header): a retry under it is not a second one
    client_id: str | None = Field(default=None, min_length=1, max_length=IDEMPOTENCY_KEY_MAX)


class AfterQuery(BaseModel):
    after: int | None = Field(default=None, ge=0)
    wait: float = Field(default=LONG_POLL_MAX, ge=0, le=LONG_POLL_MAX)
    limit: int = Field(default=100, ge=1, le=500)

    @field_validator("after", mode="before")
    @classmethod
    def _empty_is_start(cls, value: object) -> object:
        return None if value in ("", "null", "undefined") else value  # TV apps send `after=` before a cursor


def _room(request: web.Request) -> str:
    return chat.check_room(request.match_info["room"])


def _db_down(exc: Exception) -> Unavailable:
    return Unavailable("Chat storage is temporarily unavailable; retry shortly", code="chat-unavailable",
                       headers={"Retry-After": "2"})


async def send_message(app: web.Application, request: web.Request, room: str,
                       body: MessageIn) -> tuple[dict[str, Any], bool]:
    """The one path every message takes, whether it came by POST or over a WebSocket: (the message, whether it
    was stored now). A retry under an idempotency key the device already used gets the original back, before
    any rule could refuse it as a duplicate or count it against the device's rate."""
    device_id = devices.require(request, body.device_id)
    key = body.client_id
    if key is None:
        return await _store(app, request, room, device_id, body)
    try:
        async with app[CHAT].attempts.first(app[POOL], room, device_id, key) as original:
            if original is None:
                return await _store(app, request, room, device_id, body)
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
        raise _db_down(exc) from exc
    await _announce_again(app, room, original)
    return chat.message_json(original), False


async def _store(app: web.Application, request: web.Request, room: str, device_id: str,
                 body: MessageIn) -> tuple[dict[str, Any], bool]:
    state = app[CHAT]
    nickname = chat.clean_nickname(body.nickname)
    text = chat.clean_text(body.text, state.rules)
    await app[BUS].check()  # refuse before storing when live delivery is down: the client retries later
    # shared counters first: the local guard remembers what it lets through, so a 503 from Redis after it
    # would turn the client's retry into a "duplicate"
    await chat_limits.check(request, room, device_id, state.rules)
    state.guard.check(room, device_id, text)
    try:
        row, stored = await chat.post(app[POOL], room, device_id, nickname, text, now(app), body.client_id)
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
        raise _db_down(exc) from exc
    message = chat.message_json(row)
    if not stored:  # another process stored it under the same key first
        await _announce_again(app, room, row)
        return message, False
    METRICS.chat_messages.labels(ROOMS(room), row["status"]).inc()
    with contextlib.suppress(BusUnavailable):  # stored: readers catch up from the database
        if row["status"] == "visible":
            await app[BUS].publish(channel(room), {"type": "message", "message": message})
        else:  # moderators' pages reload their approval queue; the text itself is not broadcast
            await app[BUS].publish(channel(room), {"type": "pending", "id": message["id"]})
    return message, True


async def _announce_again(app: web.Application, room: str, row: dict[str, Any]) -> None:
    """A retried message's original may have been stored without being announced (its request failed after
    the commit): a cursor wake-up lets every hub read it from the database; a hub that has it ignores it."""
    if row["seq"] is not None:
        with contextlib.suppress(BusUnavailable):
            await app[BUS].publish(channel(room), {"type": "seq", "cursor": str(row["seq"])})


@described(body=MessageIn)
async def post_message(request: web.Request) -> web.Response:
    room = _room(request)
    body = await read_json(request, MessageIn, max_bytes=request.app[CHAT].rules.max_bytes * 6 + 1024)
    if key := request.headers.get("Idempotency-Key"):
        if len(key) > IDEMPOTENCY_KEY_MAX:
            raise BadRequest(f"Idempotency-Key is at most {IDEMPOTENCY_KEY_MAX} characters", code="invalid-body")
        body.client_id = key
    message, stored = await send_message(request.app, request, room, body)
    # a replay answers exactly as the original did (201, same message), marked so a client can tell
    headers = {"Cache-Control": "no-store"} | ({} if stored else {"Idempotent-Replayed": "true"})
    return web.json_response(message, status=201, headers=headers)


@described(query=AfterQuery)
async def list_messages(request: web.Request) -> web.Response:
    """Long-poll for TVs: returns at once if newer messages exist, else waits up to `wait` seconds."""
    room = _room(request)
    q = parse_query(request, AfterQuery)
    db = request.app[POOL]
    limit = q.limit if q.after is not None else request.app[CHAT].rules.history
    rows = await chat.after(db, room, q.after, limit)
    if not rows and q.after is not None and q.wait > 0:
        await request.app[BUS].check()
        hub = await request.app[CHAT].hubs.get(room)
        # On shutdown answer at once with the same cursor; the TV simply polls again (another process).
        with contextlib.suppress(Stopping), METRICS.connections.labels("long-poll").track_inprogress():
            if await unless_stopping(request.app, hub.wait_past(q.after, q.wait)):
                rows = await chat.after(db, room, q.after, limit)
    if rows:
        cursor = max(r["seq"] for r in rows)
    elif q.after is not None:
        cursor = q.after
    else:
        cursor = await chat.current_seq(db, room)
    messages = [chat.message_json(r) for r in rows if r["status"] == "visible"]
    body: dict[str, Any] = {"messages": messages, "cursor": str(cursor)}
    if q.after is not None and (gone := chat.tombstones(rows)):
        body["deleted"] = gone  # deletions since the reader's cursor (TVs have no WebSocket to hear them)
    return web.json_response(body,
                             headers={"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"})


@label("public|chat:moderate")  # a moderator's connection moderates
async def websocket(request: web.Request) -> web.StreamResponse:
    room = _room(request)
    app = request.app
    try:
        raw = request.query.get("after", "")
        after = int(raw) if raw not in ("", "null", "undefined") else None
    except ValueError:
        raise BadRequest("after must be a cursor from an earlier response", code="invalid-cursor") from None
    await app[BUS].check()
    hub = await app[CHAT].hubs.get(room)  # before the upgrade: a 503 is still possible here
    # No permessage-deflate (browsers offer it): it would deflate every frame once per client, with per-socket
    # context, the one per-client cost a fan-out to thousands cannot afford; chat frames are small anyway.
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=app[CHAT].rules.max_bytes * 6 + 1024, compress=False)
    await ws.prepare(request)
    moderator = await has_permission(request, "chat:moderate")

    def drop() -> None:  # slow consumer: closed, not waited for
        asyncio.get_running_loop().create_task(ws.close(code=4008, message=b"slow consumer"))

    client = hub.join(ws.send_str, drop)  # joined before reading history, so nothing falls between
    pump: asyncio.Task[None] | None = None
    gauges = (METRICS.connections.labels("websocket"), METRICS.chat_connections.labels(ROOMS(room)))
    for gauge in gauges:
        gauge.inc()
    try:
        rows = await chat.after(app[POOL], room, after, app[CHAT].rules.history if after is None else 1000)
        cursor = max((r["seq"] for r in rows), default=after if after is not None else hub.last_seq)
        first: dict[str, Any] = {"type": "messages", "cursor": str(cursor), "messages": [
            chat.message_json(r, admin=moderator) for r in rows if r["status"] == "visible"]}
        if after is not None and (gone := chat.tombstones(rows)):
            first["deleted"] = gone  # deleted while this client was away
        await ws.send_str(json.dumps(first))
        client.last = cursor
        pump = asyncio.create_task(client.pump())
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            await ws.send_str(json.dumps(await _ws_command(request, room, msg.data)))
    finally:
        for gauge in gauges:
            gauge.dec()
        hub.leave(client)
        if pump:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
                await pump
    return ws


async def _ws_command(request: web.Request, room: str, data: str) -> dict[str, Any]:
    try:
        payload = json.loads(data)
        if not isinstance(payload, dict) or payload.get("type", "send") != "send":
            raise BadRequest("frames are {\"type\": \"send\", \"device_id\", \"nickname\", \"text\"}")
        try:
            body = MessageIn.model_validate(payload)
        except ValidationError as err:
            raise BadRequest(pydantic_detail(err), code="invalid-body") from None
        message, _ = await send_message(request.app, request, room, body)
        return {"type": "ack", "ref": payload.get("ref"), "message": message}
    except json.JSONDecodeError:
        return {"type": "error", "status": 400, "code": "invalid-json", "detail": "frame is not JSON"}
    except AppError as err:
        return {"type": "error", "status": err.status, "code": err.code, "detail": err.detail,
                "ref": payload.get("ref") if isinstance(payload, dict) else None}


# --- moderation (admin) ------------------------------------------------------------------------------

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


def chat_context():
    async def ctx(app: web.Application):
        app[CHAT] = ChatState(app)
        yield
        await app[CHAT].hubs.close()

    return ctx


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(chat_context())
    r = app.router
    r.add_post("/api/v1/chat/rooms", create_room, name="chat.rooms.create")
    r.add_post("/api/v1/chat/{room}/messages", post_message, name="chat.post")
    r.add_get("/api/v1/chat/{room}/messages", list_messages, name="chat.messages")
    r.add_get("/api/v1/chat/{room}/ws", websocket, name="chat.ws")
    r.add_get("/api/v1/chat/{room}", get_room, name="chat.room")
    r.add_patch("/api/v1/chat/{room}", patch_room, name="chat.patch")
    r.add_delete("/api/v1/chat/{room}/messages/{message_id}", delete_message, name="chat.delete")
    r.add_post("/api/v1/chat/{room}/messages/{message_id}/approve", approve_message, name="chat.approve")
    r.add_post("/api/v1/chat/{room}/bans", ban, name="chat.ban")
