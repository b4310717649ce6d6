"""The studio for producers: /studio/ (assets, polls with live bars, chat moderation, embeds) and
/studio/hbbtv/ (the HbbTV app registry).

Server-rendered (jinja2, autoescaped) with a small script; it talks to the same public API as everyone
else, authenticated by the session cookie set at login (user name and password, onair.core.accounts).
The page carries the session's CSRF token in a <meta> tag; the scripts send it as X-CSRF-Token.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from onair.core.accounts import passwords, roles, sessions, users
from onair.core.accounts.login import log_in
from onair.core.auth import (
    Principal,
    audit,
    check_csrf,
    check_same_origin,
    clear_session_cookie,
    client_ip,
    label,
    principal,
    requires,
    set_session_cookie,
)
from onair.core.db.pool import POOL
from onair.core.errors import AppError, TooManyRequests
from onair.core.web import templates
from streaming import catalog

HERE = Path(__file__).resolve().parent
_env = templates(HERE / "templates")

_SECURITY = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
             "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"}


def _page(name: str, status: int = 200, headers: dict[str, str] | None = None, **context: object) -> web.Response:
    return web.Response(text=_env.get_template(name).render(**context), content_type="text/html",
                        headers={**_SECURITY, **(headers or {})}, status=status)


def _allowed(who: Principal) -> set[str]:
    """Permissions the page shows sections for (the API enforces them regardless)."""
    return {p for p in ("assets:read", "polls:write", "chat:moderate", "hbbtv:write", "users:manage")
            if roles.allows(who.role, p)}


async def _recent_assets(request: web.Request) -> list[dict]:
    """Through the catalogue (the owner of `assets`): the status there already carries the running stage."""
    found = await catalog.list_assets(request.app[POOL], status=None, tag=None, limit=100, before=None)
    return [{"id": a.id, "title": a.title, "status": a.status, "progress": round(a.progress, 1)} for a in found]


@label("public")  # the login form, or the studio for a signed-in user
async def index(request: web.Request) -> web.Response:
    who = await principal(request)
    if who is None:
        return _page("login.html", error="bad" if request.query.get("error") == "1" else None)
    if who.session and who.session.must_change_password:
        return _page("password.html", user=who, csrf=who.csrf_token)
    allowed = _allowed(who)
    rows = await _recent_assets(request) if "assets:read" in allowed else []
    return _page("index.html", assets=rows, user=who, csrf=who.csrf_token, allowed=allowed)


async def login(request: web.Request) -> web.Response:
    check_same_origin(request)  # no logging people in from another site's form
    form = await request.post()
    try:
        session_id, _, _ = await log_in(request.app[POOL], str(form.get("name", "")), str(form.get("password", "")),
                                        ip=client_ip(request), user_agent=request.headers.get("User-Agent"))
    except TooManyRequests as err:
        return _page("login.html", status=429, headers=err.headers, error="throttled",
                     wait=err.headers.get("Retry-After"))
    except AppError:
        raise web.HTTPSeeOther("/studio/?error=1") from None
    resp = web.HTTPSeeOther("/studio/")
    set_session_cookie(resp, request, session_id)
    raise resp


async def logout(request: web.Request) -> web.Response:
    who = await principal(request)
    resp = web.HTTPSeeOther("/studio/")
    if who is not None and who.session is not None:
        form = await request.post()
        check_csrf(request, who, str(form.get("csrf_token", "")))
        await sessions.end(request.app[POOL], who.session.id_hash)
        await audit(request, "logout", object_type="user", object_id=who.name)
    clear_session_cookie(resp)
    raise resp


async def password(request: web.Request) -> web.Response:
    """Choose a new password (required after a one-time password)."""
    who = await principal(request)
    if who is None or who.session is None:
        raise web.HTTPSeeOther("/studio/")
    form = await request.post()
    check_csrf(request, who, str(form.get("csrf_token", "")))
    found = await users.find(request.app[POOL], who.name)
    new = str(form.get("new_password", ""))
    error = None
    if found is None or not await passwords.verify_password(found[1], str(form.get("current_password", ""))):
        error = "The current password is wrong."
    elif new != str(form.get("confirm_password", "")):
        error = "The two new passwords differ."
    else:
        try:
            await users.set_password(request.app[POOL], who.name, new, keep_session=who.session.id_hash)
        except AppError as err:
            error = err.detail
    if error:
        return _page("password.html", status=400, user=who, csrf=who.csrf_token, error=error)
    await audit(request, "user.password", object_type="user", object_id=who.name)
    raise web.HTTPSeeOther("/studio/")


@requires("assets:read")
async def assets(request: web.Request) -> web.Response:
    rows = [{**a, "embed": f"/embed/{a['id']}"} for a in await _recent_assets(request)]
    return web.json_response({"assets": rows}, headers={"Cache-Control": "no-store"})


async def hbbtv(request: web.Request) -> web.Response:
    """The registry page; it holds no data itself and calls the admin API (session cookie or a token)."""
    who = await principal(request)
    return web.Response(text=_env.get_template("hbbtv.html").render(csrf=who.csrf_token if who else None),
                        content_type="text/html", headers={"Cache-Control": "no-store"})


async def to_index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/studio/")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/studio/", index, name="studio")
    r.add_get("/studio", to_index)
    r.add_post("/studio/login", login, name="studio.login")
    r.add_post("/studio/logout", logout, name="studio.logout")
    r.add_post("/studio/password", password, name="studio.password")
    r.add_get("/studio/api/assets", assets, name="studio.assets")
    r.add_get("/studio/hbbtv/", hbbtv, name="hbbtv-studio")
    r.add_static("/studio/static/", HERE / "static", name="studio.static")
