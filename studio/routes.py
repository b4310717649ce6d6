"""The studio for producers: /studio/ (assets, polls with live bars, chat moderation, embeds) and
/studio/hbbtv/ (the HbbTV app registry).

Server-rendered (jinja2, autoescaped) with a small script; it talks to the same public API as everyone
else, authenticated by the `onair_admin` cookie set at login (onair.core.auth accepts it like the bearer token).
"""

from __future__ import annotations

import hmac
from pathlib import Path

from aiohttp import web

from onair.core.auth import ADMIN_TOKEN, admin_required, is_admin, requires
from onair.core.db.pool import POOL
from onair.core.web import templates
from streaming import catalog

HERE = Path(__file__).resolve().parent
COOKIE = "onair_admin"
_env = templates(HERE / "templates")

_SECURITY = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
             "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"}


def _page(name: str, **context: object) -> web.Response:
    return web.Response(text=_env.get_template(name).render(**context), content_type="text/html",
                        headers=_SECURITY)


async def _recent_assets(request: web.Request) -> list[dict]:
    """Through the catalogue (the owner of `assets`): the status there already carries the running stage."""
    found = await catalog.list_assets(request.app[POOL], status=None, tag=None, limit=100, before=None)
    return [{"id": a.id, "title": a.title, "status": a.status, "progress": round(a.progress, 1)} for a in found]


@requires("public|admin")  # the login form, or the studio for an admin
async def index(request: web.Request) -> web.Response:
    if not is_admin(request):
        return _page("login.html", error=request.query.get("error") == "1")
    return _page("index.html", assets=await _recent_assets(request))


async def login(request: web.Request) -> web.Response:
    form = await request.post()
    token = str(form.get("token", ""))
    if not hmac.compare_digest(token.encode(), request.app[ADMIN_TOKEN].encode()):
        raise web.HTTPSeeOther("/studio/?error=1")
    resp = web.HTTPSeeOther("/studio/")
    resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/", secure=request.secure,
                    max_age=12 * 3600)
    raise resp


async def logout(request: web.Request) -> web.Response:
    resp = web.HTTPSeeOther("/studio/")
    resp.del_cookie(COOKIE, path="/")
    raise resp


@admin_required
async def assets(request: web.Request) -> web.Response:
    return web.json_response({"assets": [{**a, "embed": f"/embed/{a['id']}"} for a in await _recent_assets(request)]},
                             headers={"Cache-Control": "no-store"})


async def hbbtv(request: web.Request) -> web.Response:
    """The registry page; it holds no data itself and calls the admin API with a token."""
    return web.Response(text=_env.get_template("hbbtv.html").render(), content_type="text/html",
                        headers={"Cache-Control": "no-cache"})


async def to_index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/studio/")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/studio/", index, name="studio")
    r.add_get("/studio", to_index)
    r.add_post("/studio/login", login, name="studio.login")
    r.add_post("/studio/logout", logout, name="studio.logout")
    r.add_get("/studio/api/assets", assets, name="studio.assets")
    r.add_get("/studio/hbbtv/", hbbtv, name="hbbtv-studio")
    r.add_static("/studio/static/", HERE / "static", name="studio.static")
