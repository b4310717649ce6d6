"""Fan-out of one chat room inside one process.

Every process holds one bus subscription per active room (not one per client). Bus messages are only a
wake-up carrying the new cursor: the hub delivers contiguous cursors straight from the bus payload and
reads the database for any gap, so clients get every message once, in cursor order, batched per tick.

A show's room has thousands of clients, so nothing is done per client that can be done once per frame: a
frame is encoded once, framed once as WebSocket bytes, and written to each socket that can take it as it is;
the tick that gathers messages into one frame grows with what the last fan-out cost (more messages per
frame under load, not more frames), and long-poll readers are answered from the hub's recent pages
(chat_recent) and woken at most every POLL_COST per waiting reader. Each client has a bounded send buffer;
a client that cannot keep up is dropped, never waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import asyncpg

from onair.core.bus import RESYNC, Bus
from streaming.interaction import chat
from streaming.interaction.chat_recent import Recent

log = logging.getLogger("streaming.interaction.chat")


TICK_GROWTH = 3.0    # the gathering tick is at least this many times the last fan-out's cost ...
MAX_TICK = 0.25      # ... up to this: a message waits at most this long for its frame
POLL_COST = 0.0005   # long-poll readers are woken at most every POLL_COST s per waiting reader ...
MAX_POLL_PAUSE = 0.5  # ... up to this (a woken reader costs a request; a thousand TVs cost a thousand)


def channel(room: str) -> str:
    return f"chat:{room}"


def ws_text_frame(payload: bytes) -> bytes:
    """A server-to-client WebSocket text frame (RFC 6455 5.2: FIN, opcode 1, unmasked, no extension): the same
    bytes for every client of a room that did not negotiate compression (chat_routes never does)."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


@dataclass(eq=False)
class Frame:
    text: str                         # JSON, encoded once for every client
    lo: int | None = None             # cursor range of the messages in it (None: not a message frame)
    hi: int | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)

    @cached_property
    def wire(self) -> bytes:
        return ws_text_frame(self.text.encode())


class Client:
    """One connected socket. Frames go straight onto the socket (`write`: the frame's bytes, False when the
    socket's buffer is full or it is closing) while it keeps up; otherwise they queue, in order, for `pump`,
    which awaits `send`. A full queue drops the client."""

    def __init__(self, send: Callable[[str], Awaitable[None]], on_drop: Callable[[], None], buffer: int,
                 write: Callable[[bytes], bool] | None = None) -> None:
        self.send = send
        self.write = write
        self.on_drop = on_drop
        self.queue: asyncio.Queue[Frame] = asyncio.Queue(buffer)
        self.last = 0
        self.dropped = False
        self.live = False       # its history went out: later frames may go straight to the socket
        self._sending = False   # pump is in the middle of a send: anything new queues behind it

    def offer(self, frame: Frame, wire: bytes | None = None) -> bool:
        # straight out only what is all new to this client: a hub behind the cursor the client resumed from
        # (another process got there first) sends frames it has, which the pump trims
        if (self.live and self.write is not None and not self._sending and self.queue.empty()
                and (frame.lo is None or frame.lo > self.last)
                and self.write(frame.wire if wire is None else wire)):
            if frame.hi is not None:
                self.last = frame.hi
            return True
        try:
            self.queue.put_nowait(frame)
            return True
        except asyncio.QueueFull:
            self.dropped = True
            self.on_drop()
            return False

    async def pump(self) -> None:
        """Send queued frames, skipping what the client already got with its history."""
        self.live = True
        while True:
            frame = await self.queue.get()
            self._sending = True
            try:
                await self._send(frame)
            finally:
                self._sending = False

    async def _send(self, frame: Frame) -> None:
        if frame.hi is not None:
            if frame.hi <= self.last:
                return
            if frame.lo is not None and frame.lo <= self.last:
                fresh = [m for m in frame.messages if int(m["cursor"]) > self.last]
                await self.send(messages_frame(fresh, frame.hi))
                self.last = frame.hi
                return
            self.last = frame.hi
        await self.send(frame.text)


