"""CDN origin delivery: `serve()` answers one /media request by composing the decisions of access.py (may this
viewer fetch it), caching.py (type, lifetime, purge tags, CORS) and conditional.py (304/412, ranges), then sends
the bytes (inline, sendfile, a stream from S3, or a redirect to a presigned URL).

Errors: 404/410 are cached 5 s, everything else no-store (never cache a 403 for a viewer who may be allowed).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from aiohttp import web

from onair.core.bounded import Bounded
from onair.core.clock import now as clock_now
from onair.core.db.pool import POOL
from onair.core.errors import AppError, NotFound, infrastructure_problem, problem_response
from onair.core.settings import Settings
from onair.core.storage import STORE, ObjectInfo, ObjectNotFound
from onair.core.web import client_ip, viewer_country
from streaming.catalog import Asset, get_asset
from streaming.delivery import signing
from streaming.delivery.access import check_access, check_raw_path, check_token, object_key
from streaming.delivery.caching import (
    ALLOW_HEADERS,
    METHODS,
    cache_control,
    content_type,
    cors_headers,
    effective_cache_control,
    purge_tags,
)
from streaming.delivery.conditional import (
    http_date,
    if_range_allows,
    not_modified,
    parse_range,
    precondition_failed,
)
from streaming.delivery.offload import Presigned, offload_response, offloadable, reuse_seconds, s3_offload_response

log = logging.getLogger("onair.origin")


# Per-process lookups (asset rows, object stats) kept one second during a show-start storm: far below any
# CDN TTL we send, so they never make content staler than the CDN would, but they turn thousands of
# identical DB queries and stat calls per second into one.
LOOKUP_TTL = 1.0
_MISS = object()


@dataclass(frozen=True)
class OriginConfig:
    settings: Settings
    secret: bytes
    assets: Bounded[str, Asset | None] = field(init=False)
    # The last row read of each asset, kept origin_stale_metadata_seconds: used only while the database is down.
    known: Bounded[str, Asset] = field(init=False)
    stats: Bounded[str, tuple[ObjectInfo, Path | None, str]] = field(init=False)
    presigned: Presigned = field(init=False)
    # parsed once: Settings' properties split strings on every access
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "assets", Bounded(self.settings.cache_entries, LOOKUP_TTL))
        object.__setattr__(self, "known", Bounded(self.settings.cache_entries,
                                                  self.settings.origin_stale_metadata_seconds))
        object.__setattr__(self, "stats", Bounded(self.settings.cache_entries, LOOKUP_TTL))
        object.__setattr__(self, "presigned", Presigned(self.settings.cache_entries))
        object.__setattr__(self, "cors_origins", self.settings.cors_origin_list)


ORIGIN_CONFIG = web.AppKey("origin_config", OriginConfig)
# Objects served by this process, per (asset, key): read by the cache tests and benchmark to prove
# the CDN collapsed a storm. Bounded by the number of objects, which the process serves anyway.
ORIGIN_HITS = web.AppKey("origin_hits", Counter)






# --- responses -----------------------------------------------------------------------------------------

INLINE_READ = 256 * 1024
SMALL_OBJECT = 4 * 1024 * 1024


def _read(path: Path, offset: int, count: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(count)


class SendfileResponse(web.StreamResponse):
    """Headers we chose (our ETag, cache policy), body by sendfile(2) from a local file."""

    def __init__(self, path: Path, offset: int, count: int, *, status: int, headers: dict[str, str]) -> None:
        super().__init__(status=status, headers=headers)
        self._file_path = path
        self._offset = offset
        self._count = count
        self.content_length = count

    async def prepare(self, request: web.BaseRequest):  # type: ignore[override]
        if self.prepared:  # aiohttp calls prepare() again after the handler returns
            return await super().prepare(request)
        writer = await super().prepare(request)
        if request.method == "HEAD" or self._count == 0:
            await super().write_eof()
            return writer
        try:
            # open() of a just-stat'ed file is a page-cache hit; a thread hop would cost more than it saves
            fobj = open(self._file_path, "rb")  # noqa: ASYNC230 (closed in finally below)
        except FileNotFoundError:  # deleted between stat and send: the client sees a short response
            raise ConnectionResetError("object vanished") from None
        try:
            transport = request.transport
            if transport is None:
                raise ConnectionResetError("Connection lost")
            try:
                await asyncio.get_running_loop().sendfile(transport, fobj, self._offset, self._count)
            except RuntimeError as exc:  # "Transport is closing": the viewer went away mid-send
                raise ConnectionResetError(str(exc)) from None
            except NotImplementedError:
                fobj.seek(self._offset)
                left = self._count
                while left > 0 and (chunk := await asyncio.to_thread(fobj.read, min(256 * 1024, left))):
                    await writer.write(chunk)
                    left -= len(chunk)
        finally:
            fobj.close()
        await super().write_eof()
        return writer

    async def write_eof(self, data: bytes = b"") -> None:
        return None  # prepare() already finished the body


async def _stream(request: web.Request, store, key: str, start: int, end: int, size: int, status: int,
                  headers: dict[str, str]) -> web.StreamResponse:
    """Stream from the store (S3): a ranged GET upstream for a 206, a plain GET for the whole object."""
    resp = web.StreamResponse(status=status, headers=headers)
    resp.content_length = end - start + 1
    chunks, first = None, b""
    if request.method != "HEAD" and end >= start:
        ranged = start > 0 or end < size - 1
        chunks = aiter(store.iter_range(key, start, end if ranged else None))
        # The first chunk before any header: storage that is down becomes a 503 (error middleware), not a
        # 200 cut short that a CDN might cache.
        async with asyncio.timeout(request.app[ORIGIN_CONFIG].settings.origin_storage_timeout):
            first = await anext(chunks, b"")
    await resp.prepare(request)
    if chunks is not None:
        if first:
            await resp.write(first)
        async for chunk in chunks:
            await resp.write(chunk)
    await resp.write_eof()
    return resp


async def serve(request: web.Request, asset_id: str, key: str, token: str | None) -> web.StreamResponse:
    config = request.app[ORIGIN_CONFIG]
    cors = cors_headers(request, config.cors_origins)
    try:
        return await _serve(request, config, asset_id, key, token, cors)
    except AppError as err:
        headers = {**cors, **err.headers}
        if err.status in (404, 410):
            headers.update(purge_tags(asset_id) if "/" not in asset_id else {})
        return problem_response(err.status, err.code, err.title, err.detail, headers=headers,
                                extra=err.extra, instance=request.path)


async def _serve(request: web.Request, config: OriginConfig, asset_id: str, key: str, token: str | None,
                 cors: dict[str, str]) -> web.StreamResponse:
    check_raw_path(request.raw_path)
    store_key = object_key(asset_id, key)
    moment = clock_now(request.app)
    fields = None if token is None else check_token(config.secret, token, asset_id, key, moment.timestamp(),
                                                    client_ip(request), config.settings.token_clock_skew_seconds)
    asset = await _asset(request, config, asset_id)
    check_access(asset, has_token=token is not None, now=moment, country=viewer_country(request))
    if asset.media_generation:
        store_key = object_key(asset_id, key, asset.media_generation)
    info, local, last_modified = await _object(request, config, asset_id, key, store_key)
    request.app[ORIGIN_HITS][(asset_id, key)] += 1
    cc, extra = effective_cache_control(cache_control(key, asset), asset, config.settings, moment,
                                        fields.exp if fields else None)
    headers = {
        "Content-Type": content_type(key),
        "Cache-Control": cc,
        "ETag": f'"{info.etag}"',
        "Last-Modified": last_modified,
        "Accept-Ranges": "bytes",
        **purge_tags(asset_id),
        **cors,
    }
    if extra.get("Vary"):
        headers["Vary"] = ", ".join(v for v in (cors.get("Vary"), extra["Vary"]) if v)
    if asset.visibility == "private" or token is not None:
        headers["X-Robots-Tag"] = "noindex"

    if precondition_failed(request, info):
        raise _precondition(headers)
    if not_modified(request, info):
        keep = {k: v for k, v in headers.items() if k not in ("Content-Type", "Accept-Ranges")}
        return web.Response(status=304, headers=keep)

    byte_range = parse_range(request.headers.get("Range"), info.size) if if_range_allows(request, info) else None
    if byte_range is None:
        start, end, status = 0, info.size - 1, 200
    else:
        start, end = byte_range
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
    reuse = (reuse_seconds(config.settings.origin_offload_decision_seconds, asset.rights, fields, moment)
             if config.settings.origin_offload == "nginx" else 0)
    return await _send(request, config.settings, store_key, local, (start, end, info.size), status, headers, reuse)


async def _asset(request: web.Request, config: OriginConfig, asset_id: str) -> Asset:
    asset = config.assets.get(asset_id, _MISS)
    if asset is _MISS:
        try:
            asset = await get_asset(request.app[POOL], asset_id)
        except Exception as exc:
            # The database is down: ready media stays playable with metadata read at most
            # origin_stale_metadata_seconds ago (access rules still apply to it, rights windows included).
            stale = config.known.get(asset_id)
            if stale is None or stale.status != "ready" or not _database_down(exc):
                raise
            return stale
        config.assets.set(asset_id, asset)  # "no such asset" too: a storm of 404s is a storm all the same
        if asset is not None:
            config.known.set(asset_id, asset)
    if asset is None:
        raise NotFound(f"No media asset {asset_id}", code="asset-not-found")
    return asset


def _database_down(exc: BaseException) -> bool:
    problem = infrastructure_problem(exc)
    return isinstance(exc, TimeoutError) or (problem is not None and problem[1] != "insufficient-storage")


async def _object(request: web.Request, config: OriginConfig, asset_id: str, key: str, store_key: str
                  ) -> tuple[ObjectInfo, Path | None, str]:
    """The object's facts (size, ETag, local file if any, Last-Modified), cached a second per process."""
    entry = config.stats.get(store_key)
    if entry is None:
        store = request.app[STORE]
        try:
            async with asyncio.timeout(config.settings.origin_storage_timeout):
                info = await store.stat(store_key)
        except ObjectNotFound:
            raise NotFound(f"Asset {asset_id} has no object {key}", code="object-not-found") from None
        entry = (info, store.local_path(store_key), http_date(info.last_modified))
        config.stats.set(store_key, entry)
    return entry


