"""Embed tokens: what lets a private video's embed page play. Pure functions over the signing key.

`/embed/{id}?token=<exp>.<hmac>`: minted by an authorised API call (POST /api/v1/assets/{id}/embed-token), bound
to one asset and an expiry. Without one, a private video's embed page is the same "not found" page as a video
that does not exist: knowing the id is not enough, and nothing about the video leaks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def _mac(key: bytes, asset_id: str, expires: int) -> str:
    digest = hmac.new(key, f"embed:{asset_id}:{expires}".encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def mint(key: bytes, asset_id: str, expires: int) -> str:
    return f"{expires}.{_mac(key, asset_id, expires)}"


def valid(key: bytes, asset_id: str, token: str | None, now: float) -> bool:
    if not token or len(token) > 64 or not token.isascii():
        return False
    raw_exp, _, mac = token.partition(".")
    if not raw_exp.isdigit() or len(raw_exp) > 12 or not mac:
        return False
    expires = int(raw_exp)
    return now < expires and hmac.compare_digest(mac, _mac(key, asset_id, expires))
