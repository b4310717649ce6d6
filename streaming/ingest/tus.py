"""Resumable uploads with the tus 1.0 protocol (core + creation + termination) at /api/v1/uploads/.

State lives in PostgreSQL (`uploads` row: length, offset); bytes are staged in a local file under the data dir.
A PATCH appends at the offset the row records; if the client drops mid-request, the bytes that did arrive are
kept and HEAD reports the new offset, so the client resumes from there. When the last byte arrives the original
is stored and the transcode is queued, exactly like a multipart upload.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

from onair.core.auth import requires
from onair.core.db.pool import POOL
from onair.core.errors import AppError, BadRequest, Conflict, NotFound, PayloadTooLarge, UnsupportedMediaType
from onair.core.settings import SETTINGS
from onair.core.storage import STORE
from streaming import catalog
from streaming.ingest import originals

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,termination"
BASE = "/api/v1/uploads/"
CHUNK = 256 * 1024


class PreconditionFailed(AppError):
    status, code, title = 412, "unsupported-tus-version", "Precondition failed"


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
    staging = originals.staging_dir(settings) / f"tus-{upload_id}"
    await asyncio.to_thread(staging.touch)
    filename = originals.safe_name(meta.get("filename"))
    pool = request.app[POOL]
    async with pool.acquire() as conn, conn.transaction():
        await catalog.create_asset(conn, asset_id, title=(meta.get("title") or filename or "")[:500],
                                   description=meta.get("description", "")[:10_000],
                                   tags=originals.parse_tags(meta.get("tags")), status="uploading",
                                   source_name=filename)
        await conn.execute("""INSERT INTO uploads (id, asset_id, length, metadata, staging)
                              VALUES ($1, $2, $3, $4::jsonb, $5)""", upload_id, asset_id, length, meta, str(staging))
    headers = {**_tus_headers(request), "Location": BASE + upload_id, "Onair-Asset-Id": asset_id,
               "Upload-Offset": "0"}
    if length == 0:
        await _complete(request, upload_id, asset_id, staging, 0)
    return web.Response(status=201, headers=headers)


async def _row(db: Any, upload_id: str) -> Any:
    row = await db.fetchrow("SELECT * FROM uploads WHERE id = $1", upload_id)
    if row is None:
        raise NotFound(f"No upload {upload_id!r}", headers={"Tus-Resumable": TUS_VERSION})
    return row


@requires("assets:write")
async def head(request: web.Request) -> web.Response:
    _check_version(request)
    row = await _row(request.app[POOL], request.match_info["upload_id"])
    return web.Response(status=200, headers={**_tus_headers(request), "Upload-Offset": str(row["offset"]),
                                             "Upload-Length": str(row["length"]), "Onair-Asset-Id": row["asset_id"]})


def _write_at(path: Path, offset: int):
    f = open(path, "r+b")  # closed by the caller
    f.seek(offset)
    f.truncate()  # bytes past the recorded offset were never acknowledged
    return f


@requires("assets:write")
async def patch(request: web.Request) -> web.Response:
    _check_version(request)
    if request.content_type != "application/offset+octet-stream":
        raise UnsupportedMediaType("PATCH needs Content-Type: application/offset+octet-stream")
    upload_id = request.match_info["upload_id"]
    claimed = _int_header(request, "Upload-Offset")
    pool = request.app[POOL]
    async with pool.acquire() as conn:
        # A session advisory lock (not a transaction): offsets written mid-request commit on their own, so an
        # interrupted PATCH still records the bytes that arrived.
        if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", upload_id):
            raise Conflict("Another PATCH to this upload is in progress")
        try:
            row = await _row(conn, upload_id)
            if row["completed"]:
                raise Conflict("The upload is already complete", headers={"Tus-Resumable": TUS_VERSION})
            if claimed != row["offset"]:
                raise Conflict(f"Upload-Offset {claimed} does not match the server's offset {row['offset']}",
                               headers={"Tus-Resumable": TUS_VERSION})
            length, offset, staging = row["length"], row["offset"], Path(row["staging"])
            f = await asyncio.to_thread(_write_at, staging, offset)
            try:
                with f:
                    async for chunk in request.content.iter_chunked(CHUNK):
                        if offset + len(chunk) > length:
                            raise BadRequest("More bytes than Upload-Length", code="upload-overflow")
                        await asyncio.to_thread(f.write, chunk)
                        offset += len(chunk)
            finally:
                # Also when the client went away: keep what arrived so it can resume from there.
                await asyncio.shield(conn.execute(
                    'UPDATE uploads SET "offset" = $2, completed = ($2 = length) WHERE id = $1', upload_id, offset))
        finally:
            await asyncio.shield(conn.execute("SELECT pg_advisory_unlock(hashtext($1))", upload_id))
    headers = {"Tus-Resumable": TUS_VERSION, "Upload-Offset": str(offset), "Onair-Asset-Id": row["asset_id"]}
    if offset == length:
        await _complete(request, upload_id, row["asset_id"], staging, length)
    return web.Response(status=204, headers=headers)


async def _complete(request: web.Request, upload_id: str, asset_id: str, staging: Path, size: int) -> None:
    pool = request.app[POOL]
    try:
        await originals.store_and_queue(pool, request.app[STORE], asset_id, staging, size)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(staging)
    await pool.execute("DELETE FROM uploads WHERE id = $1", upload_id)


@requires("assets:write")
async def terminate(request: web.Request) -> web.Response:
    _check_version(request)
    upload_id = request.match_info["upload_id"]
    pool = request.app[POOL]
    row = await _row(pool, upload_id)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM uploads WHERE id = $1", upload_id)
        await conn.execute("DELETE FROM assets WHERE id = $1 AND status = 'uploading'", row["asset_id"])
    with contextlib.suppress(OSError):
        os.unlink(row["staging"])
    return web.Response(status=204, headers={"Tus-Resumable": TUS_VERSION})


def setup(app: web.Application) -> None:
    app.router.add_route("OPTIONS", BASE, options)
    app.router.add_post(BASE, create, name="tus-create")
    app.router.add_route("OPTIONS", BASE + "{upload_id}", options)
    app.router.add_route("HEAD", BASE + "{upload_id}", head, name="tus-head")
    app.router.add_patch(BASE + "{upload_id}", patch, name="tus-patch")
    app.router.add_delete(BASE + "{upload_id}", terminate, name="tus-delete")
