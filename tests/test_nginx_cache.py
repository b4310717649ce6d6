"""Proof through a real cache: nginx with deploy/nginx in front of onair collapses a storm to one
origin fetch per object, and passes 304/206 through correctly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.db.pool import POOL
from onair.core.settings import Settings
from onair.core.storage import STORE
from streaming.delivery.origin import ORIGIN_HITS
from tests.nginx_cdn import nginx_binary, running_nginx
from tests.origin_media import make_media, publish
from tests.tools import missing

OBJECTS = ["hls/master.m3u8", "hls/stream.m3u8", "hls/init.mp4", "hls/seg_0.m4s", "hls/seg_1.m4s",
           "dash/manifest.mpd", "images/poster.jpg", "captions/en.vtt"]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture
async def origin(settings: Settings, media: dict[str, Path]) -> AsyncIterator[TestClient]:
    app = create_app(settings, settings.database_url or "", run_worker=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        await publish(app[POOL], app[STORE], "show23", media)
        await publish(app[POOL], app[STORE], "priv23", media, visibility="private")
        yield c


async def _metric_total(session: aiohttp.ClientSession, origin_url: str) -> float:
    async with session.get(f"{origin_url}/metrics") as resp:
        text = await resp.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("onair_http_requests_total{") and 'route="/media/' in line)


async def test_storm_reaches_origin_once_per_object(origin: TestClient, media: dict[str, Path],
                                                    tmp_path: Path) -> None:
    binary = nginx_binary()
    if binary is None:
        missing("nginx", "apt-get install nginx-light  (or nginx)")
    origin_url = str(origin.make_url("")).rstrip("/")
    origin_hostport = origin_url.removeprefix("http://")
    with running_nginx(binary, tmp_path / "nginx", origin_hostport, workers=2) as cdn:
        connector = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(connector=connector) as s:
            before = await _metric_total(s, origin_url)  # the process's metrics count earlier tests' requests too

            async def fetch(key: str) -> tuple[str, int, bytes, str]:
                async with s.get(f"{cdn}/media/show23/{key}") as r:
                    return key, r.status, await r.read(), r.headers.get("X-Cache-Status", "")

            results = await asyncio.gather(*(fetch(k) for _ in range(40) for k in OBJECTS))
            for key, status, body, _ in results:
                assert status == 200 and body == media[key].read_bytes(), key
            hits = origin.app[ORIGIN_HITS]
            for key in OBJECTS:
                assert hits[("show23", key)] == 1, (key, hits[("show23", key)])
            assert await _metric_total(s, origin_url) - before == len(OBJECTS)
            statuses = [c for *_, c in results]
            assert statuses.count("HIT") + statuses.count("UPDATING") >= len(results) - 3 * len(OBJECTS)

            # 206 and 304 through the cache, answered from the cached object
            seg = media["hls/seg_0.m4s"].read_bytes()
            async with s.get(f"{cdn}/media/show23/hls/seg_0.m4s", headers={"Range": "bytes=100-199"}) as r:
                assert r.status == 206 and await r.read() == seg[100:200]
                assert r.headers["Content-Range"] == f"bytes 100-199/{len(seg)}"
            async with s.get(f"{cdn}/media/show23/hls/seg_0.m4s") as r:
                etag, last_modified = r.headers["ETag"], r.headers["Last-Modified"]
                assert "immutable" in r.headers["Cache-Control"]
            async with s.get(f"{cdn}/media/show23/hls/seg_0.m4s", headers={"If-None-Match": etag}) as r:
                assert r.status == 304 and r.headers["ETag"] == etag
            async with s.get(f"{cdn}/media/show23/hls/seg_0.m4s",
                             headers={"If-Modified-Since": last_modified}) as r:
                assert r.status == 304
            async with s.get(f"{cdn}/media/show23/hls/seg_0.m4s", headers={"Range": f"bytes={len(seg)}-"}) as r:
                assert r.status == 416
            assert hits[("show23", "hls/seg_0.m4s")] == 1

            # a cache-busting query string does not reach the origin again
            async with s.get(f"{cdn}/media/show23/hls/seg_1.m4s?bust=123") as r:
                assert r.status == 200 and r.headers["X-Cache-Status"] == "HIT"
            assert hits[("show23", "hls/seg_1.m4s")] == 1

            # errors are not cached for long, 403s not at all
            for _ in range(3):
                async with s.get(f"{cdn}/media/priv23/hls/master.m3u8") as r:
                    assert r.status == 403
            assert await _metric_total(s, origin_url) - before == len(OBJECTS) + 3
