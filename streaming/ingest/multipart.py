"""Streamed multipart uploads (`POST /api/v1/assets` with a `file` part)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from onair.core.errors import BadRequest, PayloadTooLarge
from onair.core.settings import Settings
from streaming.ingest.originals import CHUNK, safe_name, staging_dir

MAX_FIELD_BYTES = 64 * 1024


@dataclass
class Received:
    path: Path
    size: int
    filename: str | None
    fields: dict[str, str]


async def receive_multipart(request: web.Request, settings: Settings) -> Received:
    """Stream the `file` part to a staging file, refusing (413) as soon as the limit is passed."""
    limit = settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + MAX_FIELD_BYTES:
        raise PayloadTooLarge(f"The upload is {request.content_length} bytes; the limit is {limit} bytes")
    try:
        reader = await request.multipart()
    except (AssertionError, ValueError, KeyError) as exc:
        raise BadRequest(f"Malformed multipart body ({exc})", code="invalid-multipart") from None
    fields: dict[str, str] = {}
    staged: Path | None = None
    size, filename = 0, None
    try:
        while True:
            try:
                part = await reader.next()
            except ValueError as exc:
                raise BadRequest(f"Malformed multipart body ({exc})", code="invalid-multipart") from None
            if part is None:
                break
            if not isinstance(part, aiohttp.BodyPartReader):
                raise BadRequest("Nested multipart bodies are not supported", code="invalid-multipart")
            if part.name == "file":
                if staged is not None:
                    raise BadRequest("Send exactly one 'file' part", code="invalid-multipart")
                filename = safe_name(part.filename)
                staged = staging_dir(settings) / f"mp-{secrets.token_hex(8)}"
                size = await _stream_part(part, staged, limit)
            elif part.name:
                data = await part.read(decode=True)
                if len(data) > MAX_FIELD_BYTES:
                    raise PayloadTooLarge(f"Field {part.name!r} is larger than {MAX_FIELD_BYTES} bytes")
                fields[part.name] = data.decode("utf-8", errors="replace")
        if staged is None:
            raise BadRequest("The multipart body has no 'file' part", code="missing-file")
        return Received(staged, size, filename, fields)
    except BaseException:
        if staged is not None:
            with contextlib.suppress(OSError):
                staged.unlink()
        raise


async def _stream_part(part: aiohttp.BodyPartReader, dest: Path, limit: int) -> int:
    size = 0
    f = await asyncio.to_thread(open, dest, "wb")
    with f:
        while chunk := await part.read_chunk(CHUNK):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"The upload is larger than the limit of {limit} bytes")
            await asyncio.to_thread(f.write, chunk)
    return size
