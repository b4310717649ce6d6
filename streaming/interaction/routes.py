"""Routes of live interaction: devices, polls, chat."""

from __future__ import annotations

from aiohttp import web

from onair.core.settings import SETTINGS
from streaming.interaction import chat_routes, devices, pairing_routes, poll_routes, show_page, show_routes
from streaming.interaction.live_state import live_context


def setup(app: web.Application) -> None:
    """Register routes and cleanup contexts."""
    app.cleanup_ctx.append(live_context(app[SETTINGS]))
    devices.setup(app)
    poll_routes.setup(app)
    chat_routes.setup(app)
    show_routes.setup(app)
    show_page.setup(app)
    pairing_routes.setup(app)
