"""Server-issued device ids, `d2.<issued-at, random, binding>.<hmac>`, and the minting endpoint.

A vote or chat message carries one; because only the server can mint valid ids, counting random ids does
not buy extra votes. What checks need per vote (when the id was issued, whether it is bound to an HbbTV
terminal's own id) travels inside the signed id, so verifying stays a pure function: no database lookup.

Minting resists stuffing in layers (README "Live votes"): a proof-of-work on a server-signed challenge
(proof.py), each challenge spent once, and per-client-IP and per-/24 (/48) limits shared by every process
(onair/core/limits.py), the IP taken from `client_ip` (X-Forwarded-For only from trusted proxies).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from dataclasses import dataclass
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from onair.core import clock, logs
from onair.core.auth import SIGNING_KEY
from onair.core.errors import BadRequest, Forbidden, TooManyRequests, read_json
from onair.core.limits import limits_of, subnet
from onair.core.openapi import described
from onair.core.web import client_ip, settings_of
from streaming.interaction import proof

PREFIX = "d2"
LEGACY = "d1"
_MAC_BYTES = 12
_MAX_LEN = 64
_BODY = struct.Struct(">I8s6s")  # issued at (unix seconds), random, binding (hash of the terminal's id, or 0s)
_UNBOUND = bytes(6)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.digest(key, f"device:{body}".encode(), "sha256")[:_MAC_BYTES])  # one-shot: one C call


def _binding(key: bytes, terminal_id: str | None) -> bytes:
    if not terminal_id:
        return _UNBOUND
    return hmac.new(key, f"terminal:{terminal_id}".encode(), hashlib.sha256).digest()[:6]


@dataclass(frozen=True)
class Device:
    id: str
    issued_at: int
    bound: bool  # minted for an HbbTV terminal that told us its own device id


def issue(key: bytes, *, issued_at: float | None = None, terminal_id: str | None = None) -> str:
    when = int(time.time() if issued_at is None else issued_at)
    body = _b64(_BODY.pack(when, secrets.token_bytes(8), _binding(key, terminal_id)))
    return f"{PREFIX}.{body}.{_mac(key, body)}"


def parse(key: bytes, device_id: object) -> Device | None:
    if not isinstance(device_id, str) or len(device_id) > _MAX_LEN or not device_id.isascii():
        return None  # compare_digest refuses non-ASCII text: such an id is simply not ours
    prefix, _, rest = device_id.partition(".")
    body, _, mac = rest.partition(".")
    if prefix != PREFIX or not body or not mac or not hmac.compare_digest(mac, _mac(key, body)):
        return None
    issued, _, binding = _BODY.unpack(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return Device(device_id, issued, binding != _UNBOUND)


# Ids this process has already checked (an id's validity depends only on the key and the id): a phone voting,
# changing its vote, reading it and chatting pays the HMAC once. Only good ids are kept; when full, the set
# starts over (cheaper per request than an LRU, and a miss costs only the HMAC it saved).
_VERIFIED: set[tuple[bytes, str]] = set()
_VERIFIED_MAX = 200_000


def verify(key: bytes, device_id: object) -> bool:
    if isinstance(device_id, str) and (key, device_id) in _VERIFIED:
        return True
    if parse(key, device_id) is None:
        return False
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED.add((key, device_id))  # type: ignore[arg-type]  (parse accepts only a str)
    return True


def require(request: web.Request, device_id: object) -> str:
    """The device id if the server signed it, else 403 (a forged, mistyped or pre-proof-of-work id)."""
    return require_device(request, device_id).id


def require_device(request: web.Request, device_id: object) -> Device:
    """`require`, returning what the signed id says (its issue time feeds the vote integrity report)."""
    if isinstance(device_id, str) and device_id.startswith(LEGACY + "."):
        raise Forbidden("device_id has the old d1 format, minted without proof-of-work; mint a new one "
                        "(GET /api/v1/devices/challenge, then POST /api/v1/devices)", code="device-outdated")
    device = parse(request.app[SIGNING_KEY], device_id)
    if device is None:
        raise Forbidden("device_id was not issued by this server; get one from POST /api/v1/devices",
                        code="invalid-device")
    logs.annotate(device=device.id)
    return device


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    # Optional in the model so an old-style empty POST gets a 400 that explains the new flow.
    challenge: Annotated[str, Field(max_length=200)] | None = None
    nonce: Annotated[str, Field(max_length=proof.MAX_NONCE)] | None = None
    terminal_id: Annotated[str, Field(max_length=200)] | None = None


class Challenge(BaseModel):
    challenge: str
    bits: int
    expires_in: int


@described(response=Challenge)
async def get_challenge(request: web.Request) -> web.Response:
    """A proof-of-work challenge for minting one device id."""
    settings = settings_of(request)
    token = proof.challenge(request.app[SIGNING_KEY], settings.device_pow_bits, clock.now(request.app).timestamp())
    body = Challenge(challenge=token, bits=settings.device_pow_bits, expires_in=settings.device_challenge_seconds)
    return web.json_response(body.model_dump(), headers={"Cache-Control": "no-store"})


async def _rate_limit(request: web.Request) -> None:
    settings = settings_of(request)
    ip = client_ip(request) or "unknown"
    limits = limits_of(request.app)
    window = settings.device_mint_window_seconds
    for scope, key, ceiling in (("ip", ip, settings.device_mint_per_ip),
                                ("subnet", subnet(ip), settings.device_mint_per_subnet)):
        if ceiling:
            count, left = await limits.hit(f"mint:{scope}:{key}", window)
            if count > ceiling:
                raise TooManyRequests(f"Too many devices minted from this {scope} ({ceiling} per {window:g} s)",
                                      code="device-rate-limited", headers={"Retry-After": str(int(left) + 1)},
                                      scope=scope)


@described(body=DeviceIn, status=201)
async def create_device(request: web.Request) -> web.Response:
    """Mint a device id: send a solved challenge from GET /api/v1/devices/challenge."""
    body = await read_json(request, DeviceIn, max_bytes=4096) if request.body_exists else DeviceIn()
    if not body.challenge or not body.nonce:
        raise BadRequest("POST /api/v1/devices needs a solved proof-of-work: GET /api/v1/devices/challenge, find "
                         "a nonce whose SHA-256('<challenge>:<nonce>') starts with `bits` zero bits, and send "
                         '{"challenge", "nonce"}', code="proof-of-work-required",
                         field="challenge" if not body.challenge else "nonce")
    settings = settings_of(request)
    key = request.app[SIGNING_KEY]
    try:
        found = proof.read(key, body.challenge, clock.now(request.app).timestamp(), settings.device_challenge_seconds)
    except proof.ProofError as err:
        raise BadRequest(str(err), code=err.code, field=err.field) from None
    if not proof.solved(found.token, body.nonce, found.bits):
        raise BadRequest("nonce does not solve the challenge", code="proof-of-work-failed", field="nonce")
    await _rate_limit(request)
    if not await limits_of(request.app).first(f"challenge:{found.token}", settings.device_challenge_seconds + 10):
        raise BadRequest("challenge was used already; get a new one", code="challenge-used", field="challenge")
    device_id = issue(key, issued_at=clock.now(request.app).timestamp(), terminal_id=body.terminal_id)
    return web.json_response({"device_id": device_id}, status=201, headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/devices/challenge", get_challenge, name="devices-challenge")
    app.router.add_post("/api/v1/devices", create_device, name="devices")
