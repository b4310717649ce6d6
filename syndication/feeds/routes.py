"""Feeds (MRSS, Atom, JSON Feed), the partner API and partner administration.

Every listing goes through `_list_assets`: only ready, public assets inside their rights window (by
`onair.core.clock.now(app)`) are ever returned, with keyset paging on (created_at, id) and signed cursors.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, Field, field_validator

from onair.core import clock
from onair.core.auth import SIGNING_KEY, requires
from onair.core.bounded import Bounded
from onair.core.db.pool import POOL
from onair.core.errors import BadRequest, Forbidden, NotFound, parse_query, read_json
from onair.core.openapi import described
from onair.core.safe_urls import UrlRejected, check_url, check_url_shape
from onair.core.settings import SETTINGS as SETTINGS_KEY
from onair.core.web import base_url, cap_ttl_all
from streaming import catalog
from streaming.catalog import Asset, new_asset_id, rights
from streaming.catalog.rights import CountryCode
from syndication.feeds import cursors, documents
from syndication.partners import keys
from syndication.partners.auth import partner_required

MAX_PAGE = 100
MAX_QUERY_CHARS = 256
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
FEED_FILES = {"mrss.xml": "mrss", "atom.xml": "atom", "feed.json": "json"}


class FeedCache(Bounded[str, tuple[bytes, bytes]]):
    """Built (and gzipped) feed bodies by ETag; the ETag is a digest of everything the body depends on,
    so an entry never goes stale: only the number kept is bounded (least recently served out first)."""


FEED_CACHE = web.AppKey("feed_cache", FeedCache)


# --- listing -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filter:
    tag: str | None = None
    show: str | None = None
    text: str | None = None
    partner: keys.Partner | None = None

    def scope(self, kind: str) -> str:
        return "|".join([kind, self.tag or "", self.show or "", self.text or "",
                         str(self.partner.id) if self.partner else ""])


class PageQuery(BaseModel):
    tag: str | None = Field(None, max_length=200)
    show: str | None = Field(None, max_length=200)
    cursor: str | None = Field(None, max_length=512)
    limit: int = Field(MAX_PAGE, ge=1, le=MAX_PAGE)


class SearchQuery(PageQuery):
    q: str | None = Field(None, max_length=MAX_QUERY_CHARS)


# What Asset.from_row reads, minus the bulky columns a listing never shows (probe facts, search vector).
_FULL_COLUMNS = ("id, title, description, tags, show, status, progress, error, NULL::jsonb AS facts, outputs, "
                 "duration, visibility, available_from, available_until, geo_allow, geo_deny, credit, copyright, "
                 "rating, embed_origins, created_at, updated_at, ready_at, job_id, source_key")
# Enough to decide the page, its rights and its ETag; the full rows are loaded only when a body is built.
_KEY_COLUMNS = "id, created_at, updated_at, ready_at, available_from, available_until"


@dataclass(frozen=True)
class PageKey:
    id: str
    created_at: datetime
    updated_at: datetime
    published: datetime
    rights: rights.Rights


async def _page_keys(request: web.Request, flt: Filter, kind: str, limit: int,
                     cursor: str | None) -> tuple[list[PageKey], str | None]:
    """One page of visible assets (keys only), newest first, and the next page's cursor (None on the last)."""
    now = clock.now(request.app)
    key = request.app[SIGNING_KEY]
    where = ["status = 'ready'", "visibility = 'public'", "outputs IS NOT NULL",
             "(available_from IS NULL OR available_from <= $1)", "(available_until IS NULL OR available_until > $1)"]
    args: list[Any] = [now]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if flt.tag:
        where.append(f"{arg(flt.tag)} = ANY(tags)")
    if flt.show:
        where.append(f"show = {arg(flt.show)}")
    if flt.text:
        # websearch_to_tsquery accepts any text (quotes, operators, SQL metacharacters) without error.
        where.append(f"search @@ websearch_to_tsquery('simple', {arg(flt.text)})")
    if flt.partner and flt.partner.allowed_tags:
        where.append(f"tags && {arg(list(flt.partner.allowed_tags))}::text[]")
    if flt.partner and flt.partner.allowed_shows:
        where.append(f"show = ANY({arg(list(flt.partner.allowed_shows))}::text[])")
    if cursor:
        pos = cursors.decode(key, flt.scope(kind), cursor)
        try:
            after = datetime.fromisoformat(pos["c"])
            after_id = str(pos["i"])
        except (KeyError, TypeError, ValueError):
            raise BadRequest("The page cursor is invalid", code="invalid-cursor") from None
        where.append(f"(created_at, id) < ({arg(after)}, {arg(after_id)})")
    sql = (f"SELECT {_KEY_COLUMNS} FROM assets WHERE {' AND '.join(where)} "
           f"ORDER BY created_at DESC, id DESC LIMIT {arg(limit + 1)}")
    rows = await request.app[POOL].fetch(sql, *args)
    keys = []
    for r in rows[:limit]:
        window = rights.Rights(r["available_from"], r["available_until"])
        # The SQL filter and the pure rights decision must agree; the pure one has the last word.
        if rights.in_window(window, now):
            keys.append(PageKey(r["id"], r["created_at"], r["updated_at"],
                                r["available_from"] or r["ready_at"] or r["created_at"], window))
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = cursors.encode(key, flt.scope(kind), {"c": last["created_at"].isoformat(), "i": last["id"]})
    return keys, next_cursor


