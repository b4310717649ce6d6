"""Ingest API: create an asset from an upload (multipart) or a URL, retry a failed one; tus is in tus.py."""

from __future__ import annotations

import contextlib
import os
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from onair.core.auth import principal, requires
from onair.core.db.pool import POOL
from onair.core.errors import BadRequest, Conflict, UnsupportedMediaType, read_json
from onair.core.openapi import described
from onair.core.safe_urls import UrlRejected, check_url
from onair.core.settings import SETTINGS, Settings
from onair.core.storage import STORE, ObjectNotFound
from streaming import catalog
from streaming.ingest import captions, multipart, originals, poster, replace, tus


def _settings(request: web.Request) -> Settings:
    return request.app[SETTINGS]


class UrlIngest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source_url: Annotated[str, Field(max_length=4096)]
    title: Annotated[str, Field(max_length=500)] = ""
    description: Annotated[str, Field(max_length=10_000)] = ""
    tags: list[str] = []
    loudness_target: Literal["broadcast", "web", "off"] | None = None   # None: the deployment's setting
    ladder: Literal["fixed", "per_title"] | None = None


# Media choices a multipart upload may carry as form fields, with what each accepts (as UrlIngest's).
CHOICES = {"loudness_target": ("broadcast", "web", "off"), "ladder": ("fixed", "per_title")}


def _choices(fields: dict[str, str]) -> dict[str, str]:
    out = {}
    for name, allowed in CHOICES.items():
        value = fields.get(name)
        if value is None or value == "":
            continue
        if value not in allowed:
            raise BadRequest(f"{name}: must be one of {', '.join(allowed)} (got {value[:50]!r})",
                             code="invalid-body", field=name)
        out[name] = value
    return out


@requires("assets:write")
@described(body=UrlIngest)
async def create(request: web.Request) -> web.Response:
    settings = _settings(request)
    pool, store = request.app[POOL], request.app[STORE]
    ctype = request.content_type
    asset_id = catalog.new_asset_id()
    if ctype == "multipart/form-data":
        received = await multipart.receive_multipart(request, settings)
        try:
            f = received.fields
            await catalog.create_asset(pool, asset_id, title=f.get("title", "")[:500] or (received.filename or ""),
                                       description=f.get("description", "")[:10_000],
                                       tags=originals.parse_tags(f.get("tags")), source_name=received.filename,
                                       **_choices(f))
            await originals.store_and_queue(pool, store, asset_id, received.path, received.size)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(received.path)
    elif ctype == "application/json" or ctype.endswith("+json"):
        body = await read_json(request, UrlIngest)
        try:
            url = check_url(body.source_url, _settings(request).allow_private_urls)
        except UrlRejected as exc:
            raise BadRequest(str(exc), code="invalid-source-url") from None
        who = await principal(request)
        by = f"{who.role}:{who.name}" if who else ""
        async with pool.acquire() as conn, conn.transaction():
            await catalog.create_asset(conn, asset_id, title=body.title, description=body.description,
                                       tags=originals.parse_tags(body.tags), source_url=url,
                                       **body.model_dump(include=set(CHOICES), exclude_none=True))
            await catalog.start_url_pull(conn, asset_id, url, by, settings.url_pull_per_caller)
    else:
        raise UnsupportedMediaType(f"Send multipart/form-data with a 'file' part, or JSON with 'source_url' "
                                   f"(got {ctype or 'no content type'})")
    location = f"/api/v1/assets/{asset_id}"
    return web.json_response({"id": asset_id, "status": "queued"}, status=202, headers={"Location": location})


@requires("assets:write")
async def retry(request: web.Request) -> web.Response:
    asset_id = request.match_info["asset_id"]
    pool, store = request.app[POOL], request.app[STORE]
    asset = await catalog.existing_asset(pool, asset_id)
    if asset.status in ("queued", *catalog.ACTIVE_STAGES, "uploading") or catalog.replacing(asset):
        raise Conflict("The asset is already being processed")
    try:
        info = await store.stat(asset.source_key or catalog.source_key(asset_id))
    except ObjectNotFound:
        info = None
    async with pool.acquire() as conn, conn.transaction():
        if info is not None and asset.ready:  # a new transcode of what plays (new choices): it stays playing
            await catalog.start_replacement(conn, asset_id, info.key, info.size)
            return web.json_response({"id": asset_id, "status": asset.status, "replacement": {"status": "queued"}},
                                     status=202)
        if info is not None:
            await catalog.start_transcode(conn, asset_id, info.key, info.size)
        elif asset.source_key is None and (url := await catalog.source_url(conn, asset_id)):
            await catalog.start_url_pull(conn, asset_id, url)
        else:
            raise Conflict("The original is no longer stored; upload it again")
    return web.json_response({"id": asset_id, "status": "queued"}, status=202)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/assets", create, name="assets-create")
    app.router.add_post("/api/v1/assets/{asset_id}/retry", retry, name="assets-retry")
    tus.setup(app)
    replace.setup(app)
    captions.setup(app)
    poster.setup(app)
