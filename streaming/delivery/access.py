"""Who may fetch an object: path checks (no dot segments, no encoded separators), signed path tokens and the
asset's rights window.

A valid path token (streaming.delivery.signing) opens a private asset and bypasses an *embargo* (previews for
press/partners before the window opens); it never bypasses expiry (rights have ended) or geography (licences are
territorial). Expired tokens answer 403 `token-expired` (not 410: a CDN may cache a 410 as permanent).
"""

from __future__ import annotations

import re
from datetime import datetime

from onair.core.errors import BadRequest, Forbidden
from streaming.catalog import Asset, generation_prefix, media_prefix
from streaming.catalog.rights import Availability, availability
from streaming.delivery import signing

# A path segment that, after one or more rounds of percent-decoding, is a dot segment or hides a
# separator. aiohttp hands us decoded text, so we look at the raw path too.
_ENCODED_TRICK = re.compile(r"%(?:2e|2f|5c|25|00)", re.IGNORECASE)


def check_raw_path(raw_path: str) -> None:
    """Reject dot segments, encoded separators/dots and double encoding before anything is decoded."""
    path = raw_path.split("?", 1)[0]
    if _ENCODED_TRICK.search(path) or "\\" in path or "//" in path:
        raise BadRequest("Encoded dots, slashes or percent signs are not allowed in media paths",
                         code="invalid-path")
    if any(seg in (".", "..") for seg in path.split("/")):
        raise BadRequest("Dot segments are not allowed in media paths", code="invalid-path")


_ASSET_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# What the API, feeds, pages and players reach by an unversioned URL: the top manifests, images and captions.
# They follow the published generation. Every other unversioned key (variant playlists, segments) is
# generation 0's own: only generation 0's manifests reference them, and players still on it keep working.
_ENTRY_KEYS = ("hls/master.m3u8", "dash/manifest.mpd")
_ENTRY_FOLDERS = ("images/", "captions/", "poster-")


def object_key(asset_id: str, key: str, generation: int = 0) -> str:
    """Store key of a media object; the same rules as onair.core.storage.check_key, without pathlib per
    request (this is the hot path of a show start). A key naming its generation (g<N>/..., what the top
    manifests of a replaced source reference) is that generation's object, as long as it is kept; an entry
    key (manifests, images, captions) is the published generation's."""
    if not _ASSET_ID.fullmatch(asset_id) or not key or key.startswith("/") or key.endswith("/") \
            or "\\" in key or "\x00" in key or any(p in ("", ".", "..") for p in key.split("/")):
        raise BadRequest("Invalid media path", code="invalid-path")
    if generation and (key in _ENTRY_KEYS or key.startswith(_ENTRY_FOLDERS)):
        return generation_prefix(asset_id, generation) + key
    return media_prefix(asset_id) + key


_TOKEN_PROBLEMS = {
    signing.TokenProblem.MALFORMED: ("token-invalid", "The playback token is malformed"),
    signing.TokenProblem.BAD_SIGNATURE: ("token-invalid", "The playback token is not valid"),
    signing.TokenProblem.EXPIRED: ("token-expired", "The playback token has expired; reload the player"),
    signing.TokenProblem.WRONG_PATH: ("token-wrong-path", "The playback token does not cover this path"),
    signing.TokenProblem.WRONG_IP: ("token-wrong-ip", "The playback token is bound to another address"),
}


def check_token(secret: bytes, token: str, asset_id: str, key: str, now: float,
                client_ip: str | None, skew: float = 0) -> signing.TokenFields:
    """The token's fields when it opens this object, else 403 naming why."""
    problem = signing.check_token(secret, token, f"/media/{asset_id}/{key}", now, client_ip, skew)
    fields = None
    if problem is signing.TokenProblem.OK:
        # Defence in depth: even a genuine token must be scoped to this one asset's folder, so an acl
        # like "/media/ab*" (which we never issue) cannot open "/media/abc/...".
        fields = signing.read_token(secret, token)
        if fields is None or not fields.acl.startswith(f"/media/{asset_id}/"):
            problem = signing.TokenProblem.WRONG_PATH
    if problem is not signing.TokenProblem.OK or fields is None:
        code, detail = _TOKEN_PROBLEMS[problem]
        raise Forbidden(detail, code=code)
    return fields


_RIGHTS_PROBLEMS = {
    Availability.EMBARGOED: ("embargoed", "This programme is not available yet"),
    Availability.EXPIRED: ("rights-expired", "This programme is no longer available"),
    Availability.GEO_BLOCKED: ("geo-blocked", "This programme is not available in your country"),
    Availability.GEO_UNKNOWN: ("geo-unknown", "This programme is limited to some countries and yours is not known"),
}


def check_access(asset: Asset, *, has_token: bool, now: datetime, country: str | None) -> None:
    if asset.visibility == "private" and not has_token:
        raise Forbidden("This programme needs a signed playback URL", code="token-required")
    verdict = availability(asset.rights, now, country)
    if verdict is Availability.AVAILABLE or (verdict is Availability.EMBARGOED and has_token):
        return
    code, detail = _RIGHTS_PROBLEMS[verdict]
    raise Forbidden(detail, code=code)
