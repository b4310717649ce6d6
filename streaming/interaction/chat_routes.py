"""HTTP for chat viewers: POST, long-poll and WebSocket (moderation for the studio: chat_moderation)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import asyncpg
from aiohttp import WSMsgType, web
from pydantic import BaseModel, Field, ValidationError, field_validator

from onair.core.auth import has_permission, label
from onair.core.bus import BUS, BusUnavailable
from onair.core.clock import now
from onair.core.db.pool import POOL
from onair.core.errors import (
    AppError,
    BadRequest,
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
from streaming.interaction import chat_moderation as moderation
from streaming.interaction.chat_hub import Hubs, RoomHub, channel

LONG_POLL_MAX = 25.0
WS_BACKLOG = 64 * 1024  # bytes a socket may have unsent before its frames queue (then: dropped when full)
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
    if q.after is not None and (hub := request.app[CHAT].hubs.running(room)) is not None:
        if (page := await _from_hub(request, hub, q)) is not None:
            return page
    db = request.app[POOL]
    limit = q.limit if q.after is not None else request.app[CHAT].rules.history
    # A first read (no cursor) answers the cursor as it was BEFORE the history was read: a message committed
    # in between is then the reader's next one, where a cursor read after the history would skip it for good.
    start = await chat.current_seq(db, room) if q.after is None else 0
    rows = await chat.after(db, room, q.after, limit)
    if not rows and q.after is not None and q.wait > 0:
        await request.app[BUS].check()
        hub = await request.app[CHAT].hubs.get(room)
        if await _woken(request, hub, q.after, q.wait):
            rows = await chat.after(db, room, q.after, limit)
    if rows:
        cursor = max([start] + [r["seq"] for r in rows])
    elif q.after is not None:
        cursor = q.after
    else:
        cursor = start
    messages = [chat.message_json(r) for r in rows if r["status"] == "visible"]
    body: dict[str, Any] = {"messages": messages, "cursor": str(cursor)}
    if q.after is not None and (gone := chat.tombstones(rows)):
        body["deleted"] = gone  # deletions since the reader's cursor (TVs have no WebSocket to hear them)
    return web.json_response(body,
                             headers={"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"})


async def _woken(request: web.Request, hub: RoomHub, after: int, wait: float) -> bool:
    """Wait for the hub to wake readers past `after`; False on timeout, and at once on shutdown (the same cursor
    goes back and the TV simply polls again, another process answering)."""
    with contextlib.suppress(Stopping), METRICS.connections.labels("long-poll").track_inprogress():
        return await unless_stopping(request.app, hub.wait_past(after, wait))
    return False


async def _from_hub(request: web.Request, hub: RoomHub, q: AfterQuery) -> web.Response | None:
    """The answer from the hub's recent pages (one encoding shared by every reader at the same cursor), waiting
    there when the reader is up to date; None when the database must answer (an older cursor, or a newer one
    than this process has seen)."""
    await hub.settled()  # what was announced before this request is in the page (read your own post)
    after = q.after or 0
    body = hub.recent.page(after, q.limit, hub.poll_top)
    if body is None and hub.poll_top <= after <= hub.last_seq and q.wait > 0:  # up to date: the next wake
        await request.app[BUS].check()
        if await _woken(request, hub, after, q.wait):
            body = hub.recent.page(after, q.limit, hub.poll_top)
        if body is None:  # nothing new within `wait` (or shutting down): the same cursor, poll again
            body = json.dumps({"messages": [], "cursor": str(after)}).encode()
    if body is None:
        return None
    return web.Response(body=body, content_type="application/json",
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

    transport = request.transport

    def write(frame: bytes) -> bool:
        """A room frame's bytes straight onto the socket while it keeps up (the hub framed them once for all)."""
        if ws.closed or transport is None or transport.is_closing() or transport.get_write_buffer_size() > WS_BACKLOG:
            return False
        transport.write(frame)
        return True

    client = hub.join(ws.send_str, drop, write)  # joined before reading history, so nothing falls between
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


def chat_context():
    async def ctx(app: web.Application):
        app[CHAT] = ChatState(app)
        yield
        await app[CHAT].hubs.close()

    return ctx


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(chat_context())
    r = app.router
    r.add_post("/api/v1/chat/rooms", moderation.create_room, name="chat.rooms.create")
    r.add_post("/api/v1/chat/{room}/messages", post_message, name="chat.post")
    r.add_get("/api/v1/chat/{room}/messages", list_messages, name="chat.messages")
    r.add_get("/api/v1/chat/{room}/ws", websocket, name="chat.ws")
    r.add_get("/api/v1/chat/{room}", moderation.get_room, name="chat.room")
    r.add_patch("/api/v1/chat/{room}", moderation.patch_room, name="chat.patch")
    r.add_delete("/api/v1/chat/{room}/messages/{message_id}", moderation.delete_message, name="chat.delete")
    r.add_post("/api/v1/chat/{room}/messages/{message_id}/approve", moderation.approve_message, name="chat.approve")
    r.add_post("/api/v1/chat/{room}/bans", moderation.ban, name="chat.ban")