async def _send(request: web.Request, settings: Settings, store_key: str, local: Path | None,
                span: tuple[int, int, int], status: int, headers: dict[str, str], reuse: int = 0
                ) -> web.StreamResponse:
    start, end, size = span
    store = request.app[STORE]
    if local is not None:
        if settings.origin_offload == "nginx" and offloadable(request, store_key, status):
            return offload_response(settings.origin_offload_prefix, store_key, status, headers, reuse)
        count = end - start + 1
        # Segments and playlists are small: one read and one write beat the sendfile dance (measured:
        # about 4x the requests/s for a 40 KB segment). Tiny reads are page-cache hits and cheaper
        # inline than a thread hop; larger ones go to a thread; big files by sendfile(2).
        if count <= INLINE_READ:
            return web.Response(status=status, headers=headers, body=_read(local, start, count))
        if count <= SMALL_OBJECT:
            body = await asyncio.to_thread(_read, local, start, count)
            return web.Response(status=status, headers=headers, body=body)
        return SendfileResponse(local, start, count, status=status, headers=headers)
    if settings.origin_offload == "nginx" and request.method == "GET":
        # HEAD stays here: onair has every header already, and S3 would only be asked for nothing
        url = await request.app[ORIGIN_CONFIG].presigned.url(store, store_key)
        return s3_offload_response(settings.origin_offload_prefix, url, (start, end), status, headers)
    if settings.s3_delivery == "redirect":
        url = await store.presigned_url(store_key, expires=300)
        redirect = {k: v for k, v in headers.items() if k not in ("Content-Type", "Content-Range", "Accept-Ranges",
                                                                  "ETag", "Last-Modified")}
        # The presigned URL lives 300 s; a cache may keep the redirect for part of that only.
        redirect["Cache-Control"] = "public, max-age=60"
        redirect["Location"] = url
        return web.Response(status=302, headers=redirect)
    return await _stream(request, store, store_key, start, end, size, status, headers)


