"""One JSON log line per request (request id, route, status, duration, who asked) and the X-Request-Id header.

A client or proxy may send X-Request-Id (a short token); otherwise one is made. It comes back on the
response (also on streamed ones: WebSocket, SSE), appears on every log line written while serving, and
travels with the jobs the request enqueues (onair.core.jobs) into webhook deliveries.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from onair.core import logs
from onair.core.health import route_name
from onair.core.settings import SETTINGS

HEADER = "X-Request-Id"
SLOW_MS = 1000.0   # access_log=errors still reports requests slower than this
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
log = logging.getLogger("onair.access")


def request_id_for(request: web.Request) -> str:
    given = request.headers.get(HEADER, "")
    return given if _ACCEPTABLE.fullmatch(given) else os.urandom(16).hex()  # uuid4().hex's form, a third of its cost


@web.middleware
async def request_log_middleware(request: web.Request,
                                 handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                                 ) -> web.StreamResponse:
    request_id = request_id_for(request)
    fields = logs.begin_request(request_id)
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers.setdefault(HEADER, request_id)  # streamed responses got it when prepared (below)
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers.setdefault(HEADER, request_id)
        raise
    finally:
        duration_ms = round((time.perf_counter() - start) * 1000, 2)
        if _wanted(request, status, duration_ms):
            route = route_name(request)
            log.info("%s %s %s %.1f ms", request.method, route, status, duration_ms,
                     extra={"request_id": request_id, "method": request.method, "route": route,
                            "path": request.path, "status": status, "duration_ms": duration_ms, **fields})


def _wanted(request: web.Request, status: int, duration_ms: float) -> bool:
    # About 30 us a line: at thousands of votes per second per process, `errors` keeps the CPU for votes.
    mode = request.app[SETTINGS].access_log if SETTINGS in request.app else "all"
    if mode == "off" or not log.isEnabledFor(logging.INFO):
        return False
    return mode == "all" or status >= 400 or duration_ms >= SLOW_MS


async def _on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    request_id = logs.REQUEST_ID.get()
    if request_id is not None:
        response.headers.setdefault(HEADER, request_id)


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(_on_prepare)
