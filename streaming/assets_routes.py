"""Assets API: upload (multipart or URL), read, list, patch, retry, delete; tus uploads are in streaming/tus.py."""

from __future__ import annotations

import base64
import contextlib
import json
import os
from datetime import datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from onair.auth import admin_required, is_admin
from onair.db.pool import POOL
from onair.errors import BadRequest, Conflict, NotFound, UnsupportedMediaType, parse_query, read_json
from onair.jobs import enqueue
from onair.settings import SETTINGS, Settings
from onair.storage import STORE, ObjectNotFound
from streaming import catalog, ingest, purge, tus
from streaming.rights import CountryCode


def _settings(request: web.Request) -> Settings:
    return request.app[SETTINGS]


class UrlIngest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source_url: Annotated[str, Field(max_length=4096)]
    title: Annotated[str, Field(max_length=500)] = ""
    description: Annotated[str, Field(max_length=10_000)] = ""
    tags: list[str] = []


class AssetPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(max_length=500)] | None = None
    description: Annotated[str, Field(max_length=10_000)] | None = None
    tags: list[Annotated[str, Field(max_length=64)]] | None = None
    show: Annotated[str, Field(max_length=200)] | None = None
    visibility: Literal["public", "unlisted", "private"] | None = None
    available_from: AwareDatetime | None = None
    available_until: AwareDatetime | None = None
    geo_allow: list[CountryCode] | None = None
    geo_deny: list[CountryCode] | None = None
    credit: Annotated[str, Field(max_length=500)] | None = None
    copyright: Annotated[str, Field(max_length=500)] | None = None
    rating: Annotated[str, Field(max_length=50)] | None = None
    embed_origins: list[Annotated[str, Field(max_length=300)]] | None = None

    @field_validator("geo_allow", "geo_deny")
    @classmethod
    def _distinct(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else sorted(set(v))


class ListQuery(BaseModel):
    status: Literal["uploading", "queued", "probing", "transcoding", "packaging", "ready", "failed"] | None = None
    tag: Annotated[str, Field(max_length=64)] | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: Annotated[str, Field(max_length=200)] | None = None


def _cursor(asset: catalog.Asset) -> str:
    raw = json.dumps([asset.created_at.isoformat(), asset.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _uncursor(value: str) -> tuple[datetime, str]:
    try:
        created, asset_id = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        return datetime.fromisoformat(created), str(asset_id)
    except (ValueError, TypeError):
        raise BadRequest("invalid cursor", code="invalid-query") from None


@admin_required
async def create(request: web.Request) -> web.Response:
    settings = _settings(request)
    pool, store = request.app[POOL], request.app[STORE]
    ctype = request.content_type
    asset_id = catalog.new_asset_id()
    if ctype == "multipart/form-data":
        received = await ingest.receive_multipart(request, settings)
        try:
            f = received.fields
            await catalog.create_asset(pool, asset_id, title=f.get("title", "")[:500] or (received.filename or ""),
                                       description=f.get("description", "")[:10_000],
                                       tags=ingest.parse_tags(f.get("tags")), source_name=received.filename)
            await ingest.store_and_queue(pool, store, asset_id, received.path, received.size)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(received.path)
    elif ctype == "application/json" or ctype.endswith("+json"):
        body = await read_json(request, UrlIngest)
        try:
            url = ingest.check_url(body.source_url, _settings(request).allow_private_urls)
        except ingest.UrlRejected as exc:
            raise BadRequest(str(exc), code="invalid-source-url") from None
        async with pool.acquire() as conn, conn.transaction():
            await catalog.create_asset(conn, asset_id, title=body.title, description=body.description,
                                       tags=ingest.parse_tags(body.tags), source_url=url)
            job_id = await enqueue(conn, catalog.FETCH_JOB, {"asset_id": asset_id, "url": url}, max_attempts=1)
            await conn.execute("UPDATE assets SET job_id = $2 WHERE id = $1", asset_id, job_id)
    else:
        raise UnsupportedMediaType(f"Send multipart/form-data with a 'file' part, or JSON with 'source_url' "
                                   f"(got {ctype or 'no content type'})")
    location = f"/api/v1/assets/{asset_id}"
    return web.json_response({"id": asset_id, "status": "queued"}, status=202, headers={"Location": location})


async def read(request: web.Request) -> web.Response:
    found = await catalog.get_asset_live(request.app[POOL], request.match_info["asset_id"])
    # Private assets do not exist for the public; drafts are visible to admins only.
    if found is None or (found[0].visibility == "private" and not is_admin(request)):
        raise NotFound(f"No asset {request.match_info['asset_id']!r}")
    asset, live = found
    body = catalog.asset_json(asset, live, _settings(request).base_url)
    return web.json_response(body, headers={"Cache-Control": "no-store" if asset.status != "ready" else
                                            "public, max-age=10"})


@admin_required
async def listing(request: web.Request) -> web.Response:
    q = parse_query(request, ListQuery)
    before = _uncursor(q.cursor) if q.cursor else None
    items = await catalog.list_assets(request.app[POOL], status=q.status, tag=q.tag, limit=q.limit, before=before)
    base = _settings(request).base_url
    body: dict = {"items": [catalog.asset_json(a, live, base) for a, live in items], "next": None}
    if len(items) == q.limit:
        body["next"] = _cursor(items[-1][0])
    return web.json_response(body, headers={"Cache-Control": "no-store"})


# Changing any of these changes who may fetch the media or what feeds list: the CDN must forget the asset.
PURGING_FIELDS = frozenset({"visibility", "available_from", "available_until", "geo_allow", "geo_deny"})


@admin_required
async def patch(request: web.Request) -> web.Response:
    asset_id = request.match_info["asset_id"]
    body = await read_json(request, AssetPatch)
    changes = body.model_dump(exclude_unset=True)
    for key in ("title", "description", "tags", "visibility", "geo_allow", "geo_deny", "embed_origins"):
        if key in changes and changes[key] is None:
            raise BadRequest(f"{key} cannot be null", code="invalid-body")
    pool = request.app[POOL]
    current = await catalog.get_asset(pool, asset_id)
    if current is None:
        raise NotFound(f"No asset {asset_id!r}")
    start = changes.get("available_from", current.rights.available_from)
    end = changes.get("available_until", current.rights.available_until)
    if start and end and end <= start:
        raise BadRequest("available_until must be after available_from", code="invalid-body")
    await catalog.update_asset(pool, asset_id, changes)
    if PURGING_FIELDS & changes.keys():  # what the origin and feeds answer has changed: drop CDN copies
        await purge.purge_asset(request.app, asset_id, "unpublished" if changes.get("visibility") == "private"
                                else "rights-changed")
    found = await catalog.get_asset_live(pool, asset_id)
    assert found is not None
    return web.json_response(catalog.asset_json(*found, _settings(request).base_url))


@admin_required
async def delete(request: web.Request) -> web.Response:
    asset_id = request.match_info["asset_id"]
    if not await catalog.delete_asset(request.app[POOL], request.app[STORE], asset_id):
        raise NotFound(f"No asset {asset_id!r}")
    await purge.purge_asset(request.app, asset_id, "deleted")
    return web.Response(status=204)


@admin_required
async def retry(request: web.Request) -> web.Response:
    asset_id = request.match_info["asset_id"]
    pool, store = request.app[POOL], request.app[STORE]
    found = await catalog.get_asset_live(pool, asset_id)
    if found is None:
        raise NotFound(f"No asset {asset_id!r}")
    asset, live = found
    if catalog.effective_status(asset, live) in ("queued", *catalog.ACTIVE_STAGES, "uploading"):
        raise Conflict("The asset is already being processed")
    try:
        info = await store.stat(catalog.source_key(asset_id))
    except ObjectNotFound:
        info = None
    async with pool.acquire() as conn, conn.transaction():
        if info is not None:
            await catalog.start_transcode(conn, asset_id, info.key, info.size)
        elif asset.source_key is None and (url := (await conn.fetchval(
                "SELECT source_url FROM assets WHERE id = $1", asset_id))):
            job_id = await enqueue(conn, catalog.FETCH_JOB, {"asset_id": asset_id, "url": url}, max_attempts=1)
            await conn.execute("UPDATE assets SET job_id = $2, status = 'queued', error = NULL, progress = 0 "
                               "WHERE id = $1", asset_id, job_id)
        else:
            raise Conflict("The original is no longer stored; upload it again")
    return web.json_response({"id": asset_id, "status": "queued"}, status=202)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/assets", create, name="assets-create")
    app.router.add_get("/api/v1/assets", listing, name="assets-list")
    app.router.add_get("/api/v1/assets/{asset_id}", read, name="assets-read")
    app.router.add_patch("/api/v1/assets/{asset_id}", patch, name="assets-patch")
    app.router.add_delete("/api/v1/assets/{asset_id}", delete, name="assets-delete")
    app.router.add_post("/api/v1/assets/{asset_id}/retry", retry, name="assets-retry")
    tus.setup(app)
