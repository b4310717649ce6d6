"""A light proof-of-work for minting device ids: pure functions, no HTTP, no storage.

The server hands out a signed, short-lived challenge `c1.<issued-at, bits, random>.<hmac>`; the client finds a
`nonce` (decimal digits) such that SHA-256("<challenge>:<nonce>") starts with `bits` zero bits, about
2**bits hashes. At 12 bits a TV's JavaScript pays a fraction of a second once; a million devices cost an
attacker 4·10⁹ hashes on top of the per-IP and per-subnet limits. Challenges are stateless (signed) and
each is spent once (the caller marks it in the shared limits store).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import secrets
import struct
from dataclasses import dataclass

PREFIX = "c1"
_MAC_BYTES = 12
_BODY = struct.Struct(">IB12s")  # issued at (unix seconds), bits, random
MAX_NONCE = 32


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, f"challenge:{body}".encode(), hashlib.sha256).digest()[:_MAC_BYTES])


def challenge(key: bytes, bits: int, now: float) -> str:
    body = _b64(_BODY.pack(int(now), bits, secrets.token_bytes(12)))
    return f"{PREFIX}.{body}.{_mac(key, body)}"


@dataclass(frozen=True)
class Challenge:
    token: str
    issued_at: int
    bits: int


class ProofError(ValueError):
    """Why a proof was refused; `code` is the problem type, `field` the body field at fault."""

    def __init__(self, detail: str, code: str, field: str) -> None:
        super().__init__(detail)
        self.code, self.field = code, field


def read(key: bytes, token: str, now: float, lifetime: float) -> Challenge:
    """The challenge if this server signed it and it has not expired, else ProofError."""
    prefix, _, rest = token.partition(".")
    body, _, mac = rest.partition(".")
    if (prefix != PREFIX or not body or not mac or not token.isascii()
            or not hmac.compare_digest(mac, _mac(key, body))):
        raise ProofError("challenge was not issued by this server; GET /api/v1/devices/challenge",
                         "invalid-challenge", "challenge")
    try:
        issued, bits, _ = _BODY.unpack(_unb64(body))
    except (ValueError, struct.error):
        raise ProofError("challenge is malformed", "invalid-challenge", "challenge") from None
    if not issued - 5 <= now <= issued + lifetime:
        raise ProofError("challenge has expired; GET /api/v1/devices/challenge for a new one",
                         "challenge-expired", "challenge")
    return Challenge(token, issued, bits)


def solved(token: str, nonce: str, bits: int) -> bool:
    if not nonce or len(nonce) > MAX_NONCE or not nonce.isascii() or not nonce.isdigit():
        return False
    digest = hashlib.sha256(f"{token}:{nonce}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> (32 - bits) == 0 if bits else True


def solve(token: str, bits: int) -> str:
    """The first nonce that solves `token` (what our Python clients run: load tests, benchmarks, tests)."""
    for n in itertools.count():
        if solved(token, str(n), bits):
            return str(n)
    raise AssertionError("unreachable")