async def _load(request: web.Request, keys: list[PageKey]) -> list[Asset]:
    if not keys:
        return []
    rows = await request.app[POOL].fetch(f"SELECT {_FULL_COLUMNS} FROM assets WHERE id = ANY($1::text[]) "
                                         "AND status = 'ready' AND visibility = 'public'",
                                         [k.id for k in keys])
    by_id = {r["id"]: Asset.from_row(r) for r in rows}
    return [by_id[k.id] for k in keys if k.id in by_id]


async def _list_assets(request: web.Request, flt: Filter, kind: str, limit: int,
                       cursor: str | None) -> tuple[list[Asset], str | None]:
    keys, next_cursor = await _page_keys(request, flt, kind, limit, cursor)
    return await _load(request, keys), next_cursor


def _page_url(request: web.Request, params: dict[str, Any]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{base_url(request)}{request.path}" + (f"?{query}" if query else "")


# --- feeds ---------------------------------------------------------------------------------------

def _etag_matches(request: web.Request, etags: tuple[str, ...]) -> bool:
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    presented = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in presented or any(e in presented for e in etags)


def _accepts_gzip(header: str) -> bool:
    """True when Accept-Encoding lists gzip (or *) without q=0."""
    for part in header.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "x-gzip", "*"):
            q = params.replace(" ", "").removeprefix("q=")
            try:
                return not params or float(q) > 0
            except ValueError:
                return False
    return False


async def _serve_feed(request: web.Request, fmt: str, flt: Filter, title: str, *, private: bool) -> web.Response:
    page = parse_query(request, PageQuery)
    flt = Filter(tag=page.tag, show=page.show, partner=flt.partner)
    keys, next_cursor = await _page_keys(request, flt, "feed", page.limit, page.cursor)
    common = {"tag": page.tag, "show": page.show, "limit": page.limit if page.limit != MAX_PAGE else None}
    self_url = _page_url(request, {**common, "cursor": page.cursor})
    meta = documents.FeedMeta(
        title=title, base_url=base_url(request), self_url=self_url, first_url=_page_url(request, common),
        next_url=_page_url(request, {**common, "cursor": next_cursor}) if next_cursor else None,
        updated=max((max(k.updated_at, k.published) for k in keys), default=EPOCH))
    builder, content_type = documents.BUILDERS[fmt]
    # The body is a function of the format, the channel facts and each item's (id, updated_at): hash those
    # instead of the body, so a 304 or a cache hit costs one light query and no XML work.
    digest = hashlib.sha256(repr((fmt, meta, [(k.id, k.updated_at) for k in keys])).encode())
    etag = f'"{digest.hexdigest()[:32]}"'
    gz_etag = etag[:-1] + '-gz"'
    # Caches may keep the page at most until the first of its items expires: rights hold at the CDN too.
    now = clock.now(request.app)
    max_age = cap_ttl_all(60, (k.rights.available_until for k in keys), now)
    headers = {"ETag": etag, "Vary": "Accept-Encoding, Authorization",
               "Cache-Control": f"{'private' if private else 'public'}, max-age={max_age}",
               "Last-Modified": meta.updated.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")}
    use_gzip = _accepts_gzip(request.headers.get("Accept-Encoding", ""))
    if use_gzip:
        headers["ETag"] = gz_etag
    if _etag_matches(request, (etag, gz_etag)):
        return web.Response(status=304, headers=headers)
    cache = request.app[FEED_CACHE]
    built = cache.get(etag)
    if built is None:
        body = builder(meta, await _load(request, keys))
        built = (body, gzip.compress(body, compresslevel=5))
        cache.set(etag, built)
    if use_gzip:
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=built[1], headers=headers, content_type=content_type.split(";")[0],
                            charset="utf-8")
    return web.Response(body=built[0], headers=headers, content_type=content_type.split(";")[0], charset="utf-8")


