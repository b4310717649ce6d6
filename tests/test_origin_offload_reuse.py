"""Decision reuse in offload mode (ONAIR_ORIGIN_OFFLOAD_DECISION_SECONDS) through a real nginx: a kept decision
serves the file with the headers direct mode sends, and never answers a request onair would answer otherwise."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import CIMultiDictProxy

from onair.core.db.pool import POOL
from onair.core.settings import Settings
from onair.core.storage import STORE
from streaming.catalog import update_asset
from streaming.catalog.rights import Rights
from streaming.delivery import signing
from streaming.delivery.offload import reuse_seconds
from streaming.delivery.origin import LOOKUP_TTL, ORIGIN_CONFIG
from tests.offload_pair import offload_pair
from tests.origin_media import make_media, publish
from tests.test_origin_offload import IGNORED

SEG = "hls/seg_0.m4s"
TTL = 1  # nginx keeps a decision to the end of the next whole second: 1 to 2 s
Answer = tuple[int, bytes, CIMultiDictProxy[str]]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture
async def edge(settings: Settings, media: dict[str, Path], tmp_path: Path
               ) -> AsyncIterator[tuple[TestClient, TestClient, str]]:
    """(onair direct, onair offload, nginx in front of the offload one); nginx is a trusted proxy, so a
    country header it passes on counts."""
    async def seed(app: web.Application) -> None:
        await publish(app[POOL], app[STORE], "pub22", media)
        await publish(app[POOL], app[STORE], "priv22", media, visibility="private")
        await publish(app[POOL], app[STORE], "geo22", media, geo_allow=("GB",))

    settings = dataclasses.replace(settings, cors_origins="https://player.example", trusted_proxies="127.0.0.1/32")
    async with offload_pair(settings, tmp_path / "nginx", seed, site="onair-offload.conf",
                            offload={"origin_offload_decision_seconds": TTL},
                            objects=settings.data_dir / "objects") as parties:
        yield parties


async def _get(s: aiohttp.ClientSession, url: str, method: str = "GET", **headers: str) -> Answer:
    async with s.request(method, url, headers=headers, allow_redirects=False) as r:
        return r.status, await r.read(), r.headers


async def _hit(s: aiohttp.ClientSession, url: str, **headers: str) -> Answer:
    """Ask until nginx answers from a kept decision (the first ask is onair's; the entry may have expired
    at a second boundary just before the second one)."""
    deadline = time.monotonic() + 5
    while True:
        answer = await _get(s, url, **headers)
        assert answer[0] == 200, (url, answer[0])
        if answer[2].get("X-Onair-Decision") == "HIT":
            return answer
        assert time.monotonic() < deadline, f"no kept decision for {url}"


def _names(headers: CIMultiDictProxy[str]) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in headers.items() if k.lower() not in IGNORED)


async def test_kept_decisions_answer_like_onair(edge: tuple[TestClient, TestClient, str],
                                               media: dict[str, Path]) -> None:
    direct, offload, url = edge
    seg = media[SEG].read_bytes()
    base = str(direct.make_url("")).rstrip("/")
    cors = {"Origin": "https://player.example", "X-Request-Id": "reuse-1"}
    async with aiohttp.ClientSession() as s:
        # a hit sends the file with the very headers direct mode sends (its own request id included)
        want = await _get(s, f"{base}/media/pub22/{SEG}", **cors)
        status, body, hit = await _hit(s, f"{url}/media/pub22/{SEG}", **cors)
        assert (status, body, _names(hit)) == (want[0], seg, _names(want[2]))
        status, body, headers = await _get(s, f"{url}/media/pub22/{SEG}", "HEAD", **{**cors, "X-Request-Id": "r2"})
        want = await _get(s, f"{base}/media/pub22/{SEG}", "HEAD", **{**cors, "X-Request-Id": "r2"})
        assert headers["X-Onair-Decision"] == "HIT" and body == b""
        assert _names(headers) == _names(want[2])
        # another Origin is another decision (CORS headers differ)
        status, _, headers = await _get(s, f"{url}/media/pub22/{SEG}", Origin="https://evil.example")
        assert headers["X-Onair-Decision"] != "HIT" and "Access-Control-Allow-Origin" not in headers
        # ranges and conditionals are onair's every time, kept decision or not
        status, body, headers = await _get(s, f"{url}/media/pub22/{SEG}", Range="bytes=100-199")
        assert (status, body, headers["Content-Range"]) == (206, seg[100:200], f"bytes 100-199/{len(seg)}")
        etag = headers["ETag"]
        status, body, headers = await _get(s, f"{url}/media/pub22/{SEG}", **{"If-None-Match": etag})
        assert (status, body) == (304, b"") and "X-Onair-Decision" not in headers
        status, _, _ = await _get(s, f"{url}/media/pub22/{SEG}", **{"If-Match": '"other"'})
        assert status == 412
        # onair marks what nginx may keep; nginx never shows the marks
        async with s.get(str(offload.make_url(f"/media/pub22/{SEG}"))) as r:
            assert r.headers["X-Accel-Expires"] == str(TTL)
        assert not [k for k in hit if k.lower().startswith("x-accel")]

        # a token's yes opens nothing else: not the asset without a token, not another or an expired token
        secret = direct.app[ORIGIN_CONFIG].secret
        now = int(time.time())
        signed = signing.signed_media_path(secret, "priv22", SEG, now + 600)
        assert (await _hit(s, url + signed))[1] == seg
        status, body, headers = await _get(s, f"{url}/media/priv22/{SEG}")
        assert status == 403 and seg not in body and "X-Onair-Decision" not in headers
        other = signing.signed_media_path(secret, "priv22", SEG, now + 601)
        status, _, headers = await _get(s, url + other)
        assert status == 200 and headers["X-Onair-Decision"] != "HIT"
        for path in (signing.signed_media_path(secret, "priv22", SEG, now - 3600),
                     signing.signed_media_path(secret, "pub22", SEG, now + 600).replace("pub22", "priv22", 1)):
            status, body, _ = await _get(s, url + path)
            assert status == 403 and seg not in body, path
        # never kept: a token about to expire, one bound to an address, a geo-restricted asset
        async with s.get(str(offload.make_url(signing.signed_media_path(secret, "priv22", SEG, now)))) as r:
            assert r.status == 200 and r.headers["X-Accel-Expires"] == "0"
        bound = signing.signed_media_path(secret, "priv22", SEG, now + 600, ip="127.0.0.1")
        for path, country in ((bound, "GB"), (bound, "GB"), (f"/media/geo22/{SEG}", "GB"),
                              (f"/media/geo22/{SEG}", "GB")):
            status, body, headers = await _get(s, url + path, **{"CloudFront-Viewer-Country": country})
            assert (status, body) == (200, seg) and headers["X-Onair-Decision"] != "HIT", path
        status, body, _ = await _get(s, f"{url}/media/geo22/{SEG}", **{"CloudFront-Viewer-Country": "FR"})
        assert status == 403 and seg not in body

        # no way around the decision: the internal location is not reachable from outside
        for path in (f"/_onair_internal/assets/priv22/{SEG}", f"/media/%2e%2e/_onair_internal/assets/priv22/{SEG}",
                     f"/media/priv22/../../_onair_internal/assets/priv22/{SEG}"):
            status, body, _ = await _get(s, url + path)
            assert status == 404 and seg not in body, path


async def test_unpublishing_reaches_viewers_within_the_decision_time(
        edge: tuple[TestClient, TestClient, str]) -> None:
    direct, _, url = edge
    async with aiohttp.ClientSession() as s:
        await _hit(s, f"{url}/media/pub22/{SEG}")
        await update_asset(direct.app[POOL], "pub22", {"visibility": "private"})
        changed = time.monotonic()
        # nginx's entry (at most TTL + 1 s: whole seconds) and onair's own asset cache (LOOKUP_TTL)
        bound = TTL + 1 + LOOKUP_TTL
        while (answer := await _get(s, f"{url}/media/pub22/{SEG}"))[0] == 200:
            assert time.monotonic() - changed < bound + 1, "still served after the decision time"
        assert answer[0] == 403


def test_a_kept_decision_never_outlives_what_allowed_it() -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    token = signing.TokenFields(int(now.timestamp()) + 100, "/media/a/*")
    assert reuse_seconds(2, Rights(), None, now) == 2
    assert reuse_seconds(0, Rights(), None, now) == 0
    assert reuse_seconds(30, Rights(), token, now) == 30
    assert reuse_seconds(300, Rights(), token, now) == 100
    assert reuse_seconds(2, Rights(), dataclasses.replace(token, exp=token.exp - 99), now) == 1
    assert reuse_seconds(2, Rights(available_until=now + timedelta(seconds=1.5)), None, now) == 1
    assert reuse_seconds(2, Rights(available_until=now + timedelta(seconds=0.9)), token, now) == 0
    assert reuse_seconds(2, Rights(geo_deny=("FR",)), None, now) == 0
    assert reuse_seconds(2, Rights(), dataclasses.replace(token, ip="192.0.2.1"), now) == 0
