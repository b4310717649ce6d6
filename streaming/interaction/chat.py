"""Chat rooms: the rules a message must pass, and its storage. HTTP and fan-out live elsewhere.

Cursors are a per-room sequence taken under the room row lock when a message becomes visible, so
they commit in order: a reader resuming "after N" sees every later message exactly once.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from onair.core import events
from onair.core.bounded import Bounded
from onair.core.errors import AppError, BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, TooManyRequests
from streaming.interaction.textfold import flood_key, fold, mask_words

ROOM_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RESERVED_ROOMS = frozenset({"rooms"})  # path segments of the chat API itself (POST /api/v1/chat/rooms)
NICK_MAX = 32


class RoomPaused(AppError):
    status, code, title = 423, "room-paused", "Room paused"


@dataclass(frozen=True)
class Rules:
    max_bytes: int = 2048
    rate_messages: int = 3
    rate_seconds: float = 2.0
    cooloff_seconds: float = 10.0
    history: int = 50
    duplicate_seconds: float = 30.0
    flood_devices: int = 3          # the same text from more devices than this within flood_seconds is a flood
    flood_seconds: float = 10.0


def check_room(room: str) -> str:
    if not ROOM_RE.match(room):
        raise BadRequest("room names are 1-64 letters, digits, '.', '_' or '-'", code="invalid-room")
    return room


def clean_nickname(nickname: str) -> str:
    nick = "".join(ch for ch in unicodedata.normalize("NFC", nickname) if unicodedata.category(ch)[0] != "C")
    nick = " ".join(nick.split())
    if not 1 <= len(nick) <= NICK_MAX:
        raise BadRequest(f"nickname needs 1..{NICK_MAX} visible characters", code="invalid-nickname")
    return nick


def clean_text(text: str, rules: Rules) -> str:
    if len(text.encode()) > rules.max_bytes:
        raise PayloadTooLarge(f"messages are at most {rules.max_bytes} bytes", code="message-too-large")
    # keep newlines and tabs, drop other control characters (terminal escapes, bidi tricks are category Cf)
    out = "".join(ch for ch in unicodedata.normalize("NFC", text)
                  if ch in "\n\t" or unicodedata.category(ch)[0] != "C").strip()
    if not out:
        raise BadRequest("message text is empty", code="empty-message")
    return out


def _normal(text: str) -> str:
    return flood_key(text)  # "BUY NOW." and "buy now!!" (or full-width) are one message to these checks


@dataclass
class _Device:
    """What the guard remembers of one device in one room."""
    sent: deque[float] = field(default_factory=deque)
    cooling_until: float = 0.0
    recent: dict[str, float] = field(default_factory=dict)  # normalised text -> when this device sent it


class Guard:
    """Per-process rate limit, cooling-off, duplicate and flood suppression (cheap, before the database).

    Memory is bounded: at most `max_entries` devices and `max_entries` texts, each forgotten once no rule
    can need it any more (the longest window), least recently active first beyond the limit. Forgetting
    early can only let a device send sooner than the rules say, never block it wrongly."""

    def __init__(self, rules: Rules, clock=time.monotonic, max_entries: int = 50_000) -> None:
        self.rules = rules
        self._clock = clock
        window = max(rules.rate_seconds, rules.cooloff_seconds, rules.duplicate_seconds, rules.flood_seconds)
        self.devices: Bounded[tuple[str, str], _Device] = Bounded(max_entries, window, clock)
        self.texts: Bounded[tuple[str, str], dict[str, float]] = Bounded(max_entries, window, clock)

    def check(self, room: str, device: str, text: str) -> None:
        now = self._clock()
        state = self.devices.get_or_set((room, device), _Device)
        until = state.cooling_until
        if until > now:
            raise TooManyRequests(f"Slow down: you can write again in {until - now:.0f} s", code="cooling-off",
                                  headers={"Retry-After": str(max(1, round(until - now)))})
        sent = state.sent
        while sent and sent[0] <= now - self.rules.rate_seconds:
            sent.popleft()
        if len(sent) >= self.rules.rate_messages:
            state.cooling_until = now + self.rules.cooloff_seconds
            raise TooManyRequests(
                f"More than {self.rules.rate_messages} messages in {self.rules.rate_seconds:g} s; "
                f"wait {self.rules.cooloff_seconds:g} s", code="rate-limited",
                headers={"Retry-After": str(max(1, round(self.rules.cooloff_seconds)))})
        norm = _normal(text)
        mine = state.recent
        for old, at in list(mine.items()):  # at most rate_messages per window reach here: a short loop
            if at <= now - self.rules.duplicate_seconds:
                del mine[old]
        if norm in mine:
            raise Conflict("You just sent that message", code="duplicate-message")
        senders = self.texts.get_or_set((room, norm), dict)
        for dev, at in list(senders.items()):
            if at <= now - self.rules.flood_seconds:
                del senders[dev]
        if len(senders) >= self.rules.flood_devices and device not in senders:
            raise Conflict("That message is flooding the room", code="flood")
        sent.append(now)
        mine[norm] = now
        senders[device] = now


@dataclass(frozen=True)
class Room:
    room: str
    seq: int
    slow_mode_seconds: int
    paused: bool
    premoderation: bool
    words: tuple[str, ...]
    name: str | None = None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Room:
        return cls(row["room"], row["seq"], row["slow_mode_seconds"], row["paused"], row["premoderation"],
                   tuple(row["words"]), row["name"])

    def to_json(self) -> dict[str, Any]:
        return {"room": self.room, "name": self.name or self.room, "cursor": str(self.seq),
                "slow_mode_seconds": self.slow_mode_seconds,
                "paused": self.paused, "premoderation": self.premoderation, "words": list(self.words)}


def message_json(row: asyncpg.Record | dict[str, Any], *, admin: bool = False) -> dict[str, Any]:
    out = {"id": row["id"], "cursor": None if row["seq"] is None else str(row["seq"]),
           "nickname": row["nickname"], "text": row["text"], "created_at": row["created_at"].isoformat()}
    if row["status"] != "visible":
        out["status"] = row["status"]
    if admin:
        out["device_id"] = row["device_id"]
        out["status"] = row["status"]
    return out


_ROOM = "room, seq, slow_mode_seconds, paused, premoderation, words, name"
_MSG = "id, seq, device_id, nickname, text, status, created_at"


async def ensure_room(db: asyncpg.Pool | asyncpg.Connection, room: str) -> Room:
    await db.execute("INSERT INTO chat_rooms (room) VALUES ($1) ON CONFLICT DO NOTHING", room)
    return Room.from_row(await db.fetchrow(f"SELECT {_ROOM} FROM chat_rooms WHERE room = $1", room))


async def create_room(db: asyncpg.Pool | asyncpg.Connection, room: str, name: str | None = None) -> Room | None:
    """A new room (staff, or a show being created); None when the name is taken."""
    row = await db.fetchrow(f"INSERT INTO chat_rooms (room, name) VALUES ($1, $2) ON CONFLICT DO NOTHING "
                            f"RETURNING {_ROOM}", room, name)
    return Room.from_row(row) if row else None


async def get_room(db: asyncpg.Pool, room: str) -> Room | None:
    row = await db.fetchrow(f"SELECT {_ROOM} FROM chat_rooms WHERE room = $1", room)
    return Room.from_row(row) if row else None


async def update_room(db: asyncpg.Pool, room: str, changes: dict[str, Any]) -> Room:
    await ensure_room(db, room)
    allowed = ("slow_mode_seconds", "paused", "premoderation", "words")
    sets = [(k, v) for k, v in changes.items() if k in allowed and v is not None]
    if sets:
        assignments = ", ".join(f"{k} = ${i}" for i, (k, _) in enumerate(sets, start=2))
        await db.execute(f"UPDATE chat_rooms SET {assignments} WHERE room = $1", room, *(v for _, v in sets))
    return await ensure_room(db, room)


async def sent_before(db: asyncpg.Pool, room: str, device_id: str, key: str) -> dict[str, Any] | None:
    """The message this device already sent under this idempotency key, if any (a retry's original)."""
    row = await db.fetchrow(f"SELECT {_MSG} FROM chat_messages WHERE room = $1 AND device_id = $2 "
                            "AND idempotency_key = $3", room, device_id, key)
    return dict(row) if row else None


async def post(db: asyncpg.Pool, room: str, device_id: str, nickname: str, text: str,
               now: datetime, key: str | None = None) -> tuple[dict[str, Any], bool]:
    """Store a message that passed the Guard; room-level rules (pause, bans, slow mode) are checked here.
    (row, True) when stored now; (the original, False) for a retry that raced its original under the same
    key: it waited on the unique index for the original's commit."""
    try:
        return await _insert(db, room, device_id, nickname, text, now, key), True
    except asyncpg.UniqueViolationError:
        if key is None or (original := await sent_before(db, room, device_id, key)) is None:
            raise
        return original, False


async def _insert(db: asyncpg.Pool, room: str, device_id: str, nickname: str, text: str,
                  now: datetime, key: str | None) -> dict[str, Any]:
    # The room row is locked only by the one statement that takes the cursor and stores the message (its own
    # transaction: one round trip, the lock held until its commit, so cursors still commit in order). The
    # checks before it read without the lock: a show's room takes 50 messages/s, and six round trips under
    # the lock per message made every post wait behind the others' (seconds under load). A pause is judged
    # again by that statement; a ban committed while a message is between its check and its insert lets
    # that one message through (moderators delete it like any other).
    async with db.acquire() as conn:
        # Rooms exist only once staff made them: a viewer's message never creates one (that let anyone fill
        # the table with rooms).
        found = await conn.fetchrow(
            f"""SELECT {_ROOM}, (SELECT until FROM chat_bans WHERE room = $1 AND until > $4
                       AND ((kind = 'device' AND value = $2) OR (kind = 'nickname' AND value = $3))
                       ORDER BY until DESC LIMIT 1) AS banned_until
                FROM chat_rooms WHERE room = $1""", room, device_id, fold(nickname), now)
        if found is None:
            raise NotFound(f"No chat room {room!r}; rooms are created by staff", code="room-not-found")
        r = Room.from_row(found)
        if r.paused:
            raise RoomPaused("The room is paused by the moderators")
        if until := found["banned_until"]:
            raise Forbidden(f"You are banned from this room until {until.isoformat()}", code="banned",
                            until=until.isoformat())
        if r.slow_mode_seconds:
            last = await conn.fetchval(
                "SELECT max(created_at) FROM chat_messages WHERE room = $1 AND device_id = $2", room, device_id)
            if last and (wait := (last + timedelta(seconds=r.slow_mode_seconds) - now).total_seconds()) > 0:
                raise TooManyRequests(f"Slow mode: one message every {r.slow_mode_seconds} s", code="slow-mode",
                                      headers={"Retry-After": str(max(1, round(wait)))})
        text = mask_words(text, r.words)
        if r.premoderation:
            async with conn.transaction():
                row = await conn.fetchrow(
                    f"""INSERT INTO chat_messages (room, device_id, nickname, text, status, created_at,
                                                   idempotency_key)
                        VALUES ($1, $2, $3, $4, 'pending', $5, $6) RETURNING {_MSG}""",
                    room, device_id, nickname, text, now, key)
                # the moderators' queue grew: a newsroom's tools hear of it without polling (webhooks)
                await events.publish(conn, "chat.message.held", {"room": room, "message_id": row["id"],
                                                                 "nickname": nickname, "text": text}, at=now)
        else:
            # `NOT paused` is judged again on the row as locked: a pause committed after the checks above
            # still stops this message (nothing is inserted)
            row = await conn.fetchrow(
                f"""WITH taken AS (UPDATE chat_rooms SET seq = seq + 1 WHERE room = $1 AND NOT paused RETURNING seq)
                    INSERT INTO chat_messages (room, seq, device_id, nickname, text, created_at, idempotency_key)
                    SELECT $1, taken.seq, $2, $3, $4, $5, $6 FROM taken RETURNING {_MSG}""",
                room, device_id, nickname, text, now, key)
            if row is None:
                raise RoomPaused("The room is paused by the moderators")
    return dict(row)


async def approve(db: asyncpg.Pool, room: str, message_id: int) -> dict[str, Any] | None:
    """A pending message becomes visible with a fresh cursor (readers past its posting time still see it)."""
    async with db.acquire() as conn, conn.transaction():
        await conn.fetchrow("SELECT seq FROM chat_rooms WHERE room = $1 FOR UPDATE", room)
        pending = await conn.fetchval(
            "SELECT 1 FROM chat_messages WHERE room = $1 AND id = $2 AND status = 'pending'", room, message_id)
        if not pending:
            return None
        seq = await conn.fetchval("UPDATE chat_rooms SET seq = seq + 1 WHERE room = $1 RETURNING seq", room)
        row = await conn.fetchrow(
            f"UPDATE chat_messages SET seq = $3, status = 'visible' WHERE room = $1 AND id = $2 RETURNING {_MSG}",
            room, message_id, seq)
    return dict(row)


async def delete(db: asyncpg.Pool, room: str, message_id: int) -> int | None:
    """Delete a message; its row stays as a tombstone with a fresh cursor, so a reader resuming "after N"
    (a TV's long-poll) learns of the deletion like of a new message. The new cursor, or None if none."""
    async with db.acquire() as conn, conn.transaction():
        await conn.fetchrow("SELECT seq FROM chat_rooms WHERE room = $1 FOR UPDATE", room)
        found = await conn.fetchval(
            "SELECT 1 FROM chat_messages WHERE room = $1 AND id = $2 AND status <> 'deleted'", room, message_id)
        if not found:
            return None
        seq = await conn.fetchval("UPDATE chat_rooms SET seq = seq + 1 WHERE room = $1 RETURNING seq", room)
        await conn.execute("UPDATE chat_messages SET status = 'deleted', seq = $3 WHERE room = $1 AND id = $2",
                           room, message_id, seq)
    return int(seq)


def tombstones(rows: list[dict[str, Any]]) -> list[int]:
    """Ids of the deleted messages among rows read with `after`: readers remove them from their screens."""
    return [r["id"] for r in rows if r["status"] == "deleted"]


async def ban(db: asyncpg.Pool, room: str, kind: str, value: str, until: datetime, reason: str = "") -> None:
    await ensure_room(db, room)
    await db.execute(
        """INSERT INTO chat_bans (room, kind, value, until, reason) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (room, kind, value) DO UPDATE SET until = EXCLUDED.until, reason = EXCLUDED.reason""",
        room, kind, fold(value) if kind == "nickname" else value, until, reason)


async def last_nickname(db: asyncpg.Pool, room: str, device_id: str) -> str | None:
    """The nickname a device last chatted under in a room (a paired phone takes on its household's)."""
    return await db.fetchval("SELECT nickname FROM chat_messages WHERE room = $1 AND device_id = $2 "
                             "ORDER BY created_at DESC LIMIT 1", room, device_id)


async def message_device(db: asyncpg.Pool, room: str, message_id: int) -> tuple[str, str] | None:
    row = await db.fetchrow("SELECT device_id, nickname FROM chat_messages WHERE room = $1 AND id = $2",
                            room, message_id)
    return (row["device_id"], row["nickname"]) if row else None


async def after(db: asyncpg.Pool, room: str, cursor: int | None, limit: int) -> list[dict[str, Any]]:
    """Visible messages after `cursor` in cursor order; None means the latest `limit` (history)."""
    if cursor is None:
        rows = await db.fetch(
            f"""SELECT * FROM (SELECT {_MSG} FROM chat_messages WHERE room = $1 AND seq IS NOT NULL
                               ORDER BY seq DESC LIMIT $2) t WHERE status = 'visible' ORDER BY seq""", room, limit)
    else:
        rows = await db.fetch(
            f"""SELECT {_MSG} FROM chat_messages WHERE room = $1 AND seq > $2 ORDER BY seq LIMIT $3""",
            room, cursor, limit)
    return [dict(r) for r in rows]


async def pending(db: asyncpg.Pool, room: str, limit: int = 200) -> list[dict[str, Any]]:
    rows = await db.fetch(f"SELECT {_MSG} FROM chat_messages WHERE room = $1 AND status = 'pending' ORDER BY id "
                          "LIMIT $2", room, limit)
    return [dict(r) for r in rows]


async def current_seq(db: asyncpg.Pool, room: str) -> int:
    return int(await db.fetchval("SELECT seq FROM chat_rooms WHERE room = $1", room) or 0)


async def forget_before(conn: asyncpg.Connection, cutoff: datetime, now: datetime) -> int:
    """Privacy retention: messages older than `cutoff` lose their device id (the text stays for the room's
    history); bans that have run out go. Returns how many rows changed."""
    cleared = await conn.fetchval(
        """WITH u AS (UPDATE chat_messages SET device_id = '' WHERE created_at < $1 AND device_id <> ''
                      RETURNING 1) SELECT count(*) FROM u""", cutoff)
    expired = await conn.fetchval(
        "WITH d AS (DELETE FROM chat_bans WHERE until < $1 RETURNING 1) SELECT count(*) FROM d", now)
    return int(cleared) + int(expired)