@described(query=PageQuery, content_type="*/*")
async def public_feed(request: web.Request) -> web.Response:
    fmt = FEED_FILES[request.match_info["file"]]
    return await _serve_feed(request, fmt, Filter(), "onair: latest video", private=False)


@partner_required("feeds:read", feed=True)
@described(query=PageQuery, content_type="*/*")
async def partner_feed(request: web.Request, partner: keys.Partner) -> web.Response:
    if partner.name != request.match_info["partner"]:
        raise Forbidden("This key belongs to another partner", code="wrong-partner")
    fmt = FEED_FILES[request.match_info["file"]]
    return await _serve_feed(request, fmt, Filter(partner=partner), f"onair for {partner.name}", private=True)


# --- partner API ---------------------------------------------------------------------------------

def asset_json(asset: Asset, base_url: str) -> dict[str, Any]:
    r = asset.rights
    return {
        "id": asset.id, "guid": documents.guid(asset, base_url), "title": asset.title,
        "description": asset.description, "tags": list(asset.tags), "show": asset.show,
        "duration": asset.duration, "published": documents.rfc3339(documents.published(asset)),
        "updated": documents.rfc3339(asset.updated_at),
        "rights": {"available_from": documents.rfc3339(r.available_from) if r.available_from else None,
                   "available_until": documents.rfc3339(r.available_until) if r.available_until else None,
                   "geo_allow": list(r.geo_allow), "geo_deny": list(r.geo_deny)},
        "credit": asset.credit, "copyright": asset.copyright, "rating": asset.rating,
        "playback": {"hls": documents.hls_url(base_url, asset), "dash": documents.dash_url(base_url, asset),
                     "embed": documents.embed_url(base_url, asset.id)},
        "thumbnails": documents.thumbnails(asset, base_url),
    }


@partner_required("assets:read")
@described(query=SearchQuery)
async def api_search(request: web.Request, partner: keys.Partner) -> web.Response:
    query = parse_query(request, SearchQuery)
    text = (query.q or "").strip() or None
    if text and "\x00" in text:
        raise BadRequest("The search query contains a NUL character", code="invalid-query")
    flt = Filter(tag=query.tag, show=query.show, text=text, partner=partner)
    assets, next_cursor = await _list_assets(request, flt, "api", query.limit, query.cursor)
    base = base_url(request)
    return web.json_response({"items": [asset_json(a, base) for a in assets], "next_cursor": next_cursor})


@partner_required("assets:read")
async def api_fetch(request: web.Request, partner: keys.Partner) -> web.Response:
    asset_id = request.match_info["asset_id"]
    row = await request.app[POOL].fetchrow("SELECT * FROM assets WHERE id = $1", asset_id)
    asset = Asset.from_row(row) if row else None
    # Not ready, not public, outside its window or outside this key's tags/shows: one 404 for all,
    # so a partner cannot probe for embargoed content.
    if (asset is None or not asset.ready or asset.visibility != "public"
            or not rights.in_window(asset.rights, clock.now(request.app))
            or not partner.may_see(asset.tags, asset.show)):
        raise NotFound(f"No asset {asset_id!r} available to this key")
    return web.json_response(asset_json(asset, base_url(request)))


class PublishBody(BaseModel):
    source_url: str = Field(..., max_length=2048)
    title: str = Field("", max_length=500)
    description: str = Field("", max_length=10_000)
    tags: list[str] = Field(default_factory=list, max_length=50)
    show: str | None = Field(None, max_length=200)
    available_from: AwareDatetime | None = None
    available_until: AwareDatetime | None = None
    geo_allow: list[CountryCode] = Field(default_factory=list, max_length=300)
    geo_deny: list[CountryCode] = Field(default_factory=list, max_length=300)
    credit: str | None = Field(None, max_length=500)
    copyright: str | None = Field(None, max_length=500)

    @field_validator("source_url")
    @classmethod
    def _http(cls, value: str) -> str:
        try:
            return check_url_shape(value)  # the same rules as the assets API's URL pull
        except UrlRejected as exc:
            raise ValueError(str(exc)) from None


