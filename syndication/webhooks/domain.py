"""Webhooks as the composition root sees it: the subscriptions API and the fan-out/delivery jobs."""

from onair.core.domain import Domain
from syndication.webhooks import routes, tasks

DOMAIN = Domain("webhooks", setup=routes.setup, handlers=tasks.HANDLERS)
