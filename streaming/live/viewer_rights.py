"""Who may watch a live channel, and how long a cache may keep what it was told.

Rights: the channel's window and geo lists (the asset decision, streaming/catalog/rights.py) with the viewer's
country as the trusted CDN header gives it (onair.core.web.viewer_country). No token opens a live channel.
Caching never outlasts the end of the rights window; a geo-restricted channel's answers vary by country.
"""

from __future__ import annotations

from aiohttp import web

from onair.core import clock
from onair.core.errors import Forbidden
from onair.core.settings import SETTINGS
from onair.core.web import cap_ttl, viewer_country
from streaming.catalog.rights import Availability, availability
from streaming.live.channels import Channel

_RIGHTS = {
    Availability.EMBARGOED: ("embargoed", "This live stream is not available yet"),
    Availability.EXPIRED: ("rights-expired", "This live stream is no longer available"),
    Availability.GEO_BLOCKED: ("geo-blocked", "This live stream is not available in your country"),
    Availability.GEO_UNKNOWN: ("geo-unknown", "This live stream is limited to some countries and yours is not known"),
}


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
