"""HTTP for pairing a TV with a phone: the TV asks for a code (and its QR code), the phone claims it."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from onair.core.bounded import Bounded
from onair.core.clock import now
from onair.core.db.pool import POOL
from onair.core.errors import NotFound, TooManyRequests, read_json
from onair.core.openapi import described
from onair.core.web import base_url, client_ip
from streaming.interaction import devices, pairing, shows

# Failed claims per network address in a window: enough for typos, far too few to guess codes.
CLAIM_FAILURES = 20
CLAIM_WINDOW_S = 600.0
FAILURES = web.AppKey("pairing_failures", Bounded)


class PairingIn(BaseModel):
    device_id: str = Field(max_length=200)
    show: str | None = Field(default=None, max_length=64)
    hbbtv_app: str | None = Field(default=None, max_length=64)


class CancelIn(BaseModel):
    device_id: str = Field(max_length=200)


def _page_url(request: web.Request, slug: str, code: str) -> str:
    return f"{base_url(request)}/s/{slug}?pair={code}"


@described(body=PairingIn)
async def create_pairing(request: web.Request) -> web.Response:
    body = await read_json(request, PairingIn, max_bytes=4096)
    device_id = devices.require(request, body.device_id)
    db = request.app[POOL]
    show = await shows.get(db, body.show) if body.show and shows.SLUG_RE.match(body.show) else None
    if show is None and body.hbbtv_app:
        show = await shows.for_hbbtv_app(db, body.hbbtv_app)
    if show is None:
        raise NotFound("No show to pair with: name a show, or an HbbTV app attached to one", code="show-not-found")
    made = await pairing.create(db, device_id, show.slug, now(request.app))
    if made is None:
        raise TooManyRequests(f"This device holds {pairing.MAX_LIVE_PER_DEVICE} unused codes; use or cancel one",
                              code="too-many-codes", headers={"Retry-After": "60"})
    return web.json_response({
        "code": made.code, "url": _page_url(request, show.slug, made.code), "show": show.slug,
        "qr": f"/api/v1/pairings/{made.code}/qr.svg", "expires_at": made.expires_at.isoformat()},
        status=201, headers={"Cache-Control": "no-store"})


async def qr_code(request: web.Request) -> web.Response:
    code = pairing.normalise(request.match_info["code"])
    found = await pairing.live(request.app[POOL], code, now(request.app)) if code else None
    if found is None or found.show_slug is None:
        raise NotFound("No live pairing code", code="pairing-invalid")
    svg = pairing.qr_svg(_page_url(request, found.show_slug, found.code))
    return web.Response(body=svg, content_type="image/svg+xml", headers={"Cache-Control": "no-store"})


async def claim(request: web.Request) -> web.Response:
    failures = request.app[FAILURES]
    ip = client_ip(request) or ""
    if failures.get(ip, 0) >= CLAIM_FAILURES:
        raise TooManyRequests("Too many wrong pairing codes from this network; wait a few minutes",
                              code="pairing-rate-limited", headers={"Retry-After": str(int(CLAIM_WINDOW_S))})
    code = pairing.normalise(request.match_info["code"])
    found = await pairing.claim(request.app[POOL], code, now(request.app)) if code else None
    if found is None:
        failures.set(ip, failures.get(ip, 0) + 1)
        raise NotFound("This pairing code is wrong, used or expired; ask the TV for a new one",
                       code="pairing-invalid")
    # the phone now speaks for the TV's device: one vote per household, the same identity in the chat
    return web.json_response({"device_id": found.device_id, "show": found.show_slug},
                             headers={"Cache-Control": "no-store"})


@described(body=CancelIn)
async def cancel(request: web.Request) -> web.Response:
    body = await read_json(request, CancelIn, max_bytes=4096)
    device_id = devices.require(request, body.device_id)
    cancelled = await pairing.cancel(request.app[POOL], device_id, now(request.app))
    return web.json_response({"cancelled": cancelled}, headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app[FAILURES] = Bounded(100_000, CLAIM_WINDOW_S)
    r = app.router
    r.add_post("/api/v1/pairings", create_pairing, name="pairings.create")
    r.add_post("/api/v1/pairings/cancel", cancel, name="pairings.cancel")
    r.add_get("/api/v1/pairings/{code}/qr.svg", qr_code, name="pairings.qr")
    r.add_post("/api/v1/pairings/{code}/claim", claim, name="pairings.claim")
