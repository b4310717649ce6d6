"""Composition root: the only module that sees every domain."""

from __future__ import annotations

from aiohttp import web

import hbbtv_apps.routes
import streaming.routes
import streaming.sample
import streaming.tasks
import syndication.routes
import transcode.tasks
from onair import health, jobs, lifecycle
from onair.auth import ADMIN_TOKEN, SIGNING_KEY, admin_token, signing_key
from onair.bus import BUS, Bus, bus_context
from onair.db.pool import POOL, pool_context
from onair.errors import problem_middleware
from onair.settings import SETTINGS, Settings
from onair.storage import STORE, store_context

DSN = web.AppKey("dsn", str)

# Every job kind the system knows, by name; domains hand work to each other through these.
JOB_HANDLERS: dict[str, jobs.Handler] = {**transcode.tasks.HANDLERS, **streaming.tasks.HANDLERS}

DOMAIN_SETUPS = (streaming.routes.setup, syndication.routes.setup, hbbtv_apps.routes.setup)


def _worker_factory(settings: Settings, dsn: str):
    def make(app: web.Application) -> jobs.Worker:
        resources = jobs.Resources(settings=settings, pool=app[POOL], store=app[STORE], bus=app[BUS])
        return jobs.Worker(app[POOL], dsn, JOB_HANDLERS, resources, concurrency=settings.job_concurrency,
                           lease_seconds=settings.job_lease_seconds)

    return make


def create_app(settings: Settings, dsn: str, *, run_worker: bool = True, bus: Bus | None = None) -> web.Application:
    """Build the web application. `dsn` is the resolved database URL (embedded or external)."""
    app = web.Application(middlewares=[health.metrics_middleware, problem_middleware],
                          client_max_size=2 * 1024 * 1024)
    app[SETTINGS] = settings
    app[DSN] = dsn
    app[ADMIN_TOKEN] = admin_token(settings)[0]
    app[SIGNING_KEY] = signing_key(settings)
    app.cleanup_ctx.append(pool_context(settings, dsn))
    app.cleanup_ctx.append(store_context(settings))
    app.cleanup_ctx.append(bus_context(settings, bus))
    health.setup(app)
    lifecycle.setup(app)
    for setup in DOMAIN_SETUPS:
        setup(app)
    if run_worker:
        app.cleanup_ctx.append(jobs.worker_context(_worker_factory(settings, dsn)))
    return app


def worker_resources_context(settings: Settings, dsn: str, concurrency: int):
    """For `onair worker`: the same resources without the web routes."""
    app = web.Application()
    app[SETTINGS] = settings
    app[DSN] = dsn
    app.cleanup_ctx.append(pool_context(settings, dsn))
    app.cleanup_ctx.append(store_context(settings))
    app.cleanup_ctx.append(bus_context(settings))
    return app, _worker_factory(settings.with_(job_concurrency=concurrency), dsn)


async def on_first_start(app: web.Application) -> None:
    """Run once after `onair serve` is listening (sample clip for an empty library, etc.)."""
    for hook in FIRST_START_HOOKS:
        await hook(app)


FIRST_START_HOOKS: tuple = (streaming.sample.ingest_sample,)
