"""The current time, replaceable per application so tests can move it (embargo windows, expiry)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


CLOCK = web.AppKey("clock", Clock)


def now(app: web.Application) -> datetime:
    return app.get(CLOCK, system_clock)()
