"""Getting originals in: streamed multipart uploads and URL pulls (tus lives in streaming/tus.py).

Every path ends the same way: the original is stored at `sources/<id>/original` (never a client-chosen name)
and a transcode job is queued in the same transaction that points the asset at it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import re
import secrets
import socket
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import asyncpg
from aiohttp import web

from onair.errors import BadRequest, PayloadTooLarge
from onair.jobs import JobContext, PermanentJobError
from onair.settings import Settings
from streaming import catalog

log = logging.getLogger("onair.ingest")

MAX_FIELD_BYTES = 64 * 1024
MAX_REDIRECTS = 5
URL_PULL_SECONDS = 30 * 60
CHUNK = 256 * 1024


def staging_dir(settings: Settings) -> Path:
    path = settings.data_dir / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def safe_name(filename: str | None) -> str | None:
    """The client's file name as harmless metadata: basename only, printable, short."""
    if not filename:
        return None
    name = re.split(r"[\\/]", filename)[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if ch.isprintable())
    name = name.strip().lstrip(".")
    return name[:200] or None


def parse_tags(raw: Any) -> list[str]:
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else str(raw).split(",")
    tags = []
    for item in items:
        tag = str(item).strip()[:64]
        if tag and tag not in tags:
            tags.append(tag)
    return tags[:50]


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


async def store_and_queue(pool: asyncpg.Pool, store: Any, asset_id: str, staged: Path, size: int) -> int:
    """Store the original, then point the asset at it and queue the transcode in one transaction."""
    key = catalog.source_key(asset_id)
    await store.put_file(key, staged, "application/octet-stream")
    async with pool.acquire() as conn, conn.transaction():
        return await catalog.start_transcode(conn, asset_id, key, size)


# --- URL pull --------------------------------------------------------------------------------------------

class UrlRejected(ValueError):
    pass


def check_url_shape(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UrlRejected("only http and https URLs can be pulled")
    if not parts.hostname:
        raise UrlRejected("the URL has no host")
    if parts.username or parts.password:
        raise UrlRejected("URLs with credentials are not accepted")
    return url


def check_url(url: str, allow_private: bool) -> str:
    """What can be told without DNS, at request time: the shape, and no literal loopback/private target.
    The pull itself resolves the host and re-checks every redirect hop (check_destination)."""
    check_url_shape(url)
    host = (urlsplit(url).hostname or "").lower()
    if allow_private:
        return url
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        raise UrlRejected("the URL points at this machine; refused")
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return url
    if not addr.is_global or addr.is_multicast:
        raise UrlRejected(f"the URL points at a private or loopback address ({addr}); refused")
    return url


async def check_destination(url: str, allow_private: bool) -> None:
    """Resolve the host and refuse loopback, private, link-local and other non-public addresses."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UrlRejected(f"the host {host!r} does not resolve") from None
    if allow_private:
        return
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if not addr.is_global or addr.is_multicast:
            raise UrlRejected(f"the URL points at a private or loopback address ({addr}); refused")


async def pull(url: str, dest: Path, settings: Settings) -> int:
    """Download with redirects followed by hand (each hop re-checked), a size cap and a time limit."""
    limit = settings.max_upload_bytes
    timeout = aiohttp.ClientTimeout(total=URL_PULL_SECONDS, sock_connect=15, sock_read=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for _hop in range(MAX_REDIRECTS + 1):
            check_url_shape(url)
            await check_destination(url, settings.allow_private_urls)
            async with session.get(url, allow_redirects=False) as resp:
                if resp.status in (301, 302, 303, 307, 308):
                    location = resp.headers.get("Location")
                    if not location:
                        raise UrlRejected(f"redirect {resp.status} without a Location")
                    url = urljoin(url, location)
                    continue
                if resp.status != 200:
                    raise UrlRejected(f"the server answered HTTP {resp.status}")
                if resp.content_length is not None and resp.content_length > limit:
                    raise UrlRejected(f"the file is {resp.content_length} bytes; the limit is {limit} bytes")
                size = 0
                f = await asyncio.to_thread(open, dest, "wb")
                with f:
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        size += len(chunk)
                        if size > limit:
                            raise UrlRejected(f"the file is larger than the limit of {limit} bytes")
                        await asyncio.to_thread(f.write, chunk)
                return size
        raise UrlRejected(f"more than {MAX_REDIRECTS} redirects")


async def fetch_handler(ctx: JobContext) -> dict[str, Any]:
    """Job `ingest.fetch`: pull the URL into the store, then queue the transcode."""
    res = ctx.resources
    asset_id, url = ctx.payload["asset_id"], ctx.payload["url"]
    dest = staging_dir(res.settings) / f"url-{ctx.job.id}"
    try:
        try:
            size = await pull(url, dest, res.settings)
        except UrlRejected as exc:
            raise PermanentJobError(f"URL pull refused: {exc}") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PermanentJobError(f"URL pull failed: {type(exc).__name__} {exc}".strip()) from None
        if await catalog.get_asset(res.pool, asset_id) is None:
            return {"skipped": "asset deleted"}
        job_id = await store_and_queue(res.pool, res.store, asset_id, dest, size)
        return {"bytes": size, "transcode_job": job_id}
    except PermanentJobError as exc:
        await catalog.delete_objects(res.store, asset_id)  # before `failed` is visible, as in tasks.transcoded
        await catalog.mark_failed(res.pool, asset_id, str(exc))
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(dest)
