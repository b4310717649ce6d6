"""Caption and subtitle upload: `POST /api/v1/assets/{id}/captions?language=de&kind=subtitle` with the file as
the body (WebVTT, SRT or TTML/IMSC/EBU-TT-D; the format from `format`, the Content-Type or the first bytes).

The file is read and checked in the request (transcode.captions, with ttconv): a bad file is a 400 listing its
problems by line, and nothing is stored. A good one is converted (transcode.caption_tracks), every file of the
track is stored, and only then is the track added to the asset, whose manifests a job rewrites: no manifest
ever names a caption file that is not there. Uploading the same language and kind again replaces the track."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import langcodes
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from onair.core.auth import audit, requires
from onair.core.db.pool import POOL
from onair.core.errors import BadRequest, Conflict, PayloadTooLarge, parse_query
from onair.core.openapi import described
from onair.core.storage import STORE, ObjectStore
from onair.core.web import base_url
from streaming import catalog
from transcode import caption_tracks, captions

MAX_BYTES = 2 * 1024 * 1024   # a feature film's subtitles are ~100 KB as SRT; 2 MB leaves room for verbose TTML
PUBLISH_CONCURRENCY = 8


class CaptionQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    language: Annotated[str, Field(min_length=2, max_length=35)]
    kind: Literal["subtitle", "caption"] = "subtitle"   # caption: for the deaf and hard of hearing
    format: Literal["vtt", "srt", "ttml"] | None = None

    @field_validator("language")
    @classmethod
    def _language(cls, v: str) -> str:
        if not langcodes.tag_is_valid(v) or v == "und":
            raise ValueError(f"{v!r} is not a language tag (BCP 47 or ISO 639, e.g. 'de', 'fra')")
        return langcodes.standardize_tag(v)


async def _body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BYTES:
        raise PayloadTooLarge(f"caption files are limited to {MAX_BYTES} bytes")
    data = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > MAX_BYTES:
            raise PayloadTooLarge(f"caption files are limited to {MAX_BYTES} bytes")
    return bytes(data)


async def _store_all(store: ObjectStore, prefix: str, objects: dict[str, bytes]) -> None:
    """Every object or none: on any failure the ones already written go again."""
    sem = asyncio.Semaphore(PUBLISH_CONCURRENCY)

    async def put(key: str) -> None:
        async with sem:
            await store.put_bytes(prefix + key, objects[key])

    results = await asyncio.gather(*(put(k) for k in objects), return_exceptions=True)
    failed = next((r for r in results if isinstance(r, BaseException)), None)
    if failed is not None:
        await asyncio.gather(*(store.delete(prefix + k) for k in objects), return_exceptions=True)
        raise failed


@requires("assets:write")
@described(query=CaptionQuery)
async def upload(request: web.Request) -> web.Response:
    asset_id = request.match_info["asset_id"]
    q = parse_query(request, CaptionQuery)
    pool, store = request.app[POOL], request.app[STORE]
    asset = await catalog.existing_asset(pool, asset_id)
    outputs = asset.outputs or {}
    if not asset.ready or not asset.duration or not outputs.get("segment_duration"):
        raise Conflict("captions can be added once the asset is ready")
    data = await _body(request)
    fmt = captions.detect_format(request.content_type, q.format, data)
    try:
        cues = await asyncio.to_thread(captions.read, data, fmt, asset.duration)
    except captions.CaptionError as exc:
        raise BadRequest(f"the {fmt} file has {len(exc.problems)} problem(s); first: {exc.problems[0].message}",
                         code="invalid-captions", errors=[p.to_json() for p in exc.problems]) from None
    objects, entry = await asyncio.to_thread(caption_tracks.build, cues, q.language, q.kind,
                                             float(outputs["segment_duration"]), asset.duration)
    await _store_all(store, asset.prefix, objects)  # the published generation's, as the manifests
    async with pool.acquire() as conn, conn.transaction():
        await catalog.put_caption_track(conn, asset_id, {**entry, "format": fmt})
    await audit(request, "asset.captions", object_type="asset", object_id=asset_id,
                detail={"language": q.language, "kind": q.kind, "cues": len(cues)})
    base = f"{base_url(request).rstrip('/')}/media/{asset_id}/"
    return web.json_response({**entry, "format": fmt, "url": base + entry["vtt"]}, status=201)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/assets/{asset_id}/captions", upload, name="assets-captions")
