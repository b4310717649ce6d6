"""/healthz, /readyz and /metrics — what the orchestrator and Prometheus read."""

from __future__ import annotations

import asyncio
import hmac
import shutil
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from onair.core import job_stats
from onair.core.bus import BUS
from onair.core.db.embedded import GAVE_UP
from onair.core.db.pool import POOL
from onair.core.errors import Forbidden
from onair.core.metrics import METRICS as APP_METRICS
from onair.core.metrics import Metrics, exposition
from onair.core.settings import SETTINGS
from onair.core.storage import STORE
from onair.core.web import client_in


class DiskFull(OSError):
    pass


# The application's metrics (onair.core.metrics.METRICS), also reachable from a request's app.
METRICS = web.AppKey("metrics", Metrics)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: fails only when this process cannot recover by itself. A database that is down is a readiness
    matter (/readyz), except the embedded one after its supervisor gave up restarting it: then restarting
    onair is the way out."""
    settings = request.app[SETTINGS]
    if settings.database_url is None and (settings.data_dir / GAVE_UP).exists():
        return web.json_response({"type": "/problems/not-live", "title": "Not live", "status": 503,
                                  "detail": "The embedded PostgreSQL keeps crashing; restart onair"}, status=503,
                                 content_type="application/problem+json", headers={"Cache-Control": "no-store"})
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


async def scrape_time_families(app: web.Application) -> list[Metric]:
    """What is read when Prometheus asks: job queues from the database, this process's bus and disk."""
    depth = GaugeMetricFamily("onair_job_queue_depth", "Queued jobs (due now or later)", labels=["queue", "kind"])
    oldest = GaugeMetricFamily("onair_job_oldest_seconds", "How long the oldest due job has waited",
                               labels=["queue", "kind"])
    families: list[Metric] = [depth, oldest]
    database_up = 1
    try:
        for row in await asyncio.wait_for(job_stats.queue_stats(app[POOL]), timeout=2):
            depth.add_metric([row.queue, row.kind], row.depth)
            oldest.add_metric([row.queue, row.kind], row.oldest_seconds)
    except Exception:
        database_up = 0  # the scrape still reports everything else
    families.append(GaugeMetricFamily("onair_database_up", "1 while PostgreSQL answered this scrape's queue query",
                                      value=database_up))
    bus = app[BUS]
    families.append(GaugeMetricFamily("onair_bus_up", "1 while the pub/sub bus is connected and subscribed",
                                      value=1 if getattr(bus, "healthy", True) else 0))
    families.append(GaugeMetricFamily("onair_bus_reconnects", "Times the pub/sub bus reconnected since start",
                                      value=getattr(bus, "reconnects", 0)))
    try:
        free = (await asyncio.to_thread(shutil.disk_usage, app[SETTINGS].data_dir)).free
        families.append(GaugeMetricFamily("onair_data_dir_free_bytes", "Free bytes on the data dir's file system",
                                          value=free))
    except OSError:
        pass
    return families


async def metrics_view(request: web.Request) -> web.Response:
    if not _may_read_metrics(request):
        raise Forbidden("/metrics is open to the configured networks (ONAIR_METRICS_NETWORKS) or with "
                        "ONAIR_METRICS_TOKEN", code="metrics-forbidden")
    body = await asyncio.to_thread(exposition, await scrape_time_families(request.app))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup(app: web.Application) -> None:
    app[METRICS] = APP_METRICS
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    app.router.add_get("/metrics", metrics_view, name="metrics")
