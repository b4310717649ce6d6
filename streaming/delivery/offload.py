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

S3 storage (deploy/nginx/onair-offload-s3.conf): the redirect names the internal location only; the presigned
GET URL's path and query, the Host it signs and the byte range onair chose travel in X-Onair-S3-* headers that
nginx copies into variables and never to the client. nginx does not judge conditionals or ranges on a proxied
answer (no not-modified filter without proxy_cache, no range filter without proxy_force_ranges), so every
GET onair answers with a 200 or 206 can be offloaded, whatever its key or conditional headers.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlsplit

from aiohttp import web

from onair.core.bounded import Bounded
from onair.core.storage.common import ObjectStore
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
    # Cache-Control travels renamed: nginx would copy it onto its own 404 page if the file went away after the
    # decision (a CDN would keep that 404 for a segment's year); onair-offload.conf adds it back on success only.
    out = {("X-Onair-Cache-Control" if k == "Cache-Control" else k): v for k, v in headers.items()
           if k not in ("Content-Range", "Accept-Ranges")}
    if status == 206:
        # nginx adds Accept-Ranges to a whole-object 200 only; on a 206 the copied upstream one is the one
        out["Accept-Ranges"] = "bytes"
    out["X-Accel-Redirect"] = prefix + store_key
    # always sent: without it nginx would fall back to Cache-Control (a year for a segment) if its config
    # stopped ignoring that header; nginx never passes X-Accel-* on to clients
    out["X-Accel-Expires"] = str(reuse)
    return web.Response(status=200, headers=out)


# A presigned URL lives PRESIGN_SECONDS and is reused while at least half of that is left: botocore takes
# ~0.5 ms to sign one (more than the rest of a segment request), and nginx uses the URL at once.
PRESIGN_SECONDS = 120
PRESIGN_REUSE = PRESIGN_SECONDS / 2


class Presigned:
    """Presigned GET URLs per object key, per process, bounded like every other per-process map."""

    def __init__(self, max_entries: int) -> None:
        self._urls: Bounded[str, str] = Bounded(max_entries, PRESIGN_REUSE)

    async def url(self, store: ObjectStore, key: str) -> str:
        url = self._urls.get(key)
        if url is None:
            signed = await store.presigned_url(key, expires=PRESIGN_SECONDS)
            if signed is None:  # only local storage has no presigned URLs, and it is offloaded by path
                raise RuntimeError(f"storage gave no presigned URL for {key}")
            url = signed
            self._urls.set(key, url)
        return url


# nginx copies these of onair's answer onto whatever the internal location sends, its error pages included; under
# other names they reach the client only with S3's object (add_header in onair-offload-s3.conf), so a failed
# fetch is never a 502 marked cacheable for a day.
_RENAMED = frozenset({"Cache-Control", "Accept-Ranges"})


def s3_offload_response(prefix: str, url: str, span: tuple[int, int], status: int,
                        headers: dict[str, str]) -> web.Response:
    """The headers direct mode would send, minus Content-Range (S3 answers the range onair asks for)."""
    out = {(f"X-Onair-{k}" if k in _RENAMED else k): v for k, v in headers.items() if k != "Content-Range"}
    signed = urlsplit(url)
    out["X-Accel-Redirect"] = prefix
    out["X-Onair-S3-Uri"] = f"{signed.path}?{signed.query}"
    out["X-Onair-S3-Host"] = signed.netloc  # what SigV4 signed: nginx must send exactly this Host
    if status == 206:
        out["X-Onair-S3-Range"] = f"bytes={span[0]}-{span[1]}"
    return web.Response(status=200, headers=out)
