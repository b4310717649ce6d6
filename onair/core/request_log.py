"""One JSON log line per request (request id, route, status, duration, who asked) and the X-Request-Id header.

A client or proxy may send X-Request-Id (a short token); otherwise one is made. It comes back on the
response (also on streamed ones: WebSocket, SSE), appears on every log line written while serving, and
travels with the jobs the request enqueues (onair.core.jobs) into webhook deliveries.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from aiohttp import web

from onair.core import logs
from onair.core.settings import SETTINGS

HEADER = "X-Request-Id"
SLOW_MS = 1000.0   # access_log=errors still reports requests slower than this
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
log = logging.getLogger("onair.access")


def request_id_for(request: web.Request) -> str:
    given = request.headers.get(HEADER)
    if given is not None and _ACCEPTABLE.fullmatch(given):
        return given
    return os.urandom(16).hex()  # uuid4().hex's form, a third of its cost


def write(request: web.Request, request_id: str, route: str, status: int, seconds: float,
          fields: dict[str, Any]) -> None:
    """The request's access log line, if the access_log setting wants it (onair.core.edge calls this)."""
    if not log.isEnabledFor(logging.INFO):
        return
    # About 30 us a line: at thousands of votes per second per process, `errors` keeps the CPU for votes.
    mode = request.app[SETTINGS].access_log if SETTINGS in request.app else "all"
    duration_ms = round(seconds * 1000, 2)
    if mode == "off" or (mode != "all" and status < 400 and duration_ms < SLOW_MS):
        return
    log.info("%s %s %s %.1f ms", request.method, route, status, duration_ms,
             extra={"request_id": request_id, "method": request.method, "route": route,
                    "path": request.path, "status": status, "duration_ms": duration_ms, **fields})


async def _on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    request_id = logs.REQUEST_ID.get()
    if request_id is not None:
        response.headers.setdefault(HEADER, request_id)


def setup(app: web.Application) -> None:
    app.on_response_prepare.append(_on_prepare)
