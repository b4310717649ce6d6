"""HTTP routes of the streaming domain: each area registers its own."""

from __future__ import annotations

from aiohttp import web

from streaming import assets_routes, live_routes, origin_routes


def setup(app: web.Application) -> None:
    assets_routes.setup(app)   # catalogue API, uploads (multipart, tus), URL pull
    origin_routes.setup(app)   # /media/... delivery behind the CDN
    live_routes.setup(app)     # devices, polls, chat, studio
