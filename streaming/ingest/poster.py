"""A custom poster: `POST /api/v1/assets/{id}/poster` with a JPEG, PNG or WebP image as the body replaces the
frame the transcoder picked.

The image is checked in the request (type from its first bytes, size, dimensions) and re-encoded as a JPEG no
wider than the player ever shows it: what is stored is always a plain image we wrote, never the uploaded
bytes (no metadata, no polyglot files), and its content-hashed name lets caches keep it forever."""

from __future__ import annotations

import asyncio
import hashlib
import io

from aiohttp import web
from PIL import Image, UnidentifiedImageError

from onair.core.auth import audit, requires
from onair.core.db.pool import POOL
from onair.core.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, UnsupportedMediaType
from onair.core.storage import STORE
from onair.core.web import base_url
from streaming import catalog

MAX_BYTES = 10 * 1024 * 1024  # a 4K JPEG straight from a camera is ~5 MB
MIN_SIZE = (320, 180)  # smaller looks blurred in the 640x360 embed
MAX_SIZE = (7680, 4320)  # 8K: beyond that it is a mistake (or a decompression bomb)
STORED_WIDTH = 1920
_TYPES = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"))


def sniff(data: bytes) -> str | None:
    for magic, name in _TYPES:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def normalised(data: bytes, kind: str) -> bytes:
    """The poster as a baseline JPEG at most STORED_WIDTH wide; BadRequest naming the field when unusable."""
    try:
        with Image.open(io.BytesIO(data), formats=[kind]) as img:
            width, height = img.size
            if width < MIN_SIZE[0] or height < MIN_SIZE[1]:
                raise BadRequest(f"poster: {width}x{height} is too small; at least {MIN_SIZE[0]}x{MIN_SIZE[1]}",
                                 code="poster-too-small", field="poster")
            if width > MAX_SIZE[0] or height > MAX_SIZE[1]:
                raise BadRequest(f"poster: {width}x{height} is too large; at most {MAX_SIZE[0]}x{MAX_SIZE[1]}",
                                 code="poster-too-large", field="poster")
            img.load()
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise BadRequest(f"poster: not a readable {kind} image", code="invalid-poster", field="poster") from None
    if rgb.width > STORED_WIDTH:
        rgb = rgb.resize((STORED_WIDTH, round(rgb.height * STORED_WIDTH / rgb.width)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


async def _body(request: web.Request) -> bytes:
    too_big = PayloadTooLarge(f"poster: images are limited to {MAX_BYTES // (1024 * 1024)} MB", field="poster")
    if request.content_length is not None and request.content_length > MAX_BYTES:
        raise too_big
    data = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > MAX_BYTES:
            raise too_big
    return bytes(data)


@requires("assets:write")
async def upload(request: web.Request) -> web.Response:
    asset_id = request.match_info["asset_id"]
    pool = request.app[POOL]
    asset = await catalog.existing_asset(pool, asset_id)
    if not asset.ready:
        raise Conflict("poster: a custom poster can be set once the asset is ready", field="poster")
    data = await _body(request)
    kind = sniff(data)
    if kind is None:
        raise UnsupportedMediaType("poster: send a JPEG, PNG or WebP image", field="poster")
    jpeg = await asyncio.to_thread(normalised, data, kind)
    key = f"poster-custom-{hashlib.sha256(jpeg).hexdigest()[:16]}.jpg"
    await request.app[STORE].put_bytes(asset.prefix + key, jpeg, "image/jpeg")
    if not await catalog.set_poster(pool, asset_id, key):
        raise NotFound(f"No asset {asset_id!r}")
    await audit(request, "asset.poster", object_type="asset", object_id=asset_id, detail={"poster": key})
    url = f"{base_url(request).rstrip('/')}/media/{asset_id}/{key}"
    return web.json_response({"poster": key, "url": url}, status=201)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/assets/{asset_id}/poster", upload, name="assets-poster")
