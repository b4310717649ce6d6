"""Origin offload: onair decides, nginx sends the bytes (X-Accel-Redirect to an `internal;` location).

Every decision (token, rights, geo, CORS, cache policy, ETag/304/412, purge tags) has been made by origin.py
when this runs; the answer only names the file. nginx keeps the upstream's Content-Type, Cache-Control and
Accept-Ranges on the redirect and deploy/nginx/onair-offload.conf re-adds the rest from `$upstream_http_*`.

nginx's own static module then runs its not-modified and range filters on the *client's* request headers,
with its own validators. Where those could answer differently from onair they are not asked: a request with
If-Match, If-Unmodified-Since or If-Range, or a Range onair chose to ignore (multi-range, invalid), is sent
by onair itself. Keys outside a plain character set are too (nginx does not decode X-Accel-Redirect, and a
`?` would start its query string).

Decision reuse: `X-Accel-Expires: N` lets deploy/nginx/onair-offload.conf keep an allowed answer N seconds for
the same raw URL (token included) and Origin, and send it again without asking onair. N is 0 (ask
every time) where the decision depends on something outside that key: the country (geo-restricted assets: it
counts only from a trusted proxy, which the key cannot say) and the client address (IP-bound tokens). It never
outlives the token or the rights window.
"""

from __future__ import annotations

import re
from datetime import datetime

from aiohttp import web

from streaming.catalog.rights import Rights
from streaming.delivery.signing import TokenFields

_PLAIN_KEY = re.compile(r"[A-Za-z0-9._~/-]+")
_UNSAFE = ("If-Match", "If-Unmodified-Since", "If-Range")


def offloadable(request: web.Request, store_key: str, status: int) -> bool:
    headers = request.headers
    if any(name in headers for name in _UNSAFE):
        return False
    if status == 200 and "Range" in headers:
        return False  # onair ignored it; nginx might not
    return _PLAIN_KEY.fullmatch(store_key) is not None


def reuse_seconds(limit: int, rights: Rights, token: TokenFields | None, now: datetime) -> int:
    """How long nginx may reuse this allowed decision (0: not at all)."""
    if limit <= 0 or rights.geo_allow or rights.geo_deny or (token is not None and token.ip):
        return 0
    seconds = float(limit)
    if token is not None:
        seconds = min(seconds, token.exp - now.timestamp())
    if rights.available_until is not None:
        seconds = min(seconds, (rights.available_until - now).total_seconds())
    return max(0, int(seconds))  # rounded down: a reused decision never outlives what allowed it


def offload_response(prefix: str, store_key: str, status: int, headers: dict[str, str],
                     reuse: int = 0) -> web.Response:
    """The headers direct mode would send, minus what nginx writes itself from the file and the range."""
    out = {k: v for k, v in headers.items() if k not in ("Content-Range", "Accept-Ranges")}
    if status == 206:
        # nginx adds Accept-Ranges to a whole-object 200 only; on a 206 the copied upstream one is the one
        out["Accept-Ranges"] = "bytes"
    out["X-Accel-Redirect"] = prefix + store_key
    # always sent: without it nginx would fall back to Cache-Control (a year for a segment) if its config
    # stopped ignoring that header; nginx never passes X-Accel-* on to clients
    out["X-Accel-Expires"] = str(reuse)
    return web.Response(status=200, headers=out)
