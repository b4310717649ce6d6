"""Conditional and partial requests (RFC 9110): validators -> 304/412, Range and If-Range -> 206/416."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from aiohttp import web

from onair.core.errors import RangeNotSatisfiable
from onair.core.storage import ObjectInfo


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def _etags(header: str) -> list[str]:
    return [t.strip().removeprefix("W/") for t in header.split(",") if t.strip()]


def not_modified(request: web.Request, info: ObjectInfo) -> bool:
    """RFC 9110 13.1.2/13.1.3: If-None-Match (weak comparison) wins over If-Modified-Since."""
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        tags = _etags(inm)
        return "*" in tags or f'"{info.etag}"' in tags
    ims = request.headers.get("If-Modified-Since")
    if ims:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return info.last_modified.replace(microsecond=0) <= since
    return False


def precondition_failed(request: web.Request, info: ObjectInfo) -> bool:
    im = request.headers.get("If-Match")
    if im is None:
        return False
    tags = [t.strip() for t in im.split(",")]
    return not ("*" in tags or f'"{info.etag}"' in tags)  # strong comparison


def if_range_allows(request: web.Request, info: ObjectInfo) -> bool:
    value = request.headers.get("If-Range")
    if value is None:
        return True
    value = value.strip()
    if value.startswith('"'):
        return value == f'"{info.etag}"'
    try:
        return parsedate_to_datetime(value) == info.last_modified.replace(microsecond=0)
    except (TypeError, ValueError, IndexError):
        return False


_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One byte range -> (start, end) inclusive; None to send the whole object (absent, multi-range or
    syntactically invalid: RFC 9110 lets a server ignore those). Raises RangeNotSatisfiable."""
    if not header:
        return None
    m = _RANGE.match(header)
    if not m or (not m.group(1) and not m.group(2)):
        return None
    first, last = m.group(1), m.group(2)
    if not first:  # suffix range: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(0, size - n), size - 1
    start = int(first)
    end = int(last) if last else None
    if end is not None and end < start:
        return None  # invalid, ignored
    if start >= size:
        raise _unsatisfiable(size)
    if end is None:
        end = size - 1
    return start, min(end, size - 1)


def _unsatisfiable(size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(f"The object has {size} bytes", headers={"Content-Range": f"bytes */{size}"})
