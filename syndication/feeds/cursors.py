"""Opaque page cursors: base64url JSON plus an HMAC, so a client can neither forge nor edit one."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from onair.core.errors import BadRequest

_MAX_LEN = 512


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, scope: str, body: str) -> str:
    return _b64(hmac.new(key, f"cursor\0{scope}\0{body}".encode(), hashlib.sha256).digest()[:16])


def encode(key: bytes, scope: str, position: dict[str, Any]) -> str:
    """`scope` binds the cursor to one listing (feed + filter) so it cannot be replayed on another."""
    body = _b64(json.dumps(position, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(key, scope, body)}"


def decode(key: bytes, scope: str, token: str) -> dict[str, Any]:
    body, _, mac = token.partition(".")
    if len(token) > _MAX_LEN or not body or not mac or not hmac.compare_digest(mac, _mac(key, scope, body)):
        raise BadRequest("The page cursor is invalid; start again from the first page", code="invalid-cursor")
    try:
        value = json.loads(_unb64(body))
    except (ValueError, binascii.Error):
        raise BadRequest("The page cursor is invalid", code="invalid-cursor") from None
    if not isinstance(value, dict):
        raise BadRequest("The page cursor is invalid", code="invalid-cursor")
    return value
