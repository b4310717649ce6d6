"""Path-prefix playback tokens in the style of Akamai EdgeAuth (`exp`, `acl`, optional `ip`, `hmac`).

Manifests reference segments by relative URL, and a query string does not survive URL
resolution, so the token travels *in the path*: ``/media/<id>/tok/<token>/hls/master.m3u8``.
Every relative URL resolved against that manifest keeps the ``tok/<token>/`` segment, and the
token's `acl` (``/media/<id>/*``) covers all of them and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


class TokenProblem(Enum):
    OK = "ok"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad-signature"
    EXPIRED = "expired"
    WRONG_PATH = "wrong-path"
    WRONG_IP = "wrong-ip"


@dataclass(frozen=True)
class TokenFields:
    exp: int
    acl: str
    ip: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, body: str) -> str:
    return hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()


def make_token(secret: bytes, acl: str, expires_at: int, ip: str | None = None) -> str:
    """A URL-path-safe token (no '/', no '%'): base64url of ``exp=..~acl=..[~ip=..]~hmac=..``."""
    body = f"exp={int(expires_at)}~acl={acl}" + (f"~ip={ip}" if ip else "")
    return _b64(f"{body}~hmac={_mac(secret, body)}".encode())


def read_token(secret: bytes, token: str) -> TokenFields | None:
    """Decode and authenticate; None when malformed or forged."""
    try:
        text = _unb64(token).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    body, sep, mac = text.rpartition("~hmac=")
    if not sep or not hmac.compare_digest(mac, _mac(secret, body)):
        return None
    fields = dict(part.split("=", 1) for part in body.split("~") if "=" in part)
    try:
        return TokenFields(int(fields["exp"]), fields["acl"], fields.get("ip"))
    except (KeyError, ValueError):
        return None


def acl_covers(acl: str, path: str) -> bool:
    """`acl` is an exact path or a prefix ending in '*'. `path` must already be normalised (no '..')."""
    if acl.endswith("*"):
        return path.startswith(acl[:-1])
    return path == acl


def check_token(secret: bytes, token: str, path: str, now: float, client_ip: str | None = None,
                skew: float = 0) -> TokenProblem:
    """`skew`: seconds a token stays good past `exp`, since the signing host's clock may run ahead of ours."""
    fields = read_token(secret, token)
    if fields is None:
        return TokenProblem.BAD_SIGNATURE if token else TokenProblem.MALFORMED
    if now - skew >= fields.exp:
        return TokenProblem.EXPIRED
    if not acl_covers(fields.acl, path):
        return TokenProblem.WRONG_PATH
    if fields.ip and fields.ip != client_ip:
        return TokenProblem.WRONG_IP
    return TokenProblem.OK


def media_acl(asset_id: str) -> str:
    return f"/media/{asset_id}/*"


def signed_media_path(secret: bytes, asset_id: str, key: str, expires_at: int, ip: str | None = None) -> str:
    """``/media/<id>/tok/<token>/<key>`` — valid for every object of the asset until `expires_at`."""
    token = make_token(secret, media_acl(asset_id), expires_at, ip)
    return f"/media/{asset_id}/tok/{token}/{key.lstrip('/')}"


# --- CloudFront signed URLs / cookies --------------------------------------------------------------
# For deployments where CloudFront (not onair) verifies access. CloudFront puts its signature in the
# query string, which relative segment URLs do not inherit; so for a whole asset use a custom policy
# with a wildcard resource and hand it to the player as signed *cookies* (`cloudfront_cookies`), or
# sign each URL. onair's own origin never sees these fields: CloudFront strips nothing, but the origin
# ignores query strings, and the origin itself is protected by CloudFront's origin access settings.

def _rsa_signer(private_key_pem: bytes):
    key = serialization.load_pem_private_key(private_key_pem, password=None)

    def sign(message: bytes) -> bytes:
        # CloudFront verifies RSA-SHA1 PKCS#1 v1.5 signatures; that is its protocol, not our choice.
        return key.sign(message, padding.PKCS1v15(), hashes.SHA1())

    return sign


def cloudfront_signer(key_pair_id: str, private_key_pem: bytes):
    return CloudFrontSigner(key_pair_id, _rsa_signer(private_key_pem))


def cloudfront_url(url: str, key_pair_id: str, private_key_pem: bytes, expires_at: int, *,
                   resource: str | None = None, starts_at: int | None = None, ip: str | None = None) -> str:
    """Canned policy (`Expires`, `Signature`, `Key-Pair-Id`) when only an expiry is given; otherwise a
    custom policy (`Policy`, `Signature`, `Key-Pair-Id`) whose resource may be a wildcard prefix such as
    ``https://dxxxx.cloudfront.net/media/<id>/*``."""
    signer = cloudfront_signer(key_pair_id, private_key_pem)
    expire = datetime.fromtimestamp(expires_at, UTC)
    if resource is None and starts_at is None and ip is None:
        return signer.generate_presigned_url(url, date_less_than=expire)
    policy = signer.build_policy(resource or url, expire,
                                 date_greater_than=datetime.fromtimestamp(starts_at, UTC) if starts_at else None,
                                 ip_address=ip)
    return signer.generate_presigned_url(url, policy=policy)


def cloudfront_cookies(resource: str, key_pair_id: str, private_key_pem: bytes, expires_at: int) -> dict[str, str]:
    """Signed cookies for a wildcard resource: every segment under the prefix is covered."""
    signer = cloudfront_signer(key_pair_id, private_key_pem)
    policy = signer.build_policy(resource, datetime.fromtimestamp(expires_at, UTC)).encode()
    signature = _rsa_signer(private_key_pem)(policy)
    return {"CloudFront-Policy": signer._url_b64encode(policy).decode(),
            "CloudFront-Signature": signer._url_b64encode(signature).decode(),
            "CloudFront-Key-Pair-Id": key_pair_id}
