"""The embeddable player: /embed/{id}, /watch/{id}, /oembed and the player bundle (beacons: analytics.py)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from onair.core import clock
from onair.core.auth import SIGNING_KEY, requires
from onair.core.db.pool import POOL
from onair.core.errors import NotFound, read_json
from onair.core.openapi import described
from onair.core.settings import SETTINGS, Settings
from onair.core.web import StaticBundle, base_url, cap_ttl, templates, viewer_country
from streaming.catalog import Asset, get_asset
from streaming.live import get_channel
from syndication.embed import live_pages, oembed, pages, tokens

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static" / "player"
_ID = r"[A-Za-z0-9_-]{1,64}"
_BUNDLE_NAME = re.compile(r"[A-Za-z0-9_.-]+\.(js|css)")


@dataclass(frozen=True)
class EmbedContext:
    settings: Settings
    templates: jinja2.Environment
    bundle: StaticBundle            # file names carry their content hash
    js_name: str
    css_name: str


EMBED = web.AppKey("embed_context", EmbedContext)


def _load_bundle() -> tuple[StaticBundle, str, str]:
    manifest = json.loads((STATIC_DIR / "manifest.json").read_text())
    return StaticBundle.load(STATIC_DIR, manifest.values()), manifest["player.js"], manifest["player.css"]


def _ctx(request: web.Request) -> EmbedContext:
    return request.app[EMBED]


def _our_hosts(request: web.Request) -> tuple[str, ...]:
    # The host our links carry, and the one this request reached us on (a consumer may ask either way).
    hosts = {request.host.lower(), urlsplit(base_url(request)).netloc.lower()}
    return tuple(h for h in hosts if h)


def _fmt_duration(seconds: float | None) -> str:
    total = int(seconds or 0)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


async def _page(request: web.Request) -> tuple[pages.PlayerPage, Asset | None]:
    asset_id = request.match_info["asset_id"]
    ctx = _ctx(request)
    asset = await get_asset(request.app[POOL], asset_id)
    if asset is not None and asset.visibility == "private" and not tokens.valid(
            request.app[SIGNING_KEY], asset.id, request.query.get("token"), clock.now(request.app).timestamp()):
        asset = None  # a private video without its embed token is indistinguishable from no video
    page = pages.player_page(asset, asset_id, clock.now(request.app), pages.PlayerOptions.from_query(
        dict(request.query)), signing_key=request.app[SIGNING_KEY],
        token_seconds=ctx.settings.embed_token_seconds, country=viewer_country(request))
    return page, asset


def _max_age(request: web.Request, asset: Asset | None) -> int:
    """A minute in shared caches, but never past the moment the video's rights window closes."""
    return cap_ttl(60, asset.rights.available_until if asset is not None else None, clock.now(request.app))


def _render(request: web.Request, template: str, page: pages.PlayerPage, csp: str, *, asset: Asset | None,
            **extra: object) -> web.Response:
    ctx = _ctx(request)
    base = base_url(request)
    page_url = f"{base}/embed/{page.asset_id}"
    html = ctx.templates.get_template(template).render(
        page=page, css_url=f"/player/{ctx.css_name}", js_url=f"/player/{ctx.js_name}",
        oembed_json=f"{base}/oembed?url={quote(page_url, safe='')}&format=json",
        oembed_xml=f"{base}/oembed?url={quote(page_url, safe='')}&format=xml",
        duration=_fmt_duration(page.config["duration"] if page.config else 0), **extra)
    headers = {"Content-Security-Policy": csp, "Referrer-Policy": "strict-origin-when-cross-origin",
               "X-Content-Type-Options": "nosniff",
               # Private pages carry a token; a shared cache must not hand it to someone else.
               "Cache-Control": "private, no-store" if not page.discoverable
               else f"public, max-age={_max_age(request, asset)}"}
    if page.retry_seconds:
        headers["Retry-After"] = str(page.retry_seconds)
    resp = web.Response(status=page.status, text=html, content_type="text/html", charset="utf-8", headers=headers)
    resp.enable_compression()
    return resp


async def embed_page(request: web.Request) -> web.Response:
    page, asset = await _page(request)
    ctx = _ctx(request)
    csp = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
           "media-src 'self' blob:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; "
           "form-action 'none'; " + pages.frame_ancestors(asset, ctx.settings.embed_origin_list))
    watch_url = f"{base_url(request)}/watch/{page.asset_id}" if page.discoverable and page.playable else None
    return _render(request, "embed.html", page, csp, asset=asset, watch_url=watch_url)


