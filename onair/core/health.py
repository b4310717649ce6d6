"""/healthz, /readyz and /metrics — what the orchestrator and Prometheus read."""

from __future__ import annotations

import asyncio
import hmac
import shutil
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from onair.core import jobs
from onair.core.bus import BUS
from onair.core.db.pool import POOL
from onair.core.errors import Forbidden
from onair.core.settings import SETTINGS
from onair.core.storage import STORE
from onair.core.web import client_in


class DiskFull(OSError):
    pass


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("onair_http_requests_total", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("onair_http_request_seconds", "HTTP request latency", ["route"],
                                 registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self.in_flight = Gauge("onair_http_in_flight", "Requests being served", registry=self.registry)
        self.connections = Gauge("onair_live_connections", "Open WebSocket/SSE/long-poll connections",
                                 registry=self.registry)
        self.queue_depth = Gauge("onair_job_queue_depth", "Queued jobs", ["queue"], registry=self.registry)
        self.bus_up = Gauge("onair_bus_up", "1 while the pub/sub bus is connected and subscribed",
                            registry=self.registry)
        self.bus_reconnects = Gauge("onair_bus_reconnects", "Times the pub/sub bus reconnected since start",
                                    registry=self.registry)
        self.disk_free = Gauge("onair_data_dir_free_bytes", "Free bytes on the data dir's file system",
                               registry=self.registry)


METRICS = web.AppKey("metrics", Metrics)


def route_name(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource
    if resource is None:
        return "unmatched"
    return resource.canonical


@web.middleware
async def metrics_middleware(request: web.Request,
                             handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    metrics = request.app[METRICS]
    start = time.perf_counter()
    metrics.in_flight.inc()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        metrics.in_flight.dec()
        route = route_name(request)
        metrics.requests.labels(request.method, route, str(status)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - start)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}

    async def probe(name: str, check: Callable[[], Awaitable[object]]) -> None:
        try:
            await asyncio.wait_for(check(), timeout=3)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"failing: {type(exc).__name__}"

    async def disk() -> None:
        settings = request.app[SETTINGS]
        free = (await asyncio.to_thread(shutil.disk_usage, settings.data_dir)).free
        if free < settings.min_free_bytes:
            raise DiskFull(f"{free} bytes free, below {settings.min_free_bytes}")

    # The disk goes first: a storage probe on a full disk would fail too, but with a less helpful name.
    await asyncio.gather(probe("database", lambda: request.app[POOL].fetchval("SELECT 1")),
                         probe("disk", disk),
                         probe("storage", request.app[STORE].check),
                         probe("bus", request.app[BUS].check))
    ok = all(v == "ok" for v in checks.values())
    body = {"status": "ready" if ok else "not-ready", "checks": checks}
    if ok:
        return web.json_response(body, headers={"Cache-Control": "no-store"})
    # problem+json: `status` must stay the HTTP status (the body's "not-ready" would overwrite it).
    return web.json_response({**body, "type": "/problems/not-ready", "title": "Not ready", "status": 503,
                              "detail": "A dependency is failing"}, status=503,
                             content_type="application/problem+json", headers={"Cache-Control": "no-store"})


def _may_read_metrics(request: web.Request) -> bool:
    """/metrics shows traffic and queue sizes: configured networks only, or the metrics token."""
    settings = request.app[SETTINGS]
    header = request.headers.get("Authorization", "")
    if settings.metrics_token and hmac.compare_digest(header.encode(), f"Bearer {settings.metrics_token}".encode()):
        return True
    return client_in(request, settings.metrics_network_list)


async def metrics_view(request: web.Request) -> web.Response:
    if not _may_read_metrics(request):
        raise Forbidden("/metrics is open to the configured networks (ONAIR_METRICS_NETWORKS) or with "
                        "ONAIR_METRICS_TOKEN", code="metrics-forbidden")
    metrics = request.app[METRICS]
    try:
        depth = await asyncio.wait_for(jobs.queue_depth(request.app[POOL]), timeout=2)
        for queue, n in depth.items():
            metrics.queue_depth.labels(queue).set(n)
        for queue in {q for (q,) in _label_values(metrics.queue_depth)} - set(depth):
            metrics.queue_depth.labels(queue).set(0)
    except Exception:
        pass  # the scrape still reports request metrics
    bus = request.app[BUS]
    metrics.bus_up.set(1 if getattr(bus, "healthy", True) else 0)
    metrics.bus_reconnects.set(getattr(bus, "reconnects", 0))
    try:
        metrics.disk_free.set((await asyncio.to_thread(shutil.disk_usage, request.app[SETTINGS].data_dir)).free)
    except OSError:
        pass
    return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _label_values(gauge: Gauge) -> list[tuple[str, ...]]:
    return list(gauge._metrics.keys())  # prometheus_client keeps children keyed by label tuple


def setup(app: web.Application) -> None:
    app[METRICS] = Metrics()
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    app.router.add_get("/metrics", metrics_view, name="metrics")