def messages_frame(messages: list[dict[str, Any]], cursor: int) -> str:
    return json.dumps({"type": "messages", "messages": messages, "cursor": str(cursor)}, separators=(",", ":"))


class RoomHub:
    def __init__(self, room: str, bus: Bus, db: asyncpg.Pool, *, tick: float = 0.02, buffer: int = 256,
                 idle_check: float = 2.0) -> None:
        self.room = room
        self._bus = bus
        self._db = db
        self.tick = tick
        self.buffer = buffer
        self.idle_check = idle_check
        self.clients: set[Client] = set()
        self.last_seq = 0
        self.recent = Recent(0)
        self.poll_top = 0       # the cursor long-poll readers were last woken for: they are answered up to it
        self.pollers = 0
        self._gather = tick
        self._woken_at = 0.0
        self._wake: asyncio.TimerHandle | None = None
        self._gathering = False
        self._handled = asyncio.Event()
        self._changed = asyncio.Event()
        self._stack = contextlib.AsyncExitStack()
        self._task: asyncio.Task[None] | None = None
        self.frames = 0
        self.drops = 0

    async def start(self) -> None:
        self._sub = await self._stack.enter_async_context(self._bus.subscribe(channel(self.room), maxsize=10_000))
        self.last_seq = await chat.current_seq(self._db, self.room)
        self.recent = Recent(self.last_seq)
        self.poll_top = self.last_seq
        # A fresh context: the hub outlives the request that started it, whose request id must not label it.
        self._task = asyncio.create_task(self._run(), name=f"chat-hub-{self.room}", context=contextvars.Context())

    async def stop(self) -> None:
        if self._wake is not None:
            self._wake.cancel()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._stack.aclose()

    def join(self, send: Callable[[str], Awaitable[None]], on_drop: Callable[[], None],
             write: Callable[[bytes], bool] | None = None) -> Client:
        client = Client(send, on_drop, self.buffer, write)
        self.clients.add(client)
        return client

    def leave(self, client: Client) -> None:
        self.clients.discard(client)

    async def wait_past(self, cursor: int, within: float) -> bool:
        """Long-poll: wait until readers are woken for a cursor after `cursor`, or the timeout. A reader that comes
        back between wakes waits for the next one rather than taking what arrived since: one answer per wake
        per reader, however often it asks."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        self.pollers += 1
        try:
            while self.poll_top <= cursor:
                left = deadline - loop.time()
                if left <= 0:
                    return False
                event = self._changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), left)
        finally:
            self.pollers -= 1
        return True

    def _broadcast(self, frame: Frame) -> None:
        self.frames += 1
        wire = frame.wire if self.clients else b""
        for client in tuple(self.clients):
            if not client.offer(frame, wire):
                self.clients.discard(client)
                self.drops += 1

    def _wake_pollers(self) -> None:
        """Wake the long-poll readers now, or once POLL_COST per waiting reader has passed since the last wake:
        what arrives meanwhile is in the same answer."""
        if self._wake is not None:
            return
        loop = asyncio.get_running_loop()
        pause = min(MAX_POLL_PAUSE, self.pollers * POLL_COST) - (loop.time() - self._woken_at)
        if pause <= 0:
            self._wake_now()
        else:
            self._wake = loop.call_later(pause, self._wake_now)

    def _wake_now(self) -> None:
        self._wake = None
        self.poll_top = self.last_seq
        self._woken_at = asyncio.get_running_loop().time()
        self._changed.set()
        self._changed = asyncio.Event()

    async def _run(self) -> None:
        while True:
            try:
                events = [await asyncio.wait_for(self._sub.get(), self.idle_check)]
            except TimeoutError:
                events = []  # quiet: check the database in case a wake-up was lost (e.g. Redis restarted)
            else:
                self._gathering = True
                await asyncio.sleep(self._gather)  # gather a tick's worth into one frame
                while not self._sub.queue.empty():
                    events.append(self._sub.queue.get_nowait())
            try:
                await self._handle(events)
            except Exception:
                log.exception("chat hub %s failed to deliver; retrying", self.room)
                await asyncio.sleep(0.5)
            finally:
                self._gathering = False
                self._handled.set()
                self._handled = asyncio.Event()

    async def settled(self, within: float = 1.0) -> None:
        """Wait (at most `within`) until what the bus had brought when called is delivered: a page read from
        `recent` after this holds every message announced before, as a database read would."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        # the delivery under way, then the one that takes what is queued (each takes all that is queued)
        for _ in range(int(self._gathering) + int(not self._sub.queue.empty())):
            handled = self._handled
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(handled.wait(), max(0.0, deadline - loop.time()))

    async def _handle(self, events: list[dict[str, Any]]) -> None:
        fresh: dict[int, dict[str, Any]] = {}
        control: list[Frame] = []
        top = self.last_seq
        for e in events:
            kind = e.get("type")
            if kind == "message":
                m = e["message"]
                fresh[int(m["cursor"])] = m
                top = max(top, int(m["cursor"]))
            elif kind == "seq":
                top = max(top, int(e["cursor"]))
            elif kind in ("deleted", "room", "pending"):
                control.append(Frame(json.dumps(e, separators=(",", ":"))))
        try:
            await self._deliver(events, fresh, top)
        finally:
            for frame in control:  # after the messages of the tick: a delete never precedes its message
                self._broadcast(frame)

    async def _deliver(self, events: list[dict[str, Any]], fresh: dict[int, dict[str, Any]], top: int) -> None:
        if not events or any(e is RESYNC for e in events):  # quiet, or back after a bus outage: ask the database
            top = max(top, await chat.current_seq(self._db, self.room))
        if top <= self.last_seq:
            return
        wanted = range(self.last_seq + 1, top + 1)
        if all(s in fresh for s in wanted):
            batch = [fresh[s] for s in wanted]
            self.recent.add_messages(batch, top)
        else:  # a gap (lost or reordered wake-up): the database has the truth
            rows = await chat.after(self._db, self.room, self.last_seq, 1000)
            if not rows:
                return
            top = max(r["seq"] for r in rows)
            batch = [chat.message_json(r) for r in rows if r["status"] == "visible"]
            self.recent.add_rows(rows, top)
        lo = self.last_seq + 1
        self.last_seq = top
        if batch:
            started = time.perf_counter()
            self._broadcast(Frame(messages_frame(batch, top), lo, top, batch))
            # under load a frame carries more messages rather than the loop sending more frames
            self._gather = min(MAX_TICK, max(self.tick, TICK_GROWTH * (time.perf_counter() - started)))
        self._wake_pollers()


class Hubs:
    """The hubs of this process, created on first use and kept while the process lives."""

    def __init__(self, bus: Callable[[], Bus], db: Callable[[], asyncpg.Pool]) -> None:
        self._bus = bus
        self._db = db
        self._hubs: dict[str, RoomHub] = {}
        self._lock = asyncio.Lock()

    def running(self, room: str) -> RoomHub | None:
        """The room's hub if this process has one (long-polls answer from it without creating one)."""
        return self._hubs.get(room)

    async def get(self, room: str) -> RoomHub:
        hub = self._hubs.get(room)
        if hub is not None:
            return hub
        async with self._lock:
            hub = self._hubs.get(room)
            if hub is None:
                await chat.ensure_room(self._db(), room)
                hub = RoomHub(room, self._bus(), self._db())
                await hub.start()  # raises BusUnavailable when Redis is down: nothing is cached then
                self._hubs[room] = hub
        return hub

    async def close(self) -> None:
        for hub in self._hubs.values():
            await hub.stop()
        self._hubs.clear()
