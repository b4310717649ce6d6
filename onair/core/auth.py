"""Who may do what: the admin bearer token, users' session cookies (with CSRF checks), the permission
decorator every guarded route uses, and the per-deployment signing secret."""

from __future__ import annotations

import functools
import hmac
import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from aiohttp import web

from onair.core import logs
from onair.core.accounts import audit as audit_log
from onair.core.accounts import roles, sessions, tokens
from onair.core.accounts.sessions import Session
from onair.core.db.pool import POOL
from onair.core.errors import Forbidden, Unauthorized
from onair.core.settings import SETTINGS, Settings

ADMIN_TOKEN = web.AppKey("admin_token", str)
SIGNING_KEY = web.AppKey("signing_key", bytes)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Callable[..., Any])

# Who may call a handler, as `onair routes` shows it: a permission ("assets:write", "admin", ...) set by
# `requires`, or a label set by `label` where the handler decides itself: "partner:<scope>", "token" (a signed
# URL), "public|assets:read" (public, but a user with the permission sees more); "public" when unmarked.
PERMISSION_ATTR = "permission"


def label(permission: str) -> Callable[[H], H]:
    """Name who may call a handler that checks access itself (a label only: no check is added)."""
    def mark(handler: H) -> H:
        setattr(handler, PERMISSION_ATTR, permission)
        return handler

    return mark


def permission_of(handler: Callable[..., Any]) -> str:
    return getattr(handler, PERMISSION_ATTR, "public")


