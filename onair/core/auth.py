"""Admin/studio credentials and the per-deployment signing secret."""

from __future__ import annotations

import functools
import hmac
import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from onair.core.errors import Unauthorized
from onair.core.settings import Settings

ADMIN_TOKEN = web.AppKey("admin_token", str)
SIGNING_KEY = web.AppKey("signing_key", bytes)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Callable[..., Any])

# Who may call a handler, as `onair routes` shows it: "admin", "partner:<scope>", "public|admin" (public, but an
# admin sees more), or "public" (the default for an unmarked handler).
_PERMISSION = "__onair_permission__"


def requires(permission: str) -> Callable[[H], H]:
    """Label a handler with who may call it. A label only: the check itself is the decorator that sets it."""
    def mark(handler: H) -> H:
        setattr(handler, _PERMISSION, permission)
        return handler

    return mark


def permission_of(handler: Callable[..., Any]) -> str:
    return getattr(handler, _PERMISSION, "public")


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


def is_admin(request: web.Request) -> bool:
    expected = request.app[ADMIN_TOKEN]
    presented = bearer(request) or request.cookies.get("onair_admin")
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())


def check_admin(request: web.Request) -> None:
    if not is_admin(request):
        raise Unauthorized("This endpoint needs 'Authorization: Bearer <admin token>'",
                           headers={"WWW-Authenticate": 'Bearer realm="onair-admin"'})


def admin_required(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        check_admin(request)
        return await handler(request)

    return requires("admin")(wrapper)
