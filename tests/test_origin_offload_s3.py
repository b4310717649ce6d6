"""Origin offload for S3 storage through a real nginx (deploy/nginx/onair-offload-s3.conf) and a real S3
(SeaweedFS, which checks SigV4): onair decides, nginx streams the object from a presigned URL.

The same requests go to onair in direct mode (streaming from S3 itself) and to nginx in front of onair in
offload mode (same database, same bucket); status, body and headers must be the same, except Date, Server and
the hop-by-hop Connection/Keep-Alive, and header order.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict

from onair.core.db.pool import POOL
from onair.core.settings import Settings
from onair.core.storage import STORE
from streaming.delivery import signing
from streaming.delivery.access import object_key
from streaming.delivery.origin import ORIGIN_CONFIG
from tests.offload_pair import offload_pair
from tests.origin_media import make_media, publish

IGNORED = {"date", "server", "connection", "keep-alive"}
SEG = "hls/seg_0.m4s"
BIG = "hls/seg_big.m4s"  # several of nginx's and botocore's buffers long
ODD = "captions/en gb+1.vtt"  # percent-encoded in the signed path: offloaded all the same


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture
async def pair(s3_settings: Settings, media: dict[str, Path], tmp_path: Path
               ) -> AsyncIterator[tuple[TestClient, TestClient, str]]:
    """(onair direct, onair offload, nginx in front of the offload one), all on the same bucket."""
    async def seed(app: web.Application) -> None:
        store = app[STORE]
        await publish(app[POOL], store, "s3pub21", media)
        await publish(app[POOL], store, "s3priv21", media, visibility="private")
        await publish(app[POOL], store, "s3geo21", media, geo_allow=("GB",))
        await store.put_bytes(object_key("s3pub21", BIG), os.urandom(3 * 1024 * 1024 + 17))
        await store.put_bytes(object_key("s3pub21", ODD), media["captions/en.vtt"].read_bytes())

    settings = dataclasses.replace(s3_settings, cors_origins="https://player.example")
    s3 = urlsplit(settings.s3_endpoint or "").netloc
    async with offload_pair(settings, tmp_path / "nginx", seed, site="onair-offload-s3.conf",
                            edit=lambda _name, text: text.replace("@@S3@@", s3)) as parties:
        yield parties


def _headers(raw: tuple[tuple[bytes, bytes], ...]) -> list[tuple[str, str]]:
    return sorted((k.decode(), v.decode()) for k, v in raw if k.decode().lower() not in IGNORED)


def _nothing_of_s3(headers: list[tuple[str, str]]) -> None:
    for name, value in headers:
        assert not name.lower().startswith(("x-amz", "x-onair-s3", "x-accel")), name
        assert "X-Amz-" not in value and "Signature" not in value, (name, value)


async def _same(s: aiohttp.ClientSession, direct: TestClient, edge: str, path: str, *, method: str = "GET",
                headers: dict[str, str] | None = None) -> tuple[int, bytes, CIMultiDict[str]]:
    seen = []
    for base in (str(direct.make_url("")).rstrip("/"), edge):
        # the same request id on both, so X-Request-Id is compared too
        hdrs = {**(headers or {}), "X-Request-Id": f"s3offload-{abs(hash((path, method, str(headers))))}"}
        async with s.request(method, base + path, headers=hdrs, allow_redirects=False) as r:
            seen.append((r.status, await r.read(), _headers(r.raw_headers), r.headers.copy()))
    (status, body, names, first), (status2, body2, names2, _) = seen
    assert (status, body) == (status2, body2), (path, headers, status, status2)
    assert names == names2, (path, headers, names, names2)
    _nothing_of_s3(names2)
    return status, body, first


async def test_s3_offload_answers_like_direct(pair: tuple[TestClient, TestClient, str], media: dict[str, Path],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    direct, offload, edge = pair
    seg = media[SEG].read_bytes()
    cors = {"Origin": "https://player.example"}
    async with aiohttp.ClientSession() as s:
        for key in ("hls/master.m3u8", SEG, "images/poster.jpg", "captions/en.vtt"):
            status, body, _ = await _same(s, direct, edge, f"/media/s3pub21/{key}", headers=cors)
            assert status == 200 and body == media[key].read_bytes()
        status, body, _ = await _same(s, direct, edge, "/media/s3pub21/captions/en%20gb%2B1.vtt")
        assert status == 200 and body == media["captions/en.vtt"].read_bytes()
        status, big, _ = await _same(s, direct, edge, f"/media/s3pub21/{BIG}")
        assert status == 200 and len(big) == 3 * 1024 * 1024 + 17
        status, body, _ = await _same(s, direct, edge, f"/media/s3pub21/{BIG}", headers={"Range": "bytes=1000000-"})
        assert status == 206 and body == big[1000000:]
        status, body, h = await _same(s, direct, edge, f"/media/s3pub21/{SEG}", method="HEAD")
        assert status == 200 and body == b"" and h["Content-Length"] == str(len(seg))
        for rng, part in (("bytes=100-199", seg[100:200]), ("bytes=-50", seg[-50:]), ("bytes=100-", seg[100:])):
            status, body, _ = await _same(s, direct, edge, f"/media/s3pub21/{SEG}", headers={"Range": rng, **cors})
            assert status == 206 and body == part
        status, body, _ = await _same(s, direct, edge, f"/media/s3pub21/{SEG}", method="HEAD",
                                      headers={"Range": "bytes=0-9"})
        assert status == 206 and body == b""
        etag, last_modified = h["ETag"], h["Last-Modified"]
        for cond in ({"If-None-Match": etag}, {"If-Modified-Since": last_modified}):
            status, *_ = await _same(s, direct, edge, f"/media/s3pub21/{SEG}", headers=cond)
            assert status == 304
        # nginx judges neither conditionals nor ranges on a proxied answer: onair's choice is the one sent
        for cond, want in (({"If-Match": etag}, 200), ({"If-Match": '"other"'}, 412),
                           ({"If-Range": etag, "Range": "bytes=0-9"}, 206),
                           ({"If-Range": '"other"', "Range": "bytes=0-9"}, 200),
                           ({"If-None-Match": '"other"', "Range": "bytes=0-9"}, 206),
                           ({"Range": "bytes=0-1,5-6"}, 200), ({"Range": f"bytes={len(seg)}-"}, 416)):
            status, *_ = await _same(s, direct, edge, f"/media/s3pub21/{SEG}", headers=cond)
            assert status == want, cond
        # decisions that refuse: never the object
        for path, want in ((f"/media/s3priv21/{SEG}", 403), (f"/media/s3geo21/{SEG}", 403),
                           ("/media/s3pub21/hls/nope.m4s", 404), (f"/media/nope21/{SEG}", 404),
                           (f"/media/s3pub21/tok/garbage/{SEG}", 403)):
            status, body, _ = await _same(s, direct, edge, path, headers={"CloudFront-Viewer-Country": "GB"})
            assert status == want and seg not in body, path
        signed = signing.signed_media_path(direct.app[ORIGIN_CONFIG].secret, "s3priv21", SEG, int(time.time()) + 600)
        status, body, _ = await _same(s, direct, edge, signed)
        assert status == 200 and body == seg

        # the offload app really hands the bytes to nginx (and only after a yes), with a URL S3 will honour
        async with s.get(str(offload.make_url(f"/media/s3pub21/{SEG}")), headers={"Range": "bytes=-50"}) as r:
            assert r.headers["X-Accel-Redirect"] == "/_onair_internal/" and await r.read() == b""
            assert "X-Amz-Signature=" in r.headers["X-Onair-S3-Uri"]
            assert r.headers["X-Onair-S3-Range"] == f"bytes={len(seg) - 50}-{len(seg) - 1}"
            presigned = r.headers["X-Onair-S3-Uri"]
        async with s.get(str(offload.make_url(f"/media/s3pub21/{SEG}"))) as r:
            assert r.headers["X-Onair-S3-Uri"] == presigned, "signed once, reused while half its life is left"
            assert "X-Onair-S3-Range" not in r.headers
        async with s.get(str(offload.make_url(f"/media/s3priv21/{SEG}"))) as r:
            assert r.status == 403 and "X-Accel-Redirect" not in r.headers

        # the internal location cannot be asked for from outside, not even with a valid presigned path
        for path in ("/_onair_internal/", f"/_onair_internal/{presigned.lstrip('/')}", presigned):
            async with s.get(edge + path) as r:
                assert r.status == 404 and seg[-50:] not in await r.read(), path

        # S3 refusing the URL is a 502 nobody caches, without S3's error document (it quotes the signed request)
        store = offload.app[STORE]

        async def forged(key: str, expires: int = 300) -> str:
            url = await type(store).presigned_url(store, key, expires)
            return url.replace("X-Amz-Signature=", "X-Amz-Signature=0")

        monkeypatch.setattr(store, "presigned_url", forged)
        async with s.get(f"{edge}/media/s3pub21/dash/manifest.mpd") as r:  # not asked for before: not cached
            body = await r.read()
            assert r.status == 502 and r.headers.getall("Cache-Control") == ["no-store"], body
            assert r.headers["Content-Type"] == "text/html" and "Accept-Ranges" not in r.headers
            assert b"Signature" not in body and b"X-Amz" not in body
            _nothing_of_s3(_headers(r.raw_headers))
