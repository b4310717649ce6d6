"""Graceful stop for long-lived connections, wired by create_app.

On shutdown (SIGTERM/Ctrl-C) aiohttp stops accepting, runs `on_shutdown`, then waits for in-flight
requests. WebSockets get a 1001 "going away" close frame so clients reconnect to another process or
pod; long-polls and SSE streams watch `STOPPING` and end at once instead of holding the shutdown
for their full wait.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import weakref
from collections.abc import Awaitable
from typing import TypeVar

from aiohttp import WSCloseCode, web

log = logging.getLogger("onair.core.lifecycle")

PROCESS_HEADER = "X-Onair-Process"
STOPPING = web.AppKey("stopping", asyncio.Event)

T = TypeVar("T")


class Stopping(Exception):
    """The process is shutting down; a long-lived handler should answer now."""


async def unless_stopping(app: web.Application, awaitable: Awaitable[T]) -> T:
    """Await `awaitable`, or raise Stopping as soon as the app begins to shut down."""
    stopping = app[STOPPING]
    if stopping.is_set():
        if inspect.iscoroutine(awaitable):
            awaitable.close()  # never started: closing it spares a "coroutine was never awaited" warning
        raise Stopping
    work = asyncio.ensure_future(awaitable)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait((work, stop), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        work.cancel()  # the client went away: the wait must not outlive its request
        raise
    finally:
        stop.cancel()
    if work.done():
        return work.result()
    work.cancel()
    raise Stopping


def setup(app: web.Application) -> None:
    pid = str(os.getpid())
    sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
    app[STOPPING] = asyncio.Event()

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        # Which web process answered: lets operators and the multi-process test see the load spread.
        response.headers[PROCESS_HEADER] = pid
        if isinstance(response, web.WebSocketResponse):
            sockets.add(response)

    async def going_away(app: web.Application) -> None:
        app[STOPPING].set()
        open_ = [ws for ws in list(sockets) if not ws.closed]
        if open_:
            log.info("closing %d WebSocket(s) with 1001", len(open_))
        await asyncio.gather(*(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
                               for ws in open_), return_exceptions=True)

    app.on_response_prepare.append(on_prepare)
    app.on_shutdown.append(going_away)
