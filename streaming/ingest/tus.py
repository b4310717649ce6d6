"""Resumable uploads with the tus 1.0 protocol (core + creation + termination) at /api/v1/uploads/.

The protocol lives here; the upload's state and its bytes (staged in the object store, so a resumed PATCH may
land on any replica) in tus_store. A PATCH appends at the offset the row records; if the client drops
mid-request, the bytes that did arrive are kept and HEAD reports the new offset, so the client resumes from
there. When the last byte arrives the original is complete in the store and the transcode is queued, exactly
like a multipart upload.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets

from aiohttp import web

from onair.core.auth import requires
from onair.core.db.pool import POOL
from onair.core.errors import AppError, BadRequest, PayloadTooLarge, UnsupportedMediaType
from onair.core.settings import SETTINGS
from onair.core.storage import STORE
from streaming import catalog
from streaming.ingest import originals, tus_store
from streaming.ingest.tus_store import TUS_HEADERS, TUS_VERSION

EXTENSIONS = "creation,termination"
BASE = "/api/v1/uploads/"
CHUNK = 256 * 1024


class PreconditionFailed(AppError):
    status, code, title = 412, "unsupported-tus-version", "Precondition failed"


class BodyTimeout(AppError):
    status, code, title = 408, "body-timeout", "Request timeout"


def _tus_headers(request: web.Request) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION, "Tus-Extension": EXTENSIONS,
            "Tus-Max-Size": str(request.app[SETTINGS].max_upload_bytes), "Cache-Control": "no-store"}


def _check_version(request: web.Request) -> None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise PreconditionFailed(f"Send 'Tus-Resumable: {TUS_VERSION}'",
                                 headers={"Tus-Version": TUS_VERSION})


def parse_metadata(header: str) -> dict[str, str]:
    """`key base64value,key2 base64value2` (values optional)."""
    meta: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, value = pair.partition(" ")
        try:
            meta[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8", "replace") if value else ""
        except (binascii.Error, ValueError):
            raise BadRequest(f"Upload-Metadata value for {key!r} is not base64", code="invalid-metadata") from None
    return meta


def _int_header(request: web.Request, name: str) -> int:
    raw = request.headers.get(name)
    if raw is None or not raw.isdigit():
        raise BadRequest(f"{name} must be a non-negative integer", code="invalid-header")
    return int(raw)


async def options(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=_tus_headers(request))


@requires("assets:write")
async def create(request: web.Request) -> web.Response:
    _check_version(request)
    settings = request.app[SETTINGS]
    length = _int_header(request, "Upload-Length")
    if length > settings.max_upload_bytes:
        raise PayloadTooLarge(f"Upload-Length {length} is above the limit of {settings.max_upload_bytes} bytes")
    meta = parse_metadata(request.headers.get("Upload-Metadata", ""))
    upload_id, asset_id = secrets.token_hex(16), catalog.new_asset_id()
    filename = originals.safe_name(meta.get("filename"))
    pool, store = request.app[POOL], request.app[STORE]
    await tus_store.create(pool, store, upload_id=upload_id, asset_id=asset_id, length=length, metadata=meta,
                           title=(meta.get("title") or filename or "")[:500],
                           description=meta.get("description", "")[:10_000],
                           tags=originals.parse_tags(meta.get("tags")), source_name=filename)
    if length == 0:
        upload, token = await tus_store.claim(pool, upload_id, 0, settings.tus_lease_seconds)
        await tus_store.Writer(pool, store, upload, token, settings.tus_lease_seconds).complete()
    return web.Response(status=201, headers={**_tus_headers(request), "Location": BASE + upload_id,
                                             "Onair-Asset-Id": asset_id, "Upload-Offset": "0"})


@requires("assets:write")
async def head(request: web.Request) -> web.Response:
    _check_version(request)
    upload = await tus_store.get(request.app[POOL], request.match_info["upload_id"])
    return web.Response(status=200, headers={**_tus_headers(request), "Upload-Offset": str(upload.offset),
                                             "Upload-Length": str(upload.length), "Onair-Asset-Id": upload.asset_id})


@requires("assets:write")
async def patch(request: web.Request) -> web.Response:
    _check_version(request)
    if request.content_type != "application/offset+octet-stream":
        raise UnsupportedMediaType("PATCH needs Content-Type: application/offset+octet-stream")
    claimed = _int_header(request, "Upload-Offset")
    settings = request.app[SETTINGS]
    lease, idle = settings.tus_lease_seconds, settings.tus_idle_seconds
    pool = request.app[POOL]
    # One short statement takes the lease; no database connection is held while the body arrives.
    upload, token = await tus_store.claim(pool, request.match_info["upload_id"], claimed, lease, idle)
    writer = tus_store.Writer(pool, request.app[STORE], upload, token, lease)
    try:
        while True:
            try:
                async with asyncio.timeout(idle):  # a client that went silent must not hold its claim
                    chunk = await request.content.read(CHUNK)
            except TimeoutError:
                # Release, but commit nothing: the client may already be resuming on a new connection from the
                # offset HEAD gave it, which must not move behind its back. It resends these bytes.
                await asyncio.shield(writer.release())
                raise BodyTimeout(f"No body bytes for {idle:g} s; send HEAD and resume from its Upload-Offset",
                                  headers=TUS_HEADERS) from None
            if not chunk:
                break
            await writer.feed(chunk)
    except BodyTimeout:
        raise
    except BaseException:
        # Also when the client went away: keep what arrived so it can resume from there.
        await asyncio.shield(writer.persist())
        raise
    if writer.position == upload.length:
        await asyncio.shield(writer.complete())
    else:
        await asyncio.shield(writer.persist())
    return web.Response(status=204, headers={**TUS_HEADERS, "Upload-Offset": str(writer.position),
                                             "Onair-Asset-Id": upload.asset_id})


@requires("assets:write")
async def terminate(request: web.Request) -> web.Response:
    _check_version(request)
    await tus_store.terminate(request.app[POOL], request.app[STORE], request.match_info["upload_id"])
    return web.Response(status=204, headers=TUS_HEADERS)


def setup(app: web.Application) -> None:
    app.router.add_route("OPTIONS", BASE, options)
    app.router.add_post(BASE, create, name="tus-create")
    app.router.add_route("OPTIONS", BASE + "{upload_id}", options)
    app.router.add_route("HEAD", BASE + "{upload_id}", head, name="tus-head")
    app.router.add_patch(BASE + "{upload_id}", patch, name="tus-patch")
    app.router.add_delete(BASE + "{upload_id}", terminate, name="tus-delete")
