"""What the origin tells caches about an object: its type, how long it may be kept, its purge tags, CORS.

Caching rules (README "CDN origin"): segments, init segments and images are never rewritten under the same key
(1 year, immutable); VOD manifests are long-lived once the asset is `ready` (a re-transcode purges by tag) and
short before; captions a day (they get corrected); rights or tokens that end sooner shorten all of it.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

from aiohttp import web

from onair.core.settings import Settings
from onair.core.web import cap_ttl_all
from streaming.catalog import Asset

YEAR = 31536000


IMMUTABLE = f"public, max-age={YEAR}, immutable"
MANIFEST_READY = "public, max-age=86400, stale-while-revalidate=3600, stale-if-error=86400"


MANIFEST_NOT_READY = "public, max-age=2"
CAPTIONS = "public, max-age=86400, stale-while-revalidate=3600, stale-if-error=86400"


OTHER = "public, max-age=3600, stale-if-error=86400"
CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".ts": "video/mp2t",
    ".aac": "audio/aac",
    ".vtt": "text/vtt; charset=utf-8",
    ".ttml": "application/ttml+xml",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".json": "application/json",
}


MANIFESTS = {".m3u8", ".mpd"}
IMMUTABLE_KINDS = {".m4s", ".mp4", ".m4a", ".ts", ".aac", ".jpg", ".jpeg", ".png", ".webp"}


EXPOSE = "Content-Length, Content-Range, Accept-Ranges, ETag, Last-Modified, Date"
ALLOW_HEADERS = "Range, If-None-Match, If-Modified-Since, If-Range, Origin, Accept"


METHODS = "GET, HEAD, OPTIONS"


def object_kind(key: str) -> str:
    return os.path.splitext(key)[1].lower()  # not pathlib: this runs for every request


def content_type(key: str) -> str:
    return CONTENT_TYPES.get(object_kind(key), "application/octet-stream")


def cache_control(key: str, asset: Asset) -> str:
    kind = object_kind(key)
    if kind in MANIFESTS:
        return MANIFEST_READY if asset.ready else MANIFEST_NOT_READY
    if kind in IMMUTABLE_KINDS:
        return IMMUTABLE
    if kind == ".vtt":
        return CAPTIONS
    return OTHER


def purge_tags(asset_id: str) -> dict[str, str]:
    tag = f"asset-{asset_id}"
    return {"Surrogate-Key": tag, "Cache-Tag": tag, "Edge-Cache-Tag": tag}


def cors_headers(request: web.Request, allowed: tuple[str, ...]) -> dict[str, str]:
    origin = request.headers.get("Origin")
    if "*" in allowed:
        return {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": EXPOSE}
    headers = {"Vary": "Origin"}  # the answer differs per Origin: caches must key on it
    if origin and origin in allowed:
        headers.update({"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": EXPOSE})
    return headers


def effective_cache_control(base: str, asset: Asset, settings: Settings, now: datetime,
                            token_exp: int | None) -> tuple[str, dict[str, str]]:
    """Shorten caching where rights or tokens end sooner than the object's own lifetime."""
    extra: dict[str, str] = {}
    if asset.rights.geo_allow or asset.rights.geo_deny:
        # The same URL answers differently per country: caches must key on the CDN's country header.
        extra["Vary"] = ", ".join(settings.country_headers)
    token_end = datetime.fromtimestamp(token_exp, UTC) if token_exp is not None else None
    current = int(m.group(1)) if (m := re.search(r"max-age=(\d+)", base)) else YEAR
    ttl = cap_ttl_all(current, (token_end, asset.rights.available_until), now)
    if ttl >= current:
        return base, extra
    return f"public, max-age={ttl}", extra