@partner_required("assets:write")
@described(body=PublishBody)
async def api_publish(request: web.Request, partner: keys.Partner) -> web.Response:
    body = await read_json(request, PublishBody)
    if body.available_from and body.available_until and body.available_until <= body.available_from:
        raise BadRequest("available_until must be after available_from", code="invalid-window")
    try:  # refuse literal loopback/private targets now; the pull resolves and re-checks every hop
        check_url(body.source_url, (settings := request.app[SETTINGS_KEY]).allow_private_urls)
    except UrlRejected as exc:
        raise BadRequest(str(exc), code="private-url") from None
    if partner.allowed_shows and body.show not in partner.allowed_shows:
        raise Forbidden("This key may only publish to its allowed shows", code="show-not-allowed", field="show")
    tags = [t for t in body.tags if t]
    outside = [t for t in tags if t not in partner.allowed_tags]
    if partner.allowed_tags and (outside or not tags):  # a limited key publishes only inside its own tags
        raise Forbidden(f"This key may only publish with its allowed tags ({', '.join(partner.allowed_tags)}); "
                        f"not {', '.join(outside) or 'none'}", code="tag-not-allowed", field="tags")
    asset_id = new_asset_id()
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await catalog.create_asset(
            conn, asset_id, title=body.title, description=body.description, tags=tags,
            show=body.show, available_from=body.available_from, available_until=body.available_until,
            geo_allow=body.geo_allow, geo_deny=body.geo_deny, credit=body.credit, copyright=body.copyright,
            partner_id=partner.id)
        await catalog.update_asset(conn, asset_id, {"visibility": "unlisted"})  # until an editor approves it
        await catalog.start_url_pull(conn, asset_id, body.source_url, f"partner:{partner.id}",
                                     settings.url_pull_per_caller)
    return web.json_response({"id": asset_id, "status": "queued", "visibility": "unlisted"}, status=202,
                             headers={"Location": f"/api/v1/assets/{asset_id}"})


@partner_required(None)
async def api_usage(request: web.Request, partner: keys.Partner) -> web.Response:
    since = clock.now(request.app).date() - timedelta(days=30)
    return web.json_response({"partner": partner.name, "rate_per_minute": partner.rate_per_minute,
                              "days": await keys.usage(request.app[POOL], partner.id, since)})


# --- partner administration (admin token) --------------------------------------------------------

class PartnerBody(BaseModel):
    name: str = Field(..., min_length=1, max_length=63)
    scopes: list[str] = Field(default_factory=lambda: ["feeds:read"], max_length=3)
    tags: list[str] = Field(default_factory=list, max_length=100)
    shows: list[str] = Field(default_factory=list, max_length=100)
    rate_per_minute: int = Field(600, ge=1, le=1_000_000)


@requires("partners:manage")
@described(body=PartnerBody)
async def admin_create(request: web.Request) -> web.Response:
    body = await read_json(request, PartnerBody)
    partner, key = await keys.create(request.app[POOL], body.name, body.scopes, tags=body.tags,
                                         shows=body.shows, rate_per_minute=body.rate_per_minute)
    return web.json_response({**partner.public(), "key": key}, status=201, headers={"Cache-Control": "no-store"})


@requires("partners:manage")
async def admin_list(request: web.Request) -> web.Response:
    return web.json_response({"partners": [p.public() for p in await keys.list_all(request.app[POOL])]})


@requires("partners:manage")
async def admin_revoke(request: web.Request) -> web.Response:
    partner = await keys.revoke(request.app[POOL], request.match_info["name"], clock.now(request.app))
    if partner is None:
        raise NotFound(f"No partner named {request.match_info['name']!r}")
    return web.json_response(partner.public())


@requires("partners:manage")
async def admin_usage(request: web.Request) -> web.Response:
    row = await request.app[POOL].fetchrow("SELECT id FROM partners WHERE name = $1", request.match_info["name"])
    if row is None:
        raise NotFound(f"No partner named {request.match_info['name']!r}")
    since = clock.now(request.app).date() - timedelta(days=90)
    return web.json_response({"partner": request.match_info["name"],
                              "days": await keys.usage(request.app[POOL], row["id"], since)})


def setup(app: web.Application) -> None:
    """Register routes and cleanup contexts."""
    app[FEED_CACHE] = FeedCache(app[SETTINGS_KEY].feed_cache_entries)
    files = "{file:mrss\\.xml|atom\\.xml|feed\\.json}"
    app.router.add_get(f"/feeds/{files}", public_feed, name="feed")
    app.router.add_get(f"/feeds/partners/{{partner}}/{files}", partner_feed, name="partner_feed")
    app.router.add_get("/api/v1/partner/assets", api_search, name="partner_search")
    app.router.add_post("/api/v1/partner/assets", api_publish, name="partner_publish")
    app.router.add_get("/api/v1/partner/assets/{asset_id}", api_fetch, name="partner_fetch")
    app.router.add_get("/api/v1/partner/usage", api_usage, name="partner_usage")
    app.router.add_post("/api/v1/partners", admin_create, name="partners_create")
    app.router.add_get("/api/v1/partners", admin_list, name="partners_list")
    app.router.add_delete("/api/v1/partners/{name}", admin_revoke, name="partners_revoke")
    app.router.add_get("/api/v1/partners/{name}/usage", admin_usage, name="partners_usage")
