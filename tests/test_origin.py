"""Header matrix of the CDN origin on both storage backends: types, caching, validators, ranges, CORS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.utils import format_datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.db.pool import POOL
from onair.core.settings import Settings
from onair.core.storage import STORE
from tests.origin_media import make_media, publish

YEAR = "public, max-age=31536000, immutable"
MATRIX = {
    "hls/master.m3u8": ("application/vnd.apple.mpegurl", "max-age=86400"),
    "hls/stream.m3u8": ("application/vnd.apple.mpegurl", "max-age=86400"),
    "dash/manifest.mpd": ("application/dash+xml", "max-age=86400"),
    "hls/init.mp4": ("video/mp4", YEAR),
    "hls/seg_0.m4s": ("video/iso.segment", YEAR),
    "images/poster.jpg": ("image/jpeg", YEAR),
    "captions/en.vtt": ("text/vtt", "max-age=86400"),
}


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture(params=["local", "s3"])
def origin_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "s3":
        return request.getfixturevalue("s3_settings")
    return settings


async def _client(settings: Settings) -> AsyncIterator[TestClient]:
    app = create_app(settings, settings.database_url or "", run_worker=False)
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.fixture
async def oc(origin_settings: Settings) -> AsyncIterator[TestClient]:
    async for c in _client(origin_settings):
        yield c


async def _publish(c: TestClient, asset_id: str, media: dict[str, Path], **kw) -> None:
    await publish(c.app[POOL], c.app[STORE], asset_id, media, **kw)


async def test_header_matrix(oc: TestClient, media: dict[str, Path]) -> None:
    await _publish(oc, "abc234", media)
    for key, (ctype, cache) in MATRIX.items():
        data = media[key].read_bytes()
        size = len(data)
        url = f"/media/abc234/{key}"
        resp = await oc.get(url, headers={"Origin": "https://player.example"})
        assert resp.status == 200, (key, await resp.text())
        assert resp.headers["Content-Type"].startswith(ctype), key
        assert cache in resp.headers["Cache-Control"], key
        assert await resp.read() == data, key
        etag, last_mod = resp.headers["ETag"], resp.headers["Last-Modified"]
        assert etag.startswith('"') and not etag.startswith("W/"), key
        assert resp.headers["Accept-Ranges"] == "bytes"
        for tag_header in ("Surrogate-Key", "Cache-Tag", "Edge-Cache-Tag"):
            assert resp.headers[tag_header] == "asset-abc234"
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert "Content-Range" in resp.headers["Access-Control-Expose-Headers"]
        assert "Content-Length" in resp.headers["Access-Control-Expose-Headers"]

        head = await oc.head(url)
        assert head.status == 200 and int(head.headers["Content-Length"]) == size
        assert head.headers["ETag"] == etag and await head.read() == b""

        inm = await oc.get(url, headers={"If-None-Match": f'"zzz", {etag}'})
        assert inm.status == 304 and inm.headers["ETag"] == etag and await inm.read() == b""
        assert cache in inm.headers["Cache-Control"] and inm.headers["Surrogate-Key"] == "asset-abc234"
        assert (await oc.get(url, headers={"If-Modified-Since": last_mod})).status == 304
        assert (await oc.head(url, headers={"If-None-Match": etag})).status == 304
        older = format_datetime(_epoch(), usegmt=True)
        assert (await oc.get(url, headers={"If-Modified-Since": older})).status == 200
        assert (await oc.get(url, headers={"If-None-Match": '"other"'})).status == 200

        part = await oc.get(url, headers={"Range": "bytes=0-9"})
        assert part.status == 206 and await part.read() == data[:10]
        assert part.headers["Content-Range"] == f"bytes 0-9/{size}"
        assert part.headers["Content-Length"] == "10" and part.headers["ETag"] == etag
        tail = await oc.get(url, headers={"Range": "bytes=-7"})
        assert tail.status == 206 and await tail.read() == data[-7:]
        assert tail.headers["Content-Range"] == f"bytes {size - 7}-{size - 1}/{size}"
        open_end = await oc.get(url, headers={"Range": f"bytes={size - 3}-"})
        assert open_end.status == 206 and await open_end.read() == data[-3:]
        beyond = await oc.get(url, headers={"Range": f"bytes={size}-"})
        assert beyond.status == 416 and beyond.headers["Content-Range"] == f"bytes */{size}"
        assert beyond.content_type == "application/problem+json"
        stale = await oc.get(url, headers={"Range": "bytes=0-9", "If-Range": '"old"'})
        assert stale.status == 200 and await stale.read() == data
        fresh = await oc.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
        assert fresh.status == 206

        pre = await oc.options(url, headers={"Origin": "https://hbbtv.example",
                                             "Access-Control-Request-Method": "GET",
                                             "Access-Control-Request-Headers": "range"})
        assert pre.status in (200, 204)
        assert pre.headers["Access-Control-Allow-Origin"] == "*"
        assert "Range" in pre.headers["Access-Control-Allow-Headers"]
        assert "GET" in pre.headers["Access-Control-Allow-Methods"]


def _epoch():
    from datetime import UTC, datetime

    return datetime(2001, 1, 1, tzinfo=UTC)


async def test_errors_are_short_lived_problems(oc: TestClient, media: dict[str, Path]) -> None:
    await _publish(oc, "abc234", media)
    for url in ("/media/nosuchasset/hls/master.m3u8", "/media/abc234/hls/nothing.m3u8"):
        resp = await oc.get(url, headers={"Origin": "https://p.example"})
        assert resp.status == 404 and resp.content_type == "application/problem+json"
        assert resp.headers["Cache-Control"] == "public, max-age=5"
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert (await oc.head(url)).status == 404


async def test_not_ready_manifests_are_not_long_cached(oc: TestClient, media: dict[str, Path]) -> None:
    await _publish(oc, "pend23", media, status="packaging")
    master = await oc.get("/media/pend23/hls/master.m3u8")
    assert master.status == 200
    assert master.headers["Cache-Control"] == "public, max-age=2"
    seg = await oc.get("/media/pend23/hls/seg_1.m4s")
    assert seg.headers["Cache-Control"] == YEAR


async def test_cors_allow_list(settings: Settings, media: dict[str, Path]) -> None:
    async for c in _client(settings.with_(cors_origins="https://a.example, https://b.example")):
        await _publish(c, "abc234", media)
        ok = await c.get("/media/abc234/hls/seg_0.m4s", headers={"Origin": "https://b.example"})
        assert ok.headers["Access-Control-Allow-Origin"] == "https://b.example"
        assert "Origin" in ok.headers["Vary"]
        other = await c.get("/media/abc234/hls/seg_0.m4s", headers={"Origin": "https://evil.example"})
        assert other.status == 200 and "Access-Control-Allow-Origin" not in other.headers
        assert "Origin" in other.headers["Vary"]
        pre = await c.options("/media/abc234/hls/seg_0.m4s", headers={
            "Origin": "https://a.example", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Range"})
        assert pre.headers["Access-Control-Allow-Origin"] == "https://a.example"


async def test_s3_redirect_delivery(s3_settings: Settings, media: dict[str, Path]) -> None:
    async for c in _client(s3_settings.with_(s3_delivery="redirect")):
        await _publish(c, "abc234", media)
        resp = await c.get("/media/abc234/hls/seg_0.m4s", allow_redirects=False,
                           headers={"Origin": "https://p.example"})
        assert resp.status == 302
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert resp.headers["Surrogate-Key"] == "asset-abc234"
        assert "max-age=60" in resp.headers["Cache-Control"]
        async with c.session.get(resp.headers["Location"], headers={"Range": "bytes=0-99"}) as s3:
            assert s3.status == 206 and await s3.read() == media["hls/seg_0.m4s"].read_bytes()[:100]
        etag = (await c.head("/media/abc234/hls/seg_0.m4s", allow_redirects=False)).headers.get("ETag")
        assert etag is None or (await c.get("/media/abc234/hls/seg_0.m4s", allow_redirects=False,
                                            headers={"If-None-Match": etag})).status == 304
        missing = await c.get("/media/abc234/hls/none.m4s", allow_redirects=False)
        assert missing.status == 404


async def test_large_objects_and_ranges(oc: TestClient, media: dict[str, Path], tmp_path: Path) -> None:
    """Objects above the small-object threshold go out by sendfile (local) or a ranged stream (S3)."""
    import os

    big = tmp_path / "download.mp4"
    data = os.urandom(5 * 1024 * 1024 + 17)
    big.write_bytes(data)
    await _publish(oc, "abc234", {**media, "download/full.mp4": big})
    url = "/media/abc234/download/full.mp4"
    resp = await oc.get(url)
    assert resp.status == 200 and await resp.read() == data
    assert resp.headers["Content-Type"] == "video/mp4" and resp.headers["Cache-Control"] == YEAR
    head = await oc.head(url)
    assert head.status == 200 and head.headers["Content-Length"] == str(len(data)) and await head.read() == b""
    start = 1024 * 1024 - 5
    part = await oc.get(url, headers={"Range": f"bytes={start}-"})
    assert part.status == 206 and await part.read() == data[start:]
    assert part.headers["Content-Range"] == f"bytes {start}-{len(data) - 1}/{len(data)}"
    middle = await oc.get(url, headers={"Range": "bytes=100-2000100"})
    assert middle.status == 206 and await middle.read() == data[100:2000101]


async def test_range_edge_cases_and_if_match(settings: Settings, media: dict[str, Path]) -> None:
    async for c in _client(settings):
        await _publish(c, "abc234", media)
        url = "/media/abc234/hls/seg_0.m4s"
        data = media["hls/seg_0.m4s"].read_bytes()
        for ignored in ("bytes=0-1,5-9", "items=0-5", "bytes=9-2", "bytes=abc"):
            resp = await c.get(url, headers={"Range": ignored})
            assert resp.status == 200 and await resp.read() == data, ignored
        for unsatisfiable in ("bytes=-0", f"bytes={len(data) + 10}-{len(data) + 20}"):
            resp = await c.get(url, headers={"Range": unsatisfiable})
            assert resp.status == 416 and resp.headers["Content-Range"] == f"bytes */{len(data)}"
        clipped = await c.get(url, headers={"Range": f"bytes=10-{len(data) * 2}"})
        assert clipped.status == 206 and await clipped.read() == data[10:]
        etag = (await c.head(url)).headers["ETag"]
        assert (await c.get(url, headers={"If-Match": etag})).status == 200
        failed = await c.get(url, headers={"If-Match": '"nope"', "Origin": "https://p.example"})
        assert failed.status == 412 and failed.headers["Access-Control-Allow-Origin"] == "*"
        assert (await c.get(url, headers={"If-None-Match": "*"})).status == 304
        assert (await c.get(url, headers={"If-Modified-Since": "not a date"})).status == 200
        assert (await c.post(url)).status == 405
