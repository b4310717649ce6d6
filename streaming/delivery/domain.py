"""Delivery (the CDN origin) as the composition root sees it."""

from onair.core.domain import Domain
from streaming.delivery import routes

DOMAIN = Domain("delivery", setup=routes.setup)
