"""HTTP routes of the syndication domain: each area registers its own."""

from __future__ import annotations

from aiohttp import web

from syndication import embed_routes, feed_routes


def setup(app: web.Application) -> None:
    feed_routes.setup(app)    # feeds, partner API, usage
    embed_routes.setup(app)   # player page, watch page, oEmbed, player stats
