"""Catalogue API: read, list, patch and delete assets (creating them is ingest's: streaming/ingest/routes.py)."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from onair.core import clock
from onair.core.auth import audit, has_permission, label, requires
from onair.core.db.pool import POOL
from onair.core.errors import BadRequest, NotFound, parse_query, read_json
from onair.core.openapi import described
from onair.core.storage import STORE
from onair.core.web import base_url
from streaming import catalog
from streaming.catalog import changes
from streaming.catalog.audio import AudioTrackEdit, corrected
from streaming.catalog.rights import CountryCode, in_window
from streaming.delivery import purge


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
    audio_tracks: list[AudioTrackEdit] | None = None   # corrections of published tracks (language, role, name)
    # applied by the next transcode (POST /api/v1/assets/{id}/retry); null returns to the deployment's setting
    loudness_target: Literal["broadcast", "web", "off"] | None = None
    ladder: Literal["fixed", "per_title"] | None = None

    @field_validator("geo_allow", "geo_deny")
    @classmethod
    def _distinct(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else sorted(set(v))


class ListQuery(BaseModel):
    status: Literal["uploading", "queued", "probing", "transcoding", "packaging", "ready", "failed"] | None = None
    tag: Annotated[str, Field(max_length=64)] | None = None
    q: Annotated[str, Field(max_length=200)] | None = None  # full text: title, tags, description
    show: Annotated[str, Field(max_length=200)] | None = None
    visibility: Literal["public", "unlisted", "private"] | None = None
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


@label("public|assets:read")  # private assets: editors and admins only
async def read(request: web.Request) -> web.Response:
    asset = await catalog.get_asset(request.app[POOL], request.match_info["asset_id"])
    # Private assets, and any asset outside its rights window (embargoed, expired), do not exist for the
    # public: not its title, not its URLs. Editors see everything.
    hidden = asset is not None and (asset.visibility == "private"
                                    or not in_window(asset.rights, clock.now(request.app)))
    if asset is None or (hidden and not await has_permission(request, "assets:read")):
        raise NotFound(f"No asset {request.match_info['asset_id']!r}")
    body = catalog.asset_json(asset, base_url(request))
    moving = asset.status != "ready" or catalog.replacing(asset)  # a replacement's progress is news too
    return web.json_response(body, headers={"Cache-Control": "no-store" if moving else "public, max-age=10"})


@requires("assets:read")
@described(query=ListQuery)
async def listing(request: web.Request) -> web.Response:
    q = parse_query(request, ListQuery)
    before = _uncursor(q.cursor) if q.cursor else None
    items = await catalog.list_assets(request.app[POOL], status=q.status, tag=q.tag, limit=q.limit, before=before,
                                      text=q.q, show=q.show, visibility=q.visibility)
    base = base_url(request)
    body: dict = {"items": [catalog.asset_json(a, base) for a in items], "next": None}
    if len(items) == q.limit:
        body["next"] = _cursor(items[-1])
    return web.json_response(body, headers={"Cache-Control": "no-store"})


# Changing any of these changes who may fetch the media or what feeds list: the CDN must forget the asset.
PURGING_FIELDS = frozenset({"visibility", "available_from", "available_until", "geo_allow", "geo_deny"})


@requires("assets:write")
@described(body=AssetPatch)
async def patch(request: web.Request) -> web.Response:
    asset_id = request.match_info["asset_id"]
    body = await read_json(request, AssetPatch)
    changes = body.model_dump(exclude_unset=True)
    for key in ("title", "description", "tags", "visibility", "geo_allow", "geo_deny", "embed_origins"):
        if key in changes and changes[key] is None:
            raise BadRequest(f"{key} cannot be null", code="invalid-body")
    pool = request.app[POOL]
    current = await catalog.existing_asset(pool, asset_id)
    start = changes.get("available_from", current.rights.available_from)
    end = changes.get("available_until", current.rights.available_until)
    if start and end and end <= start:
        raise BadRequest("available_until must be after available_from", code="invalid-body")
    tracks = None
    if body.audio_tracks is not None:
        if not current.ready:
            raise BadRequest("audio_tracks: the asset has no published media yet", code="invalid-body")
        tracks = corrected((current.outputs or {}).get("audio_tracks") or [], body.audio_tracks)
    async with pool.acquire() as conn, conn.transaction():
        await catalog.update_asset(conn, asset_id, changes)
        if tracks is not None:
            # the manifests follow in a job; the CDN is purged after it
            await catalog.relabel_tracks(conn, asset_id, audio_tracks=tracks)
    await audit(request, "asset.update", object_type="asset", object_id=asset_id,
                detail={"fields": sorted(changes)})  # visibility, rights windows, geo, metadata
    if PURGING_FIELDS & changes.keys():  # what the origin and feeds answer has changed: drop CDN copies
        await purge.purge_asset(request.app, asset_id, "unpublished" if changes.get("visibility") == "private"
                                else "rights-changed")
    updated = await catalog.get_asset(pool, asset_id)
    assert updated is not None
    return web.json_response(catalog.asset_json(updated, base_url(request)))


@requires("assets:write")
async def delete(request: web.Request) -> web.Response:
    asset_id = request.match_info["asset_id"]
    if not await catalog.delete_asset(request.app[POOL], request.app[STORE], asset_id):
        raise NotFound(f"No asset {asset_id!r}")
    await audit(request, "asset.delete", object_type="asset", object_id=asset_id)
    await purge.purge_asset(request.app, asset_id, "deleted")
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    changes.setup(app)
    app.router.add_get("/api/v1/assets", listing, name="assets-list")
    app.router.add_get("/api/v1/assets/{asset_id}", read, name="assets-read")
    app.router.add_patch("/api/v1/assets/{asset_id}", patch, name="assets-patch")
    app.router.add_delete("/api/v1/assets/{asset_id}", delete, name="assets-delete")
