"""Composition root: the only module that sees every domain."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

import accounts.domain
import hbbtv_apps.domain
import streaming.catalog.domain
import streaming.delivery.domain
import streaming.ingest.domain
import streaming.interaction.domain
import streaming.live.domain
import studio.domain
import syndication.domain
import syndication.webhooks.domain
import transcode.domain
from onair.core import health, job_kinds, jobs, lifecycle, limits, openapi, request_log
from onair.core.auth import ADMIN_TOKEN, SIGNING_KEY, admin_token, permission_of, signing_key
from onair.core.bus import BUS, Bus, bus_context
from onair.core.db.pool import POOL, pool_context
from onair.core.domain import Domain
from onair.core.edge import edge_middleware
from onair.core.janitor import janitor_context
from onair.core.memory import trim_context
from onair.core.settings import SETTINGS, Settings
from onair.core.storage import STORE, store_context

# The whole system, in the order routes are registered.
DOMAINS: tuple[Domain, ...] = (
    streaming.catalog.domain.DOMAIN,
    streaming.ingest.domain.DOMAIN,
    streaming.delivery.domain.DOMAIN,
    streaming.interaction.domain.DOMAIN,
    streaming.live.domain.DOMAIN,
    transcode.domain.DOMAIN,
    syndication.domain.DOMAIN,
    syndication.webhooks.domain.DOMAIN,
    hbbtv_apps.domain.DOMAIN,
    studio.domain.DOMAIN,
    accounts.domain.DOMAIN,
)
# the domains' periodic clean-ups (privacy retention), run by the janitor of each job worker
SWEEPS = tuple(s for d in DOMAINS for s in d.sweeps)


def _job_handlers() -> dict[str, jobs.Handler]:
    handlers: dict[str, jobs.Handler] = {}
    for domain in DOMAINS:
        clash = handlers.keys() & domain.handlers.keys()
        if clash:
            raise RuntimeError(f"job kinds {sorted(clash)} registered twice (domain {domain.name})")
        handlers.update(domain.handlers)
    return handlers


def _progress_hooks() -> dict[str, jobs.ProgressHook]:
    hooks: dict[str, jobs.ProgressHook] = {}
    for domain in DOMAINS:
        clash = hooks.keys() & domain.progress_hooks.keys()
        if clash:  # one follower per kind keeps "who writes what" obvious; fan out inside it if ever needed
            raise RuntimeError(f"progress of job kinds {sorted(clash)} followed twice (domain {domain.name})")
        hooks.update(domain.progress_hooks)
    return hooks


# Every job kind the system knows, by name; domains hand work to each other through these.
JOB_HANDLERS: dict[str, jobs.Handler] = _job_handlers()
# Who follows the progress of which job kind (the catalogue follows transcodes into `assets`).
PROGRESS_HOOKS: dict[str, jobs.ProgressHook] = _progress_hooks()
DOMAIN_COMMANDS = tuple(d.commands for d in DOMAINS if d.commands is not None)

DSN = web.AppKey("dsn", str)


def _worker_factory(settings: Settings, dsn: str):
    def make(app: web.Application) -> jobs.Worker:
        resources = jobs.Resources(settings=settings, pool=app[POOL], store=app[STORE], bus=app[BUS],
                                   signing_key=app[SIGNING_KEY])
        return jobs.Worker(app[POOL], dsn, JOB_HANDLERS, resources, concurrency=settings.job_concurrency,
                           lease_seconds=settings.job_lease_seconds,
                           retry=jobs.RetryPolicy.from_settings(settings), progress_hooks=PROGRESS_HOOKS)

    return make


# Live encoders get their own pool: a queue of VOD transcodes must never delay a channel going on air.
LIVE_QUEUE_CONCURRENCY = 8


def _live_worker_factory(settings: Settings, dsn: str):
    def make(app: web.Application) -> jobs.Worker:
        resources = jobs.Resources(settings=settings, pool=app[POOL], store=app[STORE], bus=app[BUS])
        return jobs.Worker(app[POOL], dsn, JOB_HANDLERS, resources, queues=("live",),
                           concurrency=LIVE_QUEUE_CONCURRENCY, lease_seconds=settings.job_lease_seconds,
                           retry=jobs.RetryPolicy.from_settings(settings), progress_hooks=PROGRESS_HOOKS)

    return make


def _pull_worker_factory(settings: Settings, dsn: str):
    def make(app: web.Application) -> jobs.Worker:
        resources = jobs.Resources(settings=settings, pool=app[POOL], store=app[STORE], bus=app[BUS])
        return jobs.Worker(app[POOL], dsn, JOB_HANDLERS, resources, queues=(job_kinds.PULL_QUEUE,),
                           concurrency=settings.url_pull_concurrency, lease_seconds=settings.job_lease_seconds,
                           retry=jobs.RetryPolicy.from_settings(settings), progress_hooks=PROGRESS_HOOKS)

    return make


def create_app(settings: Settings, dsn: str, *, run_worker: bool = True, bus: Bus | None = None) -> web.Application:
    """Build the web application. `dsn` is the resolved database URL (embedded or external)."""
    app = web.Application(middlewares=[edge_middleware], client_max_size=2 * 1024 * 1024)
    app[SETTINGS] = settings
    app[DSN] = dsn
    app[ADMIN_TOKEN] = admin_token(settings)[0]
    app[SIGNING_KEY] = signing_key(settings)
    app.cleanup_ctx.append(pool_context(settings, dsn))
    app.cleanup_ctx.append(store_context(settings))
    app.cleanup_ctx.append(bus_context(settings, bus))
    app.cleanup_ctx.append(limits.limits_context(settings))
    health.setup(app)
    request_log.setup(app)
    app.cleanup_ctx.append(trim_context())  # after a crowd of live connections leaves
    lifecycle.setup(app)
    openapi.setup(app)
    for domain in DOMAINS:
        if domain.setup is not None:
            domain.setup(app)
    if run_worker:
        app.cleanup_ctx.append(janitor_context(settings, SWEEPS))  # before the worker: leftovers go before jobs run
        app.cleanup_ctx.append(jobs.worker_context(_worker_factory(settings, dsn)))
        app.cleanup_ctx.append(jobs.worker_context(_live_worker_factory(settings, dsn)))
        app.cleanup_ctx.append(jobs.worker_context(_pull_worker_factory(settings, dsn)))
    return app


def worker_resources_context(settings: Settings, dsn: str, concurrency: int):
    """For `onair worker`: the same resources without the web routes, and the two job pools (VOD and live)."""
    app = web.Application()
    app[SETTINGS] = settings
    app[DSN] = dsn
    app[SIGNING_KEY] = signing_key(settings)
    app.cleanup_ctx.append(pool_context(settings, dsn))
    app.cleanup_ctx.append(store_context(settings))
    app.cleanup_ctx.append(bus_context(settings))
    app.cleanup_ctx.append(janitor_context(settings, SWEEPS))
    return app, (_worker_factory(settings.with_(job_concurrency=concurrency), dsn),
                 _live_worker_factory(settings, dsn), _pull_worker_factory(settings, dsn))


@dataclass(frozen=True, order=True)
class Route:
    path: str
    method: str
    permission: str
    handler: str

    def line(self) -> str:
        return f"{self.method:<7} {self.path:<58} {self.permission:<20} {self.handler}"


def route_table(settings: Settings) -> list[Route]:
    """Every route the app serves, sorted by path then method; the app is built, never started."""
    # Fixed secrets: reading the table must not create secret files in the data dir.
    app = create_app(settings.with_(admin_token="-", signing_key="-"), "", run_worker=False)
    rows = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path") or (info["prefix"] + "/{filename}" if "prefix" in info
                                                            else str(route.resource))
        handler = route.handler
        name = f"{getattr(handler, '__module__', '?')}.{getattr(handler, '__qualname__', repr(handler))}"
        rows.add(Route(path, route.method, permission_of(handler), name))
    return sorted(rows)


async def on_first_start(app: web.Application) -> None:
    """Run once after `onair serve` is listening (sample clip for an empty library, etc.)."""
    for domain in DOMAINS:
        if domain.first_start is not None:
            await domain.first_start(app)
