"""Live results: a per-process ticker publishes aggregated tallies on the bus (never one message per
vote); SSE clients and the cacheable /results endpoint read them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from onair.core.bus import RESYNC, Bus, BusUnavailable
from onair.core.errors import infrastructure_problem
from onair.core.lifecycle import Stopping, unless_stopping
from onair.core.metrics import METRICS

log = logging.getLogger("streaming.interaction.tallies")


def channel(poll_id: str) -> str:
    return f"poll:{poll_id}"


def etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


class TallyTicker:
    """Every `interval` seconds, publish the current tally of each poll that changed since the last tick."""

    def __init__(self, bus: Callable[[], Bus], load: Callable[[str], Awaitable[dict[str, Any] | None]],
                 interval: float) -> None:
        self._bus = bus
        self._load = load
        self.interval = interval
        self._dirty: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    def mark(self, poll_ids: set[str] | frozenset[str]) -> None:
        self._dirty |= set(poll_ids)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tally-ticker")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            dirty, self._dirty = self._dirty, set()
            for poll_id in dirty:
                try:
                    await self.publish_now(poll_id)
                except BusUnavailable:
                    self._dirty.add(poll_id)  # try again next tick, once Redis is back
                except Exception as exc:
                    if infrastructure_problem(exc):  # the database is down: one line, not a trace per tick
                        log.warning("publishing tallies of %s failed: %s", poll_id, exc)
                    else:
                        log.exception("publishing tallies of %s failed", poll_id)
                    self._dirty.add(poll_id)

    async def publish_now(self, poll_id: str) -> None:
        result = await self._load(poll_id)
        if result is not None:
            await self._bus().publish(channel(poll_id), {"type": "results", **result})
            self.published += 1


async def sse(request: web.Request, bus: Bus, poll_id: str, first: dict[str, Any],
              reload: Callable[[], Awaitable[dict[str, Any]]], heartbeat: float = 15.0) -> web.StreamResponse:
    """Server-sent events: the current results at once, then each published tick (latest wins). After a bus
    outage (RESYNC) the results are read again from the database: ticks published meanwhile were lost."""
    await bus.check()  # 503 with Retry-After before any byte is sent, if Redis is down
    async with bus.subscribe(channel(poll_id), maxsize=4) as sub:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no", "Access-Control-Allow-Origin": "*"})
        await resp.prepare(request)
        gauge = METRICS.connections.labels("sse")
        gauge.inc()
        try:
            await resp.write(f"retry: 2000\nevent: results\ndata: {json.dumps(first)}\n\n".encode())
            while True:
                try:
                    message = await unless_stopping(request.app, asyncio.wait_for(sub.get(), heartbeat))
                except TimeoutError:
                    await resp.write(b": keep-alive\n\n")
                    continue
                except Stopping:  # the browser's EventSource reconnects (retry: 2000) to another process
                    break
                resync = message is RESYNC
                while not sub.queue.empty():  # a slow reader only needs the newest tally
                    message = sub.queue.get_nowait()
                    resync = resync or message is RESYNC
                if resync:  # what was published during the outage is gone: the database has the truth
                    message = await reload()
                message = {k: v for k, v in message.items() if k != "type"}
                await resp.write(f"event: results\ndata: {json.dumps(message)}\n\n".encode())
        except ConnectionResetError:
            pass
        finally:
            gauge.dec()
        return resp


__all__ = ["BusUnavailable", "TallyTicker", "channel", "etag", "sse"]
