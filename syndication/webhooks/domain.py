"""Webhooks as the composition root sees it: the subscriptions API, the fan-out/delivery jobs, and the purge
endpoint that follows ONAIR_PURGE_WEBHOOK_URL."""

from aiohttp import web

from onair.core.domain import Domain
from syndication.webhooks import purge_endpoint, routes, tasks


def setup(app: web.Application) -> None:
    routes.setup(app)
    app.on_startup.append(purge_endpoint.sync)


DOMAIN = Domain("webhooks", setup=setup, handlers=tasks.HANDLERS)
