"""/api/v1/users (admin), /api/v1/me (anyone signed in; /me/tokens: personal API tokens), /api/v1/session (log
out), /api/v1/audit (admin)."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from onair.core.accounts import audit as audit_log
from onair.core.accounts import passwords, roles, sessions, tokens, users
from onair.core.auth import audit, authorize, clear_session_cookie, requires
from onair.core.db.pool import POOL
from onair.core.errors import BadRequest, Conflict, Forbidden, NotFound, parse_query, read_json
from onair.core.openapi import described

_NO_STORE = {"Cache-Control": "no-store"}


class UserIn(BaseModel):
    name: str = Field(..., min_length=1, max_length=63)
    role: str


class UserPatch(BaseModel):
    role: str | None = None
    disabled: bool | None = None


class PasswordIn(BaseModel):
    current_password: str = Field(..., max_length=passwords.MAX_LENGTH)
    new_password: str = Field(..., max_length=passwords.MAX_LENGTH)


class TokenIn(BaseModel):
    name: str = Field(..., min_length=1, max_length=100)
    scopes: list[str] = Field(..., min_length=1, max_length=30)


class AuditQuery(BaseModel):
    limit: int = Field(100, ge=1, le=1000)
    before: int | None = Field(None, ge=1)
    action: str | None = Field(None, max_length=100)
    actor: str | None = Field(None, max_length=100)
    since: datetime | None = None


@requires(roles.SELF)
async def me(request: web.Request) -> web.Response:
    who = await authorize(request, roles.SELF)
    return web.json_response({"name": who.name, "role": who.role, "permissions": roles.permissions(who.role),
                              "must_change_password": bool(who.session and who.session.must_change_password)},
                             headers=_NO_STORE)


@requires(roles.SELF)
@described(body=PasswordIn)
async def change_password(request: web.Request) -> web.Response:
    who = await authorize(request, roles.SELF)
    if who.session is None:
        raise Forbidden("The admin token has no password; use `onair user passwd`", code="no-account")
    body = await read_json(request, PasswordIn)
    db = request.app[POOL]
    found = await users.find(db, who.name)
    if found is None or not await passwords.verify_password(found[1], body.current_password):
        raise Forbidden("current_password: wrong password", code="bad-credentials")
    await users.set_password(db, who.name, body.new_password, keep_session=who.session.id_hash)
    await audit(request, "user.password", object_type="user", object_id=who.name)
    return web.Response(status=204)


@requires(roles.SELF)
async def log_out(request: web.Request) -> web.Response:
    who = await authorize(request, roles.SELF)
    response = web.Response(status=204)
    if who.session is not None:
        await sessions.end(request.app[POOL], who.session.id_hash)
        await audit(request, "logout", object_type="user", object_id=who.name)
        clear_session_cookie(response)
    return response


@requires("users:manage")
async def list_users(request: web.Request) -> web.Response:
    return web.json_response({"users": [u.to_json() for u in await users.list_all(request.app[POOL])]},
                             headers=_NO_STORE)


@requires("users:manage")
@described(body=UserIn)
async def create_user(request: web.Request) -> web.Response:
    body = await read_json(request, UserIn)
    user, password = await users.create(request.app[POOL], body.name, body.role)
    await audit(request, "user.create", object_type="user", object_id=user.name, detail={"role": user.role})
    return web.json_response({**user.to_json(), "password": password}, status=201,
                             headers={**_NO_STORE, "Location": f"/api/v1/users/{user.name}"})


async def _keep_an_admin(db: users.DB, name: str) -> None:
    """Refuse the change that would leave no active admin (nobody could manage users any more)."""
    admins = [u for u in await users.list_all(db) if u.role == "admin" and u.disabled_at is None]
    if [u.name for u in admins] == [name]:
        raise Conflict(f"{name} is the last active admin", code="last-admin")


@requires("users:manage")
@described(body=UserPatch)
async def patch_user(request: web.Request) -> web.Response:
    body = await read_json(request, UserPatch)
    name = request.match_info["name"]
    db = request.app[POOL]
    user = await users.get(db, name)
    if (body.role not in (None, "admin") or body.disabled) and user.role == "admin":
        await _keep_an_admin(db, name)
    if body.role is not None and body.role != user.role:
        user = await users.set_role(db, name, body.role)
        await audit(request, "user.role", object_type="user", object_id=name, detail={"role": user.role})
    if body.disabled is not None and body.disabled != (user.disabled_at is not None):
        user = await users.set_disabled(db, name, body.disabled)
        await audit(request, "user.disable" if body.disabled else "user.enable", object_type="user",
                    object_id=name)
    return web.json_response(user.to_json(), headers=_NO_STORE)


@requires("users:manage")
async def reset_user(request: web.Request) -> web.Response:
    user, password = await users.reset(request.app[POOL], request.match_info["name"])
    await audit(request, "user.reset", object_type="user", object_id=user.name)
    return web.json_response({**user.to_json(), "password": password}, headers=_NO_STORE)


@requires("audit:read")
@described(query=AuditQuery)
async def audit_entries(request: web.Request) -> web.Response:
    q = parse_query(request, AuditQuery)
    entries = await audit_log.recent(request.app[POOL], limit=q.limit, before=q.before, action=q.action,
                                     actor=q.actor, since=q.since)
    body: dict[str, object] = {"entries": entries}
    if len(entries) == q.limit:
        body["next"] = f"/api/v1/audit?limit={q.limit}&before={entries[-1]['id']}"
    return web.json_response(body, headers=_NO_STORE)


async def _account(request: web.Request) -> tuple[int, str]:
    who = await authorize(request, roles.SELF)
    if who.user_id is None:
        raise Forbidden("The admin token belongs to no account; log in as a user", code="no-account")
    return who.user_id, who.role


@requires(roles.SELF)
async def list_tokens(request: web.Request) -> web.Response:
    user_id, role = await _account(request)
    return web.json_response({"tokens": await tokens.list_for(request.app[POOL], user_id),
                              "grantable": roles.grantable(role)}, headers=_NO_STORE)


@requires(roles.SELF)  # a personal token cannot make tokens: authorize refuses it any change to the account
@described(body=TokenIn)
async def create_token(request: web.Request) -> web.Response:
    user_id, role = await _account(request)
    body = await read_json(request, TokenIn)
    beyond = sorted(set(body.scopes) - set(roles.grantable(role)))
    if beyond:
        raise BadRequest(f"scopes: the {role} role cannot grant {', '.join(beyond)}", code="invalid-body")
    token, public = await tokens.create(request.app[POOL], user_id, body.name, body.scopes)
    await audit(request, "token.create", object_type="api_token", object_id=str(public["id"]),
                detail={"name": body.name, "scopes": public["scopes"]})
    return web.json_response({**public, "token": token}, status=201, headers=_NO_STORE)


@requires(roles.SELF)
async def revoke_token(request: web.Request) -> web.Response:
    user_id, _ = await _account(request)
    raw = request.match_info["token_id"]
    if not raw.isdigit() or not await tokens.revoke(request.app[POOL], user_id, int(raw)):
        raise NotFound(f"No token {raw!r} of yours")
    await audit(request, "token.revoke", object_type="api_token", object_id=raw)
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/me", me, name="me")
    r.add_post("/api/v1/me/password", change_password, name="me.password")
    r.add_get("/api/v1/me/tokens", list_tokens, name="me.tokens")
    r.add_post("/api/v1/me/tokens", create_token, name="me.tokens.create")
    r.add_delete("/api/v1/me/tokens/{token_id}", revoke_token, name="me.tokens.revoke")
    r.add_delete("/api/v1/session", log_out, name="session.delete")
    r.add_get("/api/v1/users", list_users, name="users")
    r.add_post("/api/v1/users", create_user, name="users.create")
    r.add_patch("/api/v1/users/{name}", patch_user, name="users.patch")
    r.add_post("/api/v1/users/{name}/reset", reset_user, name="users.reset")
    r.add_get("/api/v1/audit", audit_entries, name="audit")
