"""Structured logging: one JSON object per line when not on a terminal.

The request id of the request (or job) being served lives in a context variable: every log line written
meanwhile carries it, jobs enqueued meanwhile store it, and a webhook delivery sends it on.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("onair_request_id", default=None)
# Who is asking (user, partner, device), filled in by whoever finds out; the request's log line reports it.
_FIELDS: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("onair_log_fields", default=None)


def annotate(**fields: Any) -> None:
    """Add facts about the current request to its log line (no-op outside a request)."""
    current = _FIELDS.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v is not None})


def begin_request(request_id: str) -> dict[str, Any]:
    """Start a request's context (call in the task that serves it); returns the dict `annotate` fills."""
    REQUEST_ID.set(request_id)
    fields: dict[str, Any] = {}
    _FIELDS.set(fields)
    return fields

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
               "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
        if (request_id := REQUEST_ID.get()) is not None:
            doc["request_id"] = request_id
        doc.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure(level: str = "INFO", fmt: str = "auto") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else
                         logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
