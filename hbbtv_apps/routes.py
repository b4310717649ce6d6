"""HTTP routes of the HbbTV domain: the registry API (admin), the app documents, the AIT, static files,
the per-app state the running app polls, and banner clicks.

Everything a TV loads comes from this origin, and the app only calls same-origin URLs (/api/v1/... for polls,
chat and devices; /hbbtv/{slug}/... for its own state), because many TV browsers have no CORS.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from hbbtv_apps import ait, registry, useragent
from onair.core.auth import requires
from onair.core.clock import now
from onair.core.db.pool import POOL
from onair.core.errors import Conflict, NotFound, read_json
from onair.core.limits import limits_of
from onair.core.openapi import described
from onair.core.web import StaticBundle, base_url, client_ip, templates

STATIC_PREFIX = "/hbbtv/static"
POLL_INTERVAL_MS = 2000          # how often a running app asks for its state (banner, current poll)
DOCUMENT_CACHE = "no-cache"      # a changed app (new poll, new clips) must reach TVs on their next launch
HERE = Path(__file__).resolve().parent

# The static files, read once; their `version` (a hash of them all) is part of their URLs.
ASSETS = web.AppKey("hbbtv_assets", StaticBundle)
TEMPLATES = web.AppKey("hbbtv_templates", jinja2.Environment)


def static_base(bundle: StaticBundle) -> str:
    return f"{STATIC_PREFIX}/{bundle.version}"


# --- registry API (admin/studio) -------------------------------------------------------------------

@requires("hbbtv:write")
@described(body=registry.AppIn)
async def create_app(request: web.Request) -> web.Response:
    data = await read_json(request, registry.AppIn)
    app = await registry.create(request.app[POOL], data)
    return web.json_response(app.to_json(base_url(request)), status=201,
                             headers={"Location": f"/api/v1/hbbtv/apps/{app.slug}"})


@requires("hbbtv:write")
async def list_apps(request: web.Request) -> web.Response:
    base = base_url(request)
    return web.json_response({"apps": [a.to_json(base) for a in await registry.list_apps(request.app[POOL])]})


@requires("hbbtv:write")
async def get_app(request: web.Request) -> web.Response:
    app = await registry.require(request.app[POOL], request.match_info["slug"])
    return web.json_response(app.to_json(base_url(request)))


@requires("hbbtv:write")
@described(body=registry.AppPatch)
async def patch_app(request: web.Request) -> web.Response:
    slug = request.match_info["slug"]
    await registry.require(request.app[POOL], slug)
    patch = await read_json(request, registry.AppPatch)
    app = await registry.update(request.app[POOL], slug, patch)
    return web.json_response(app.to_json(base_url(request)))


@requires("hbbtv:write")
async def delete_app(request: web.Request) -> web.Response:
    if not await registry.delete(request.app[POOL], request.match_info["slug"]):
        raise NotFound(f"No HbbTV app named {request.match_info['slug']!r}", code="unknown-app")
    return web.Response(status=204)


@requires("banners:write")
@described(body=registry.BannerIn)
async def push_banner(request: web.Request) -> web.Response:
    slug = request.match_info["slug"]
    await registry.require(request.app[POOL], slug)
    data = await read_json(request, registry.BannerIn)
    banner = await registry.push_banner(request.app[POOL], slug, data, now(request.app))
    return web.json_response(banner.to_json(), status=201)


@requires("banners:write")
async def get_banner(request: web.Request) -> web.Response:
    banner = await registry.get_banner(request.app[POOL], request.match_info["slug"], _banner_id(request))
    if banner is None:
        raise NotFound("No such banner", code="unknown-banner")
    return web.json_response(banner.to_json())


@requires("banners:write")
async def end_banners(request: web.Request) -> web.Response:
    slug = request.match_info["slug"]
    await registry.require(request.app[POOL], slug)
    await registry.end_banners(request.app[POOL], slug, now(request.app))
    return web.Response(status=204)


def _banner_id(request: web.Request) -> int:
    raw = request.match_info["banner_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound("No such banner", code="unknown-banner")
    return int(raw)


# --- what TVs load ---------------------------------------------------------------------------------

def _ait_for(app: registry.HbbtvApp, base_url: str) -> ait.AitApp:
    return ait.AitApp(name=app.name, org_id=app.org_id, app_id=app.app_id, url_base=f"{base_url}/hbbtv/{app.slug}/",
                      location="", control_code=app.control_code, version=app.ait_version,
                      mhp_version=ait.needed_version(bool(app.vod_assets)))


async def ait_document(request: web.Request) -> web.Response:
    app = await registry.require(request.app[POOL], request.match_info["slug"])
    try:
        body = ait.build(_ait_for(app, base_url(request)))
    except ait.AitError as exc:  # e.g. an app id saved before the reserved range was refused: say which field
        raise Conflict(f"This app cannot be signalled: {exc}; change it in the studio",
                       code="unsignallable-app") from None
    headers = {"Cache-Control": "no-cache"}
    if request.query.get("download"):
        headers["Content-Disposition"] = f'attachment; filename="{app.slug}.aitx"'
    return web.Response(body=body, headers={**headers, "Content-Type": ait.AIT_CONTENT_TYPE})


# What an app document may load: its own scripts only (nothing inline), styles from the bundle plus the
# theme's style attribute, banner images/logos and offer pages from anywhere (producers point at their CDN
# and shop), media from the origin or a CDN. Framed only by our own studio preview.
DOCUMENT_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                "img-src 'self' data: https: http:; media-src 'self' blob: https: http:; "
                "frame-src 'self' https: http:; connect-src 'self'; object-src 'self'; base-uri 'none'; "
                "form-action 'none'; frame-ancestors 'self'")


def _missing(request: web.Request, variant: useragent.Variant, detail: str) -> web.Response:
    # TVs render whatever they get: a 404 must still be a page they can parse (no JSON on a 1.x browser)
    html = request.app[TEMPLATES].get_template("missing.xhtml").render(detail=detail)
    return web.Response(status=404, body=html.encode(), headers={"Content-Type": variant.content_type,
                                                                 "Cache-Control": "no-cache", "Vary": "User-Agent",
                                                                 "Content-Security-Policy": DOCUMENT_CSP})


async def document(request: web.Request) -> web.Response:
    variant = useragent.pick(request.headers.get("User-Agent"))
    slug = request.match_info["slug"]
    app = await registry.get(request.app[POOL], slug) if _valid_slug(slug) else None
    if app is None:
        return _missing(request, variant, "This application is not available.")
    playlist = await registry.playlist(request.app[POOL], app, now(request.app))
    template = "app.xhtml" if variant.is_xhtml else "app.html"
    html = request.app[TEMPLATES].get_template(template).render(
        app=app, playlist=playlist, variant=variant.markup.value, static=static_base(request.app[ASSETS]),
        interval_ms=POLL_INTERVAL_MS, preview=variant.reason == "desktop-preview",
        live_mpd=useragent.live_mpd(variant.hbbtv_version))
    return web.Response(body=html.encode(), headers={"Content-Type": variant.content_type,
                                                     "Cache-Control": DOCUMENT_CACHE, "Vary": "User-Agent",
                                                     "Content-Security-Policy": DOCUMENT_CSP,
                                                     "X-Content-Type-Options": "nosniff"})


def _valid_slug(slug: str) -> bool:
    return re.match(registry.SLUG_PATTERN, slug) is not None


async def document_redirect(request: web.Request) -> web.Response:
    # the document uses URLs relative to /hbbtv/{slug}/, so the slash matters
    raise web.HTTPMovedPermanently(f"/hbbtv/{request.match_info['slug']}/")


async def app_state(request: web.Request) -> web.Response:
    """What a running app polls: the current poll, and a banner to show over an ad spot (if any)."""
    app = await registry.require(request.app[POOL], request.match_info["slug"])
    banner = await registry.current_banner(request.app[POOL], app.slug, now(request.app))
    body: dict[str, Any] = {"poll_id": app.poll_id, "chat_room": app.chat_room, "interval_ms": POLL_INTERVAL_MS,
                            "banner": None}
    if banner is not None:
        body["banner"] = {"id": banner.id, "image_url": banner.image_url, "target_url": banner.target_url,
                          "label": banner.label}
    # every running TV polls this: one second at the CDN keeps the origin load flat, and a banner still
    # reaches the screens within a poll interval
    return web.Response(body=json.dumps(body).encode(), content_type="application/json",
                        headers={"Cache-Control": "public, max-age=1", "Surrogate-Key": f"hbbtv-{app.slug}"})


async def banner_click(request: web.Request) -> web.Response:
    slug, banner_id = request.match_info["slug"], _banner_id(request)
    # One click per banner per TV (address and user agent) a day: 100 POSTs are not 100 ad clicks.
    viewer = hashlib.sha256(f"{client_ip(request)}|{request.headers.get('User-Agent', '')}".encode()).hexdigest()
    if not await limits_of(request.app).first(f"banner-click:{slug}:{banner_id}:{viewer[:24]}", 86400):
        if await registry.get_banner(request.app[POOL], slug, banner_id) is None:
            raise NotFound("No such banner", code="unknown-banner")
        return web.Response(status=204, headers={"Cache-Control": "no-store"})
    banner = await registry.count_click(request.app[POOL], slug, banner_id)
    if banner is None:
        raise NotFound("No such banner", code="unknown-banner")
    return web.Response(status=204, headers={"Cache-Control": "no-store"})


async def static_file(request: web.Request) -> web.StreamResponse:
    assets = request.app[ASSETS]
    found = assets.respond(request, request.match_info["name"])
    if found is None or request.match_info["version"] != assets.version:
        raise NotFound(f"No static file at {request.path}", code="not-found")
    return found


def setup(app: web.Application) -> None:
    """Register this domain's routes on the application."""
    app[ASSETS] = StaticBundle.load(HERE / "static")
    # strict: a TV renders whatever it gets, so a missing variable must fail here, not on screen
    app[TEMPLATES] = templates(HERE / "templates", strict=True)
    r = app.router
    r.add_post("/api/v1/hbbtv/apps", create_app, name="hbbtv-apps-create")
    r.add_get("/api/v1/hbbtv/apps", list_apps, name="hbbtv-apps-list")
    r.add_get("/api/v1/hbbtv/apps/{slug}", get_app, name="hbbtv-app")
    r.add_patch("/api/v1/hbbtv/apps/{slug}", patch_app)
    r.add_delete("/api/v1/hbbtv/apps/{slug}", delete_app)
    r.add_post("/api/v1/hbbtv/apps/{slug}/banners", push_banner, name="hbbtv-banners")
    r.add_delete("/api/v1/hbbtv/apps/{slug}/banners", end_banners)
    r.add_get("/api/v1/hbbtv/apps/{slug}/banners/{banner_id}", get_banner, name="hbbtv-banner")
    r.add_get(STATIC_PREFIX + "/{version}/{name}", static_file, name="hbbtv-static")
    r.add_get("/hbbtv/{slug}", document_redirect)
    r.add_get("/hbbtv/{slug}/", document, name="hbbtv-document")
    r.add_get("/hbbtv/{slug}/app.aitx", ait_document, name="hbbtv-ait")
    r.add_get("/hbbtv/{slug}/state.json", app_state, name="hbbtv-state")
    r.add_post("/hbbtv/{slug}/banners/{banner_id}/clicks", banner_click, name="hbbtv-banner-click")
