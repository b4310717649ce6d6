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
from streaming.interaction import chat, devices, pairing, shows

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
        "qr": f"/api/v1/pairings/{made.code}/qr.svg", "qr_png": f"/api/v1/pairings/{made.code}/qr.png",
        "expires_at": made.expires_at.isoformat()},
        status=201, headers={"Cache-Control": "no-store"})


async def qr_code(request: web.Request) -> web.Response:
    code = pairing.normalise(request.match_info["code"])
    found = await pairing.live(request.app[POOL], code, now(request.app)) if code else None
    if found is None or found.show_slug is None:
        raise NotFound("No live pairing code", code="pairing-invalid")
    url = _page_url(request, found.show_slug, found.code)
    if request.match_info["kind"] == "png":
        return web.Response(body=pairing.qr_png(url), content_type="image/png", headers={"Cache-Control": "no-store"})
    return web.Response(body=pairing.qr_svg(url), content_type="image/svg+xml", headers={"Cache-Control": "no-store"})


def _guard(request: web.Request) -> None:
    if request.app[FAILURES].get(client_ip(request) or "", 0) >= CLAIM_FAILURES:
        raise TooManyRequests("Too many wrong pairing codes from this network; wait a few minutes",
                              code="pairing-rate-limited", headers={"Retry-After": str(int(CLAIM_WINDOW_S))})


def _failed(request: web.Request) -> None:
    failures, ip = request.app[FAILURES], client_ip(request) or ""
    failures.set(ip, failures.get(ip, 0) + 1)


async def claim(request: web.Request) -> web.Response:
    _guard(request)
    code = pairing.normalise(request.match_info["code"])
    db = request.app[POOL]
    found = await pairing.claim(db, code, now(request.app)) if code else None
    if found is None:
        _failed(request)
        raise NotFound("This pairing code is wrong, used or expired; ask the TV for a new one",
                       code="pairing-invalid")
    # the phone now speaks for the TV's device: one vote per household, the same identity (and the household's
    # nickname, the last one its device used in the show's chat) in the chat
    show = await shows.get(db, found.show_slug) if found.show_slug else None
    nickname = await chat.last_nickname(db, show.room, found.device_id) if show else None
    return web.json_response({"device_id": found.device_id, "show": found.show_slug, "code": found.code,
                              "nickname": nickname}, headers={"Cache-Control": "no-store"})


async def state(request: web.Request) -> web.Response:
    """The paired phone asks whether it still is (the TV may have unpaired it)."""
    code = pairing.normalise(request.match_info["code"])
    is_paired = await pairing.paired(request.app[POOL], code, now(request.app)) if code else False
    return web.json_response({"paired": is_paired}, headers={"Cache-Control": "no-store"})


async def unpair(request: web.Request) -> web.Response:
    """The phone unpairs itself; the code it claimed stands for the pairing."""
    _guard(request)
    code = pairing.normalise(request.match_info["code"])
    if not code or not await pairing.unpair(request.app[POOL], code, now(request.app)):
        _failed(request)  # unpairing strangers by guessing codes is as slow as claiming them
        raise NotFound("No phone is paired with this code", code="pairing-invalid")
    return web.json_response({"paired": False}, headers={"Cache-Control": "no-store"})


@described(body=CancelIn)
async def cancel(request: web.Request) -> web.Response:
    """The TV unpairs: its unused codes stop working, and its paired phones are unpaired."""
    body = await read_json(request, CancelIn, max_bytes=4096)
    device_id = devices.require(request, body.device_id)
    cancelled, unpaired = await pairing.cancel(request.app[POOL], device_id, now(request.app))
    return web.json_response({"cancelled": cancelled, "unpaired": unpaired}, headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app[FAILURES] = Bounded(100_000, CLAIM_WINDOW_S)
    r = app.router
    r.add_post("/api/v1/pairings", create_pairing, name="pairings.create")
    r.add_post("/api/v1/pairings/cancel", cancel, name="pairings.cancel")
    r.add_get("/api/v1/pairings/{code}/qr.{kind:svg|png}", qr_code, name="pairings.qr")
    r.add_post("/api/v1/pairings/{code}/claim", claim, name="pairings.claim")
    r.add_get("/api/v1/pairings/{code}", state, name="pairings.state")
    r.add_post("/api/v1/pairings/{code}/unpair", unpair, name="pairings.unpair")
