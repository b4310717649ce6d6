"""Origin offload through a real nginx (deploy/nginx/onair-offload.conf): onair decides, nginx sends the file.

The same requests go to onair in direct mode and to nginx in front of onair in offload mode (same database,
same data dir); status, body and headers must be the same, except Date, Server and the hop-by-hop
Connection/Keep-Alive, X-Onair-Decision (nginx's, on the files it sends) and header order (nginx writes its
own first, then the ones its config copies).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict

from onair.core.db.pool import POOL
from onair.core.settings import Settings
from onair.core.storage import STORE
from streaming.delivery import signing
from streaming.delivery.origin import ORIGIN_CONFIG
from tests.offload_pair import offload_pair
from tests.origin_media import make_media, publish

# X-Onair-Decision (HIT/MISS of a kept decision) exists only where nginx sent the file
IGNORED = {"date", "server", "connection", "keep-alive", "x-onair-decision"}
SEG = "hls/seg_0.m4s"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture
async def pair(settings: Settings, media: dict[str, Path], tmp_path: Path
               ) -> AsyncIterator[tuple[TestClient, TestClient, str]]:
    """(onair direct, onair offload, nginx in front of the offload one)."""
    async def seed(app: web.Application) -> None:
        await publish(app[POOL], app[STORE], "pub21", media)
        await publish(app[POOL], app[STORE], "priv21", media, visibility="private")
        await publish(app[POOL], app[STORE], "geo21", media, geo_allow=("GB",))

    settings = dataclasses.replace(settings, cors_origins="https://player.example")
    async with offload_pair(settings, tmp_path / "nginx", seed, site="onair-offload.conf",
                            objects=settings.data_dir / "objects") as parties:
        yield parties


def _headers(raw: tuple[tuple[bytes, bytes], ...]) -> list[tuple[str, str]]:
    return sorted((k.decode(), v.decode()) for k, v in raw if k.decode().lower() not in IGNORED)


async def _same(s: aiohttp.ClientSession, direct: TestClient, edge: str, path: str, *, method: str = "GET",
                headers: dict[str, str] | None = None) -> tuple[int, bytes, CIMultiDict[str]]:
    seen = []
    for base in (str(direct.make_url("")).rstrip("/"), edge):
        # the same request id on both, so X-Request-Id is compared too
        hdrs = {**(headers or {}), "X-Request-Id": f"offload-{abs(hash((path, method, str(headers))))}"}
        async with s.request(method, base + path, headers=hdrs, allow_redirects=False) as r:
            seen.append((r.status, await r.read(), _headers(r.raw_headers), r.headers.copy()))
    (status, body, names, first), (status2, body2, names2, _) = seen
    assert (status, body) == (status2, body2), (path, headers, status, status2)
    assert names == names2, (path, headers, names, names2)
    return status, body, first


async def test_offload_answers_like_direct(pair: tuple[TestClient, TestClient, str], media: dict[str, Path],
                                           settings: Settings) -> None:
    direct, offload, edge = pair
    seg = media[SEG].read_bytes()
    cors = {"Origin": "https://player.example"}
    async with aiohttp.ClientSession() as s:
        for key in ("hls/master.m3u8", SEG, "images/poster.jpg", "captions/en.vtt"):
            status, body, _ = await _same(s, direct, edge, f"/media/pub21/{key}", headers=cors)
            assert status == 200 and body == media[key].read_bytes()
        status, body, h = await _same(s, direct, edge, f"/media/pub21/{SEG}", method="HEAD")
        assert status == 200 and body == b"" and h["Content-Length"] == str(len(seg))
        for rng, part in (("bytes=100-199", seg[100:200]), ("bytes=-50", seg[-50:]), ("bytes=100-", seg[100:])):
            status, body, _ = await _same(s, direct, edge, f"/media/pub21/{SEG}", headers={"Range": rng, **cors})
            assert status == 206 and body == part
        status, body, _ = await _same(s, direct, edge, f"/media/pub21/{SEG}", method="HEAD",
                                      headers={"Range": "bytes=0-9"})
        assert body == b""
        assert status == 206
        etag, last_modified = h["ETag"], h["Last-Modified"]
        for cond in ({"If-None-Match": etag}, {"If-Modified-Since": last_modified}):
            status, *_ = await _same(s, direct, edge, f"/media/pub21/{SEG}", headers=cond)
            assert status == 304
        # conditionals nginx would judge with its own validators are answered by onair itself
        for cond, want in (({"If-Match": etag}, 200), ({"If-Match": '"other"'}, 412),
                           ({"If-Range": etag, "Range": "bytes=0-9"}, 206),
                           ({"If-Range": '"other"', "Range": "bytes=0-9"}, 200),
                           ({"Range": "bytes=0-1,5-6"}, 200), ({"Range": f"bytes={len(seg)}-"}, 416)):
            status, *_ = await _same(s, direct, edge, f"/media/pub21/{SEG}", headers=cond)
            assert status == want, cond
        # decisions that refuse: never the file
        for path, want in ((f"/media/priv21/{SEG}", 403), (f"/media/geo21/{SEG}", 403),
                           ("/media/pub21/hls/nope.m4s", 404), (f"/media/nope21/{SEG}", 404),
                           (f"/media/pub21/tok/garbage/{SEG}", 403)):
            status, body, _ = await _same(s, direct, edge, path, headers={"CloudFront-Viewer-Country": "GB"})
            assert status == want and seg not in body, path
        secret = direct.app[ORIGIN_CONFIG].secret
        signed = signing.signed_media_path(secret, "priv21", SEG, int(time.time()) + 600)
        status, body, _ = await _same(s, direct, edge, signed)
        assert status == 200 and body == seg

        # the offload app really hands the bytes to nginx (and only after a yes)
        async with s.get(str(offload.make_url(f"/media/pub21/{SEG}"))) as r:
            assert r.headers["X-Accel-Redirect"] == f"/_onair_internal/assets/pub21/{SEG}"
            assert await r.read() == b""
        async with s.get(str(offload.make_url(f"/media/priv21/{SEG}"))) as r:
            assert r.status == 403 and "X-Accel-Redirect" not in r.headers

        # the internal location cannot be asked for from outside, whatever the asset
        for asset in ("pub21", "priv21", "geo21"):
            async with s.get(f"{edge}/_onair_internal/assets/{asset}/{SEG}") as r:
                assert r.status == 404 and await r.read() != seg


async def test_a_file_gone_after_the_decision_is_a_404_no_cache_keeps(pair: tuple[TestClient, TestClient, str],
                                                                      settings: Settings) -> None:
    edge = pair[2]
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{edge}/media/pub21/{SEG}") as r:
            assert r.status == 200 and "immutable" in r.headers["Cache-Control"]
        # removed behind onair's back (a disk swap, an operator): onair's one-second lookup still says yes
        (settings.data_dir / "objects" / "assets" / "pub21" / SEG).unlink()
        async with s.get(f"{edge}/media/pub21/{SEG}", headers={"Range": "bytes=0-9"}) as r:
            assert r.status == 404
            assert r.headers.get("Cache-Control") in ("no-store", "public, max-age=5"), r.headers
