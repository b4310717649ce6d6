"""HTTP routes of this domain."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register this domain's routes and cleanup contexts on the application."""
