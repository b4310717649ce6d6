"""Origin for live channels: `/live/{channel_id}/{key}` (playlists; segments of unrecorded events).

Caching: segments are written once -> immutable; live playlists and the MPD change every segment -> max-age of
about half a segment, so a CDN collapses a crowd onto one origin request per half segment without holding
viewers behind the live edge; an ended channel's playlists no longer change until the next event -> a minute.
Never past the end of the channel's rights window; a geo-restricted channel's answers vary by country.

Rights: the channel's window and geo lists (the asset decision, streaming/catalog/rights.py) with the viewer's
country as the trusted CDN header gives it (onair.core.web.viewer_country). No token opens a live channel.
"""

from __future__ import annotations

from aiohttp import web

from onair.core import clock
from onair.core.db.pool import POOL
from onair.core.errors import AppError, Forbidden, NotFound, problem_response
from onair.core.settings import SETTINGS
from onair.core.storage import STORE, ObjectNotFound
from onair.core.web import cap_ttl, viewer_country
from streaming.catalog.rights import Availability, availability
from streaming.delivery import access, caching, origin
from streaming.live.channels import Channel, get_channel, live_prefix

_RIGHTS = {
    Availability.EMBARGOED: ("embargoed", "This live stream is not available yet"),
    Availability.EXPIRED: ("rights-expired", "This live stream is no longer available"),
    Availability.GEO_BLOCKED: ("geo-blocked", "This live stream is not available in your country"),
}


POSTER_KEY = "images/poster.jpg"
STATUS_KEY = "status.json"    # what players show over the picture: the slate while the encoder is away
PUBLIC_STATUS = {"idle": "idle", "starting": "starting", "live": "live", "reconnecting": "reconnecting",
                 "ended": "ended"}


def live_cache_control(key: str, status: str, segment_seconds: float, poster_seconds: float = 10.0) -> str:
    if key == POSTER_KEY:   # rewritten while live, unlike every other image
        return f"public, max-age={max(1, int(poster_seconds / 2))}" if status != "ended" else "public, max-age=60"
    kind = caching.object_kind(key)
    if kind in caching.MANIFESTS:
        if status == "ended":
            return "public, max-age=60"
        return f"public, max-age={max(1, int(segment_seconds / 2))}"
    return caching.IMMUTABLE if kind in caching.IMMUTABLE_KINDS else "public, max-age=2"


def check_rights(ch: Channel, request: web.Request) -> None:
    if ch.visibility == "private":
        raise Forbidden("This channel is private", code="token-required")
    verdict = availability(ch.rights, clock.now(request.app), viewer_country(request))
    if verdict is not Availability.AVAILABLE:
        code, detail = _RIGHTS[verdict]
        raise Forbidden(detail, code=code)


def rights_caching(base: str, ch: Channel, request: web.Request) -> dict[str, str]:
    """Cache-Control capped at the window's end; Vary on the country header when the answer depends on it."""
    headers = {"Cache-Control": base}
    current = int(base.rsplit("max-age=", 1)[1].split(",")[0]) if "max-age=" in base else None
    if current is not None and ch.rights.available_until is not None:
        ttl = cap_ttl(current, ch.rights.available_until, clock.now(request.app))
        if ttl < current:
            headers["Cache-Control"] = f"public, max-age={ttl}"
    if ch.rights.geo_allow or ch.rights.geo_deny:
        headers["Vary"] = ", ".join(request.app[SETTINGS].country_headers)
    return headers


async def serve(request: web.Request) -> web.StreamResponse:
    config = request.app[origin.ORIGIN_CONFIG]
    cors = caching.cors_headers(request, config.cors_origins)
    channel_id, key = request.match_info["channel_id"], request.match_info["key"]
    try:
        access.check_raw_path(request.raw_path)
        access.object_key(channel_id, key)  # the same path rules as /media (raises on a bad key)
        store_key = live_prefix(channel_id) + key
        ch = await get_channel(request.app[POOL], channel_id)
        if ch is None:
            raise NotFound(f"No live channel {channel_id}", code="channel-not-found")
        check_rights(ch, request)
        if key == STATUS_KEY:
            return web.json_response({"status": PUBLIC_STATUS.get(ch.status, "idle"), "event": ch.event_no},
                                     headers={**cors, "Cache-Control": "public, max-age=1"})
        try:
            data = await request.app[STORE].get_bytes(store_key)
        except ObjectNotFound:
            raise NotFound(f"Channel {channel_id} has no object {key}", code="object-not-found") from None
    except AppError as err:
        headers = {**cors, **err.headers, "Cache-Control": "public, max-age=1" if err.status == 404 else "no-store"}
        return problem_response(err.status, err.code, err.title, err.detail, headers=headers, instance=request.path)
    settings = request.app[SETTINGS]
    base = live_cache_control(key, ch.status, settings.live_segment_seconds, settings.live_poster_seconds)
    headers = {"Content-Type": caching.content_type(key), **cors, **rights_caching(base, ch, request)}
    if "Vary" in cors and "Vary" in headers and cors["Vary"] != headers["Vary"]:
        headers["Vary"] = f"{cors['Vary']}, {headers['Vary']}"
    return web.Response(body=data if request.method != "HEAD" else None, headers=headers)


def setup(app: web.Application) -> None:
    resource = app.router.add_resource("/live/{channel_id}/{key:.+}", name="live-media")
    resource.add_route("GET", serve)
    resource.add_route("HEAD", serve)
    resource.add_route("OPTIONS", origin.preflight)
