"""Syndication as the composition root sees it: feeds and the partner API, the embed player, `onair partner`."""

from aiohttp import web

from onair.core.domain import Domain
from syndication import analytics, commands
from syndication.embed import routes as embed_routes
from syndication.feeds import routes as feed_routes


def setup(app: web.Application) -> None:
    feed_routes.setup(app)    # feeds, partner API, usage
    embed_routes.setup(app)   # player page, watch page, oEmbed, the player bundle
    analytics.setup(app)      # player beacons and per-asset stats


DOMAIN = Domain("syndication", setup=setup, commands=commands.register)
