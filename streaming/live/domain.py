"""Live channels as the composition root sees them: the API, the live origin, the ingest listeners, the channel
job handlers."""

from aiohttp import web

from onair.core.domain import Domain
from streaming.live import events, origin, routes, service


def _setup(app: web.Application) -> None:
    routes.setup(app)
    origin.setup(app)    # /live/... playlists and segments, through the delivery origin
    service.setup(app)


DOMAIN = Domain("live", setup=_setup, handlers=events.HANDLERS, progress_hooks=events.PROGRESS_HOOKS)
