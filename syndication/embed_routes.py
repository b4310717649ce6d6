"""Routes of this area of the streaming domain."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register routes and cleanup contexts."""
