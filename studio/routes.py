"""The studio: one app at /studio/ with one login (user name and password, onair.core.accounts), one layout
and a navigation shown per role (studio/pages.py). `/` leads here.

The session cookie authenticates the page's calls to the same public API as everyone else; the page carries
the session's CSRF token in a <meta> tag and the script sends it as X-CSRF-Token.
"""

from __future__ import annotations

from aiohttp import web

from onair.core.accounts import passwords, sessions, users
from onair.core.accounts.login import log_in
from onair.core.auth import (
    audit,
    check_csrf,
    check_same_origin,
    clear_session_cookie,
    client_ip,
    label,
    principal,
    set_session_cookie,
)
from onair.core.db.pool import POOL
from onair.core.errors import AppError, TooManyRequests
from studio import pages


@label("public")  # the login form, or the first section the signed-in person may open
async def index(request: web.Request) -> web.Response:
    who = await principal(request)
    if who is None or who.session is None:
        return pages.render(request, "login.html", error="bad" if request.query.get("error") == "1" else None)
    if who.session.must_change_password:
        return pages.render(request, "password.html", user=who, csrf=who.csrf_token)
    raise web.HTTPSeeOther(pages.first_section(who))


async def login(request: web.Request) -> web.Response:
    check_same_origin(request)  # no logging people in from another site's form
    form = await request.post()
    try:
        session_id, _, _ = await log_in(request.app[POOL], str(form.get("name", "")), str(form.get("password", "")),
                                        ip=client_ip(request), user_agent=request.headers.get("User-Agent"))
    except TooManyRequests as err:
        return pages.render(request, "login.html", status=429, headers=err.headers, error="throttled",
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
        return pages.render(request, "password.html", status=400, user=who, csrf=who.csrf_token, error=error)
    await audit(request, "user.password", object_type="user", object_id=who.name)
    raise web.HTTPSeeOther("/studio/")


@label("public")  # the HbbTV registry moved into Shows
async def hbbtv(request: web.Request) -> web.Response:
    raise web.HTTPFound("/studio/shows#hbbtv")


@label("public")  # the first URL `make run` prints
async def to_index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/studio/")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/studio/", index, name="studio")
    r.add_get("/studio", to_index)
    r.add_post("/studio/login", login, name="studio.login")
    r.add_post("/studio/logout", logout, name="studio.logout")
    r.add_post("/studio/password", password, name="studio.password")
    r.add_get("/studio/hbbtv/", hbbtv, name="hbbtv-studio")
    r.add_get("/", to_index, name="root")
    pages.setup(app)
