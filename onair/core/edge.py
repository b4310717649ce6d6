"""The one middleware every request passes: request id, access log line, HTTP metrics and problem+json.

These were three middlewares (request_log, metrics, problems), each with its own frame, try/finally, clock read and
look-up of the route; on this 2-core machine that chain cost more than /healthz's handler. Folded into one, each
thing is done once per request. What a client and an operator see is unchanged: X-Request-Id on every answer
(streamed ones get it when prepared: request_log's hook), the access log line (request_log.write), the
onair_http_* series (http_meter) and problem+json bodies for every error (errors.problem_for).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from onair.core import errors, logs, request_log
from onair.core.metrics import METHODS, METRICS

ORIGIN_PREFIXES = ("/media/", "/live/")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_name(request: web.Request) -> str:
    """The route template that served `request` (never the raw path: one series per asset would explode)."""
    resource = request.match_info.route.resource
    return "unmatched" if resource is None else resource.canonical


@web.middleware
async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request_log.request_id_for(request)
    fields = logs.begin_request(request_id)
    request[errors.REQUEST_ID] = request_id
    meter = METRICS.http
    meter.begin()
    start = time.perf_counter()
    status = 500  # what a cancelled request (the client left) counts as
    try:
        try:
            errors.refuse_nul_in_url(request)
            response = await handler(request)
        except Exception as exc:
            problem = errors.problem_for(request, exc, request_id)
            if problem is None:
                raise
            response = problem
        status = response.status
        return response
    except web.HTTPException as exc:  # a redirect: aiohttp sends it as it is
        status = exc.status
        raise
    finally:
        seconds = time.perf_counter() - start
        route = route_name(request)
        method = request.method
        meter.end(method if method in METHODS else "other", route, status, seconds,  # any token is a method
                  route.startswith(ORIGIN_PREFIXES))
        request_log.write(request, request_id, route, status, seconds, fields)
