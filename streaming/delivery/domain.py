"""Delivery (the CDN origin) as the composition root sees it."""

from aiohttp import web

from onair.core.domain import Domain
from streaming.delivery import live_origin, routes


def _setup(app: web.Application) -> None:
    routes.setup(app)
    live_origin.setup(app)


DOMAIN = Domain("delivery", setup=_setup)
