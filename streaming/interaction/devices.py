"""Server-issued device ids: `d1.<random>.<hmac>`, signed with the deployment's signing key.

A vote or chat message carries one; because only the server can mint valid ids, counting random ids
does not buy extra votes. Verification is a pure function other modules (and apps) call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from aiohttp import web

from onair.core import logs
from onair.core.auth import SIGNING_KEY
from onair.core.errors import Forbidden

PREFIX = "d1"
_MAC_BYTES = 12
_MAX_LEN = 64


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, f"device:{body}".encode(), hashlib.sha256).digest()[:_MAC_BYTES])


def issue(key: bytes) -> str:
    body = _b64(secrets.token_bytes(12))
    return f"{PREFIX}.{body}.{_mac(key, body)}"


def verify(key: bytes, device_id: object) -> bool:
    if not isinstance(device_id, str) or len(device_id) > _MAX_LEN:
        return False
    prefix, _, rest = device_id.partition(".")
    body, _, mac = rest.partition(".")
    if prefix != PREFIX or not body or not mac:
        return False
    return hmac.compare_digest(mac, _mac(key, body))


def require(request: web.Request, device_id: object) -> str:
    """The device id if the server signed it, else 403 (a forged or mistyped id)."""
    if not verify(request.app[SIGNING_KEY], device_id):
        raise Forbidden("device_id was not issued by this server; get one from POST /api/v1/devices",
                        code="invalid-device")
    logs.annotate(device=device_id)
    return device_id  # type: ignore[return-value]


async def create_device(request: web.Request) -> web.Response:
    device_id = issue(request.app[SIGNING_KEY])
    return web.json_response({"device_id": device_id}, status=201, headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/devices", create_device, name="devices")