def _secret_file(path: Path, nbytes: int) -> tuple[str, bool]:
    """Read a secret from `path`, creating it (mode 0600) on first use. Returns (secret, created).

    The secret is written to a private temp file and hard-linked into place, so a process racing us
    (N web processes starting together) sees either no file or the complete secret, never an empty one.
    """
    try:
        return path.read_text().strip(), False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(nbytes)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "w") as f:  # mkstemp creates the file with mode 0600
            f.write(token + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:  # another process won the race; use its secret
            return path.read_text().strip(), False
    finally:
        os.unlink(tmp)
    return token, True


def admin_token(settings: Settings) -> tuple[str, bool]:
    if settings.admin_token:
        return settings.admin_token, False
    return _secret_file(settings.data_dir / "admin_token", 24)


def signing_key(settings: Settings) -> bytes:
    if settings.signing_key:
        return settings.signing_key.encode()
    return _secret_file(settings.data_dir / "signing_key", 32)[0].encode()


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


# --- who is asking: the admin bearer token, or a user's session cookie --------------------------------

SESSION_COOKIE = "onair_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_ACTOR = "admin-token"


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    user_id: int | None = None
    session: Session | None = None  # None: a bearer token (scripts, tests); no CSRF checks apply
    scopes: frozenset[str] | None = None  # a personal API token's: it may do only these (and what the role may)

    @property
    def csrf_token(self) -> str | None:
        return self.session.csrf_token if self.session else None


_PRINCIPAL = web.RequestKey("onair.principal", object)  # who is asking, resolved once per request


def client_ip(request: web.Request) -> str | None:
    """The address a request came from, for throttling and the audit log. One place, so a trusted-proxy
    policy (X-Forwarded-For only from known proxies) changes here alone."""
    return request.remote


async def principal(request: web.Request) -> Principal | None:
    if _PRINCIPAL in request:
        return request[_PRINCIPAL]
    found = None
    token = bearer(request)
    if token is not None:  # a bearer header decides alone, even with a cookie beside it
        if hmac.compare_digest(token.encode(), request.app[ADMIN_TOKEN].encode()):
            found = Principal(TOKEN_ACTOR, "admin")
        elif tokens.looks_like(token) and (owner := await tokens.lookup(request.app[POOL], token)):
            found = Principal(owner.name, owner.role, owner.user_id, scopes=owner.scopes)
    elif request.cookies.get(SESSION_COOKIE):
        session = await sessions.lookup(request.app[POOL], request.cookies[SESSION_COOKIE])
        if session is not None:
            found = Principal(session.name, session.role, session.user_id, session)
    request[_PRINCIPAL] = found
    if found is not None:
        logs.annotate(user=found.name)
    return found


def is_admin(request: web.Request) -> bool:
    """Synchronous check for the admin bearer token (or a session already resolved as an admin's)."""
    token = bearer(request)
    if token is not None:
        return hmac.compare_digest(token.encode(), request.app[ADMIN_TOKEN].encode())
    found = request.get(_PRINCIPAL)
    return found is not None and found.role == "admin"


def _own_origin(request: web.Request, origin: str) -> bool:
    """The page that sent the request is served by us: same host and port as this request (any scheme,
    since TLS may end at a proxy), or the public URL's origin. A sibling port or subdomain is not."""
    parts = urlsplit(origin)
    if parts.netloc and parts.netloc.lower() == request.host.lower():
        return True
    public = request.app[SETTINGS].public_url if SETTINGS in request.app else None
    if public:
        own = urlsplit(public)
        return (parts.scheme, parts.netloc.lower()) == (own.scheme, own.netloc.lower())
    return False


def check_same_origin(request: web.Request) -> None:
    """Browsers say where a request comes from; a cookie-authenticated change must come from our pages."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        raise Forbidden(f"Cross-site request refused (Sec-Fetch-Site: {site})", code="csrf-origin")
    origin = request.headers.get("Origin")
    if origin is not None and not _own_origin(request, origin):
        raise Forbidden("Cross-origin request refused (Origin is not this site)", code="csrf-origin")


def check_csrf(request: web.Request, who: Principal, presented: str | None = None) -> None:
    """Origin check plus the per-session token (header X-CSRF-Token, or a form field passed in)."""
    check_same_origin(request)
    expected = who.csrf_token or ""
    presented = presented if presented is not None else request.headers.get(CSRF_HEADER, "")
    if not expected or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Forbidden(f"Missing or wrong {CSRF_HEADER} header", code="csrf-token")


async def authorize(request: web.Request, permission: str) -> Principal:
    """The one place permissions are enforced (401 without credentials, 403 without the permission)."""
    who = await principal(request)
    if who is None:
        raise Unauthorized("Log in, or send 'Authorization: Bearer <admin token>'",
                           headers={"WWW-Authenticate": 'Bearer realm="onair-admin"'})
    if who.session is not None:
        if request.method not in _SAFE:
            check_csrf(request, who)
        elif request.headers.get("Upgrade", "").lower() == "websocket":
            check_same_origin(request)  # browsers let any page open a WebSocket with our cookie
        if who.session.must_change_password and permission != roles.SELF:
            raise Forbidden("Choose a new password first (yours is a one-time password)",
                            code="password-change-required")
    if not roles.allows(who.role, permission):
        raise Forbidden(f"This needs the '{permission}' permission, which the {who.role} role does not have",
                        code="permission-denied", permission=permission)
    if who.scopes is not None:  # a personal token: its scopes, and no changes to the account itself
        if permission == roles.SELF and request.method not in _SAFE:
            raise Forbidden("A personal API token cannot change its own account (log in instead)",
                            code="scope-denied", permission=permission)
        if permission != roles.SELF and permission not in who.scopes:
            raise Forbidden(f"This needs the '{permission}' scope, which this token does not have",
                            code="scope-denied", permission=permission)
    return who


async def has_permission(request: web.Request, permission: str) -> bool:
    """For handlers that show more to those allowed (a private asset, device ids to moderators)."""
    try:
        await authorize(request, permission)
    except (Unauthorized, Forbidden):
        return False
    return True


def requires(permission: str) -> Callable[[Handler], Handler]:
    """Guard a handler with a permission; `handler.permission` names it (read by `onair routes`)."""
    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            await authorize(request, permission)
            return await handler(request)

        return label(permission)(wrapper)

    return decorate


# Admin-only (users, settings, partners). Kept under its old name while routes move to finer permissions.
admin_required = requires("admin")


def set_session_cookie(response: web.StreamResponse, request: web.Request, session_id: str) -> None:
    public = request.app[SETTINGS].public_url if SETTINGS in request.app else None
    secure = request.secure or bool(public and public.startswith("https://"))  # TLS may end at a proxy
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="Strict", path="/", secure=secure,
                        max_age=int(sessions.LIFETIME.total_seconds()))


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")


async def audit(request: web.Request, action: str, *, object_type: str | None = None,
                object_id: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """Record what the person behind this request did (call after the change succeeded)."""
    who = await principal(request)
    await audit_log.record(request.app[POOL], who.name if who else "anonymous", action,
                           user_id=who.user_id if who else None, object_type=object_type, object_id=object_id,
                           ip=client_ip(request), detail=detail)
