"""Job handlers owned by the streaming domain."""

from __future__ import annotations

from onair.jobs import Handler

HANDLERS: dict[str, Handler] = {}
