"""Fan-out of one chat room inside one process.

Every process holds one bus subscription per active room (not one per client). Bus messages are only a
wake-up carrying the new cursor: the hub delivers contiguous cursors straight from the bus payload and
reads the database for any gap, so clients get every message once, in cursor order, batched per tick.
Each client has a bounded send buffer; a client that cannot keep up is dropped, never waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from onair.core.bus import RESYNC, Bus
from streaming.interaction import chat

log = logging.getLogger("streaming.interaction.chat")


def channel(room: str) -> str:
    return f"chat:{room}"


@dataclass(eq=False)
class Frame:
    text: str                         # JSON, encoded once for every client
    lo: int | None = None             # cursor range of the messages in it (None: not a message frame)
    hi: int | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)


class Client:
    def __init__(self, send: Callable[[str], Awaitable[None]], on_drop: Callable[[], None], buffer: int) -> None:
        self.send = send
        self.on_drop = on_drop
        self.queue: asyncio.Queue[Frame] = asyncio.Queue(buffer)
        self.last = 0
        self.dropped = False

    def offer(self, frame: Frame) -> bool:
        try:
            self.queue.put_nowait(frame)
            return True
        except asyncio.QueueFull:
            self.dropped = True
            self.on_drop()
            return False

    async def pump(self) -> None:
        """Send queued frames, skipping what the client already got with its history."""
        while True:
            frame = await self.queue.get()
            if frame.hi is not None:
                if frame.hi <= self.last:
                    continue
                if frame.lo is not None and frame.lo <= self.last:
                    fresh = [m for m in frame.messages if int(m["cursor"]) > self.last]
                    await self.send(messages_frame(fresh, frame.hi))
                    self.last = frame.hi
                    continue
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
        self._changed = asyncio.Event()
        self._stack = contextlib.AsyncExitStack()
        self._task: asyncio.Task[None] | None = None
        self.frames = 0
        self.drops = 0

    async def start(self) -> None:
        self._sub = await self._stack.enter_async_context(self._bus.subscribe(channel(self.room), maxsize=10_000))
        self.last_seq = await chat.current_seq(self._db, self.room)
        # A fresh context: the hub outlives the request that started it, whose request id must not label it.
        self._task = asyncio.create_task(self._run(), name=f"chat-hub-{self.room}", context=contextvars.Context())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._stack.aclose()

    def join(self, send: Callable[[str], Awaitable[None]], on_drop: Callable[[], None]) -> Client:
        client = Client(send, on_drop, self.buffer)
        self.clients.add(client)
        return client

    def leave(self, client: Client) -> None:
        self.clients.discard(client)

    async def wait_past(self, cursor: int, within: float) -> bool:
        """Long-poll: wait until a message after `cursor` is visible, or the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self.last_seq <= cursor:
            left = deadline - loop.time()
            if left <= 0:
                return False
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), left)
        return True

    def _broadcast(self, frame: Frame) -> None:
        self.frames += 1
        for client in tuple(self.clients):
            if not client.offer(frame):
                self.clients.discard(client)
                self.drops += 1

    def _wake_pollers(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _run(self) -> None:
        while True:
            try:
                events = [await asyncio.wait_for(self._sub.get(), self.idle_check)]
            except TimeoutError:
                events = []  # quiet: check the database in case a wake-up was lost (e.g. Redis restarted)
            else:
                await asyncio.sleep(self.tick)  # gather a tick's worth into one frame
                while not self._sub.queue.empty():
                    events.append(self._sub.queue.get_nowait())
            try:
                await self._handle(events)
            except Exception:
                log.exception("chat hub %s failed to deliver; retrying", self.room)
                await asyncio.sleep(0.5)

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
        else:  # a gap (lost or reordered wake-up): the database has the truth
            rows = await chat.after(self._db, self.room, self.last_seq, 1000)
            if not rows:
                return
            top = max(r["seq"] for r in rows)
            batch = [chat.message_json(r) for r in rows if r["status"] == "visible"]
        lo = self.last_seq + 1
        self.last_seq = top
        if batch:
            self._broadcast(Frame(messages_frame(batch, top), lo, top, batch))
        self._wake_pollers()


class Hubs:
    """The hubs of this process, created on first use and kept while the process lives."""

    def __init__(self, bus: Callable[[], Bus], db: Callable[[], asyncpg.Pool]) -> None:
        self._bus = bus
        self._db = db
        self._hubs: dict[str, RoomHub] = {}
        self._lock = asyncio.Lock()

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