async def watch_page(request: web.Request) -> web.Response:
    page, asset = await _page(request)
    if asset is not None and asset.visibility == "private":
        page = pages.PlayerPage(404, page.asset_id, "Video not found",
                                message="This video does not exist or has been removed.", discoverable=False)
    base = base_url(request)
    w, h = oembed.fit(*pages.aspect(asset), None, None) if asset is not None else (640, 360)
    snippet = pages.iframe_snippet(f"{base}/embed/{page.asset_id}", page.title, w, h)
    csp = ("default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src 'self'; base-uri 'none'; "
           "form-action 'none'")
    return _render(request, "watch.html", page, csp, asset=asset, snippet=snippet,
                   description=getattr(asset, "description", "") if page.playable else "",
                   poster_abs=base + page.poster if page.poster and page.discoverable else None)


async def _live_page(request: web.Request) -> pages.PlayerPage:
    channel_id = request.match_info["channel_id"]
    channel = await get_channel(request.app[POOL], channel_id)
    return live_pages.live_page(channel, channel_id, clock.now(request.app),
                                pages.PlayerOptions.from_query(dict(request.query)), country=viewer_country(request),
                                rights=channel.rights if channel is not None else None)


async def live_embed_page(request: web.Request) -> web.Response:
    """The player in live mode (LIVE badge, DVR seeking, go live); never cached: the channel's state moves."""
    page = await _live_page(request)
    csp = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
           "media-src 'self' blob:; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; "
           "form-action 'none'; " + pages.frame_ancestors(None, _ctx(request).settings.embed_origin_list))
    watch_url = f"{base_url(request)}/watch/live/{page.asset_id}" if page.playable else None
    return _render(request, "embed.html", page, csp, asset=None, watch_url=watch_url)


async def live_watch_page(request: web.Request) -> web.Response:
    page = await _live_page(request)
    snippet = pages.iframe_snippet(f"{base_url(request)}/embed/live/{page.asset_id}", page.title, 640, 360)
    csp = ("default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src 'self'; base-uri 'none'; "
           "form-action 'none'")
    # An off-air channel's page still holds the frame: the embed inside reloads itself until the show starts.
    return _render(request, "watch.html", page, csp, asset=None, snippet=snippet, description="", poster_abs=None)


@described(query=oembed.OEmbedQuery)
async def oembed_view(request: web.Request) -> web.Response:
    q = oembed.parse_query(dict(request.query))
    asset_id = oembed.asset_id_from_url(q.url, _our_hosts(request))
    now = clock.now(request.app)
    asset = oembed.check_embeddable(await get_asset(request.app[POOL], asset_id), now)
    body = oembed.response(asset, base_url(request), q, now)
    headers = {"Cache-Control": f"public, max-age={body['cache_age']}", "Access-Control-Allow-Origin": "*"}
    if q.format == "xml":
        return web.Response(text=oembed.to_xml(body), content_type="text/xml", charset="utf-8", headers=headers)
    return web.json_response(body, headers=headers)


async def bundle_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    found = _ctx(request).bundle.respond(request, name, {"Access-Control-Allow-Origin": "*"})
    if found is None or not _BUNDLE_NAME.fullmatch(name):
        raise NotFound(f"No player file {name!r}")
    return found


class EmbedTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seconds: Annotated[int, Field(ge=60, le=30 * 86400)] = 86400


@requires("assets:read")
@described(body=EmbedTokenIn, status=201)
async def embed_token(request: web.Request) -> web.Response:
    """An embed URL that plays a private video (for a site or partner you authorise) until it expires."""
    body = await read_json(request, EmbedTokenIn)
    asset = await get_asset(request.app[POOL], request.match_info["asset_id"])
    if asset is None:
        raise NotFound(f"No asset {request.match_info['asset_id']!r}")
    expires = int(clock.now(request.app).timestamp()) + body.seconds
    token = tokens.mint(request.app[SIGNING_KEY], asset.id, expires)
    return web.json_response({"embed_url": f"{base_url(request)}/embed/{asset.id}?token={token}",
                              "token": token, "expires": expires}, status=201, headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    """Register routes and cleanup contexts."""

    bundle, js_name, css_name = _load_bundle()
    app[EMBED] = EmbedContext(app[SETTINGS], templates(HERE / "templates", trim=True), bundle, js_name, css_name)
    app.router.add_get(f"/embed/{{asset_id:{_ID}}}", embed_page)
    app.router.add_get(f"/watch/{{asset_id:{_ID}}}", watch_page)
    app.router.add_get(f"/embed/live/{{channel_id:{_ID}}}", live_embed_page)
    app.router.add_get(f"/watch/live/{{channel_id:{_ID}}}", live_watch_page)
    app.router.add_get("/oembed", oembed_view)
    app.router.add_post(f"/api/v1/assets/{{asset_id:{_ID}}}/embed-token", embed_token)
    app.router.add_get("/player/{name}", bundle_file)
