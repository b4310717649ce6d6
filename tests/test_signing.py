"""Playback tokens (EdgeAuth style) and CloudFront signed URLs, verified like CloudFront would."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from streaming.delivery import signing
from streaming.delivery.signing import TokenProblem

SECRET = b"k" * 32


def test_token_round_trip_and_failures() -> None:
    token = signing.make_token(SECRET, "/media/abc/*", 2000, ip="10.0.0.1")
    assert "/" not in token and "%" not in token
    assert signing.check_token(SECRET, token, "/media/abc/hls/x.m4s", 1999, "10.0.0.1") is TokenProblem.OK
    assert signing.check_token(SECRET, token, "/media/abc/hls/x.m4s", 2000, "10.0.0.1") is TokenProblem.EXPIRED
    # clock skew between the signing and the checking host
    assert signing.check_token(SECRET, token, "/media/abc/hls/x.m4s", 2029, "10.0.0.1", skew=30) is TokenProblem.OK
    assert signing.check_token(SECRET, token, "/media/abc/hls/x.m4s", 2030, "10.0.0.1",
                               skew=30) is TokenProblem.EXPIRED
    assert signing.check_token(SECRET, token, "/media/abd/hls/x.m4s", 1, "10.0.0.1") is TokenProblem.WRONG_PATH
    assert signing.check_token(SECRET, token, "/media/abc/x", 1, "10.0.0.2") is TokenProblem.WRONG_IP
    assert signing.check_token(b"other", token, "/media/abc/x", 1, "10.0.0.1") is TokenProblem.BAD_SIGNATURE
    # widening the acl inside the token breaks the hmac
    text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().replace("/media/abc/*", "/media/*")
    widened = base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")
    assert signing.check_token(SECRET, widened, "/media/zzz/x", 1, "10.0.0.1") is TokenProblem.BAD_SIGNATURE
    assert signing.check_token(SECRET, "", "/media/abc/x", 1) is TokenProblem.MALFORMED
    path = signing.signed_media_path(SECRET, "abc", "/hls/master.m3u8", 2000)
    assert path.startswith("/media/abc/tok/") and path.endswith("/hls/master.m3u8")


@pytest.fixture(scope="module")
def rsa_key() -> tuple[bytes, rsa.RSAPublicKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return pem, key.public_key()


def _cf_b64decode(text: str) -> bytes:
    return base64.b64decode(text.replace("-", "+").replace("_", "=").replace("~", "/"))


def _verify(public: rsa.RSAPublicKey, policy: bytes, signature: str) -> None:
    public.verify(_cf_b64decode(signature), policy, padding.PKCS1v15(), hashes.SHA1())


def test_cloudfront_canned_policy(rsa_key) -> None:
    pem, public = rsa_key
    url = "https://d111.cloudfront.net/media/abc/hls/master.m3u8"
    signed = signing.cloudfront_url(url, "K2JCJMDEHXQW5F", pem, 1_900_000_000)
    q = {k: v[0] for k, v in parse_qs(urlsplit(signed).query).items()}
    assert set(q) == {"Expires", "Signature", "Key-Pair-Id"}
    assert q["Expires"] == "1900000000" and q["Key-Pair-Id"] == "K2JCJMDEHXQW5F"
    canned = json.dumps({"Statement": [{"Resource": url, "Condition": {
        "DateLessThan": {"AWS:EpochTime": int(q["Expires"])}}}]}, separators=(",", ":")).encode()
    _verify(public, canned, q["Signature"])
    with pytest.raises(InvalidSignature):
        _verify(public, canned.replace(b"abc", b"abd"), q["Signature"])


def test_cloudfront_custom_policy_prefix_and_cookies(rsa_key) -> None:
    pem, public = rsa_key
    resource = "https://d111.cloudfront.net/media/abc/*"
    signed = signing.cloudfront_url("https://d111.cloudfront.net/media/abc/hls/master.m3u8", "KID", pem,
                                    1_900_000_000, resource=resource, ip="192.0.2.0/24")
    q = {k: v[0] for k, v in parse_qs(urlsplit(signed).query).items()}
    assert set(q) == {"Policy", "Signature", "Key-Pair-Id"}
    policy = _cf_b64decode(q["Policy"])
    statement = json.loads(policy)["Statement"][0]
    assert statement["Resource"] == resource
    assert statement["Condition"]["DateLessThan"]["AWS:EpochTime"] == 1_900_000_000
    assert statement["Condition"]["IpAddress"]["AWS:SourceIp"] == "192.0.2.0/24"
    _verify(public, policy, q["Signature"])

    cookies = signing.cloudfront_cookies(resource, "KID", pem, 1_900_000_000)
    assert cookies["CloudFront-Key-Pair-Id"] == "KID"
    cookie_policy = _cf_b64decode(cookies["CloudFront-Policy"])
    assert json.loads(cookie_policy)["Statement"][0]["Resource"] == resource
    _verify(public, cookie_policy, cookies["CloudFront-Signature"])
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    with pytest.raises(InvalidSignature):
        _verify(other, cookie_policy, cookies["CloudFront-Signature"])


def test_signed_url_picks_cloudfront_when_configured(rsa_key, tmp_path) -> None:
    from datetime import UTC, datetime

    from onair.core.settings import Settings
    from streaming.delivery.origin import OriginConfig, signed_url

    now = datetime(2026, 1, 1, tzinfo=UTC)
    plain = signed_url(OriginConfig(Settings(public_url="https://tv.example"), SECRET), "abc", "hls/master.m3u8", now)
    assert plain.startswith("https://tv.example/media/abc/tok/") and plain.endswith("/hls/master.m3u8")
    token = urlsplit(plain).path.split("/")[4]
    assert signing.check_token(SECRET, token, "/media/abc/hls/seg_1.m4s", now.timestamp() + 60) is TokenProblem.OK

    pem, public = rsa_key
    key_file = tmp_path / "cf.pem"
    key_file.write_bytes(pem)
    cf = Settings(cloudfront_key_pair_id="KID", cloudfront_private_key_file=key_file,
                  cloudfront_domain="https://d1.cloudfront.net")
    url = signed_url(OriginConfig(cf, SECRET), "abc", "hls/master.m3u8", now)
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith("https://d1.cloudfront.net/media/abc/hls/master.m3u8?") and q["Key-Pair-Id"] == "KID"
    policy = _cf_b64decode(q["Policy"])
    assert json.loads(policy)["Statement"][0]["Resource"] == "https://d1.cloudfront.net/media/abc/*"
    _verify(public, policy, q["Signature"])