class _PreconditionFailed(AppError):
    status, code, title = 412, "precondition-failed", "Precondition failed"


def _precondition(headers: dict[str, str]) -> AppError:
    return _PreconditionFailed("If-Match does not match the current object",
                               headers={k: v for k, v in headers.items() if k.startswith("Access-Control")})


async def preflight(request: web.Request) -> web.Response:
    """CORS preflight: players ask before sending Range or conditional headers cross-origin."""
    headers = cors_headers(request, request.app[ORIGIN_CONFIG].cors_origins)
    if "Access-Control-Allow-Origin" in headers:
        headers.update({"Access-Control-Allow-Methods": METHODS, "Access-Control-Allow-Headers": ALLOW_HEADERS,
                        "Access-Control-Max-Age": "86400"})
    headers["Cache-Control"] = "public, max-age=86400"
    if "Vary" not in headers:
        headers["Vary"] = "Origin, Access-Control-Request-Headers"
    return web.Response(status=204, headers=headers)


def signed_url(config: OriginConfig, asset_id: str, key: str, now: datetime, ip: str | None = None) -> str:
    """Absolute playback URL for a private/restricted asset, valid for `media_token_ttl` seconds.

    With CloudFront configured (key pair id, key file, domain) it is a CloudFront custom-policy URL
    covering ``/media/<id>/*`` (CloudFront verifies it; hand the same policy to players as signed
    cookies for segment requests). Otherwise an onair path token, which relative segment URLs inherit.
    """
    settings = config.settings
    exp = int(now.timestamp()) + settings.media_token_ttl
    if settings.cloudfront_key_pair_id and settings.cloudfront_private_key_file and settings.cloudfront_domain:
        base = settings.cloudfront_domain.rstrip("/")
        pem = Path(settings.cloudfront_private_key_file).read_bytes()
        return signing.cloudfront_url(f"{base}/media/{asset_id}/{key.lstrip('/')}", settings.cloudfront_key_pair_id,
                                      pem, exp, resource=f"{base}/media/{asset_id}/*", ip=ip)
    return settings.base_url + signing.signed_media_path(config.secret, asset_id, key, exp, ip)
