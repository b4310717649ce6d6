"""The show page `/s/{slug}`: one public, mobile-first page per show (player, current poll, chat).

Server-rendered with everything a first paint needs; one small script (no framework, no CDN) adds voting and
chat. The player (the embed page of the live channel or the latest clip, whose hls.js plays in every desktop and
phone browser; a bare <video> of an HLS playlist plays only in Safari) loads lazily in an iframe. `?embed=1` is the
variant for a newsroom's live blog: no header chrome, and the page reports its height to the parent frame so the
iframe fits its content.
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
from aiohttp import web

from onair.core.clock import now
from onair.core.db.pool import POOL
from onair.core.errors import NotFound
from onair.core.settings import SETTINGS
from onair.core.web import StaticBundle, base_url, templates
from streaming.catalog import Asset, list_assets
from streaming.interaction import polls
from streaming.interaction.show_routes import require_show
from streaming.interaction.shows import Show

HERE = Path(__file__).resolve().parent
STATIC_PREFIX = "/s/static"
PAGE_ASSETS = web.AppKey("show_page_assets", StaticBundle)
PAGE_TEMPLATES = web.AppKey("show_page_templates", jinja2.Environment)
CLIPS = 6


async def latest_clips(request: web.Request, show: Show) -> list[Asset]:
    """Ready public clips whose free-text show is this show's slug or title, newest first."""
    found = await list_assets(request.app[POOL], status="ready", tag=None, limit=200, before=None)
    names = {show.slug, show.title}
    return [a for a in found if a.show in names and a.visibility == "public"][:CLIPS]


def csp(request: web.Request) -> str:
    """Strict: our own script and styles only. Framing follows the embed player's deployment default."""
    origins = request.app[SETTINGS].embed_origin_list
    ancestors = "frame-ancestors *" if "*" in origins else " ".join(["frame-ancestors", "'self'", *origins])
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "media-src 'self' blob:; connect-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'none'; "
            + ancestors)


async def show_page(request: web.Request) -> web.Response:
    show = await require_show(request.app[POOL], request.match_info["slug"])
    t = now(request.app)
    poll = await polls.current_for_show(request.app[POOL], show.slug, t)
    clips = [] if show.live_channel else await latest_clips(request, show)
    base = base_url(request)
    bundle = request.app[PAGE_ASSETS]
    config = {"slug": show.slug, "room": show.room, "poll": polls.to_json(poll, t) if poll else None}
    html = request.app[PAGE_TEMPLATES].get_template("show.html").render(
        show=show, poll=config["poll"], clips=clips, embed=request.query.get("embed") == "1",
        static=f"{STATIC_PREFIX}/{bundle.version}", config=json.dumps(config),
        page_url=f"{base}/s/{show.slug}")
    resp = web.Response(text=html, content_type="text/html", charset="utf-8", headers={
        "Content-Security-Policy": csp(request), "Cache-Control": "public, max-age=5",
        "Referrer-Policy": "strict-origin-when-cross-origin", "X-Content-Type-Options": "nosniff"})
    resp.enable_compression()
    return resp


async def static_file(request: web.Request) -> web.Response:
    bundle = request.app[PAGE_ASSETS]
    found = bundle.respond(request, request.match_info["name"])
    if found is None or request.match_info["version"] != bundle.version:
        raise NotFound(f"No static file at {request.path}", code="not-found")
    return found


def setup(app: web.Application) -> None:
    app[PAGE_ASSETS] = StaticBundle.load(HERE / "static")
    app[PAGE_TEMPLATES] = templates(HERE / "templates", trim=True)
    app.router.add_get("/s/{slug}", show_page, name="shows.page")
    app.router.add_get(STATIC_PREFIX + "/{version}/{name}", static_file, name="shows.static")
