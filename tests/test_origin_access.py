"""Who may fetch media: private assets need a path token; rights windows; path tricks never escape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from onair.app import create_app
from onair.core.clock import CLOCK
from onair.core.db.pool import POOL
from onair.core.settings import Settings
from onair.core.storage import STORE
from streaming.delivery import signing
from tests.origin_media import make_media, publish

SECRET = b"test-signing-key-not-secret"  # conftest's settings.signing_key
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture
async def c(settings: Settings) -> AsyncIterator[TestClient]:
    app = create_app(settings, settings.database_url or "", run_worker=False)
    app[CLOCK] = lambda: NOW
    async with TestClient(TestServer(app)) as client:
        yield client


def tok(asset_id: str, *, exp: datetime = NOW + timedelta(hours=1), ip: str | None = None,
        acl: str | None = None, secret: bytes = SECRET) -> str:
    return signing.make_token(secret, acl or signing.media_acl(asset_id), int(exp.timestamp()), ip)


async def problem(resp, status: int, code: str | None = None) -> None:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    if code:
        assert body["type"].endswith("/" + code), body


async def test_private_asset_needs_a_valid_token(c: TestClient, media: dict[str, Path]) -> None:
    await publish(c.app[POOL], c.app[STORE], "priv23", media, visibility="private")
    await publish(c.app[POOL], c.app[STORE], "other2", media, visibility="private")
    await problem(await c.get("/media/priv23/hls/master.m3u8"), 403, "token-required")

    good = tok("priv23")
    master = await c.get(f"/media/priv23/tok/{good}/hls/master.m3u8")
    assert master.status == 200
    assert master.headers["X-Robots-Tag"] == "noindex"
    # the cache lifetime never outlives the token
    assert int(master.headers["Cache-Control"].split("max-age=")[1].split(",")[0]) <= 3600
    # relative URLs inside the manifest resolve under the same token prefix
    rel = (await master.text()).splitlines()[-1]
    seg_url = str(URL(f"/media/priv23/tok/{good}/hls/master.m3u8").join(URL(rel)))
    assert (await c.get(seg_url)).status == 200
    assert (await c.get(f"/media/priv23/tok/{good}/hls/seg_1.m4s", headers={"Range": "bytes=0-3"})).status == 206

    # the signing host's clock may run ahead of ours: ONAIR_TOKEN_CLOCK_SKEW_SECONDS (30) past expiry still plays
    just_expired = tok("priv23", exp=NOW - timedelta(seconds=20))
    skewed = await c.get(f"/media/priv23/tok/{just_expired}/hls/master.m3u8")
    assert skewed.status == 200
    assert "max-age=0" in skewed.headers["Cache-Control"] or "no-store" in skewed.headers["Cache-Control"]
    expired = tok("priv23", exp=NOW - timedelta(seconds=31))
    await problem(await c.get(f"/media/priv23/tok/{expired}/hls/master.m3u8"), 403, "token-expired")
    forged = tok("priv23", secret=b"someone-else")
    await problem(await c.get(f"/media/priv23/tok/{forged}/hls/master.m3u8"), 403, "token-invalid")
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    await problem(await c.get(f"/media/priv23/tok/{tampered}/hls/master.m3u8"), 403, "token-invalid")
    await problem(await c.get("/media/priv23/tok/garbage!!/hls/master.m3u8"), 403, "token-invalid")
    # a token for one asset does not open another, and the acl is not a string prefix of the id
    await problem(await c.get(f"/media/other2/tok/{good}/hls/master.m3u8"), 403, "token-wrong-path")
    narrow = tok("priv23", acl="/media/priv23/hls/master.m3u8")
    assert (await c.get(f"/media/priv23/tok/{narrow}/hls/master.m3u8")).status == 200
    await problem(await c.get(f"/media/priv23/tok/{narrow}/hls/seg_0.m4s"), 403, "token-wrong-path")
    prefix_trick = tok("priv2", acl="/media/priv2*")
    await problem(await c.get(f"/media/priv23/tok/{prefix_trick}/hls/seg_0.m4s"), 403)


async def test_ip_bound_token(c: TestClient, media: dict[str, Path]) -> None:
    await publish(c.app[POOL], c.app[STORE], "priv23", media, visibility="private")
    mine = tok("priv23", ip="127.0.0.1")
    assert (await c.get(f"/media/priv23/tok/{mine}/hls/master.m3u8")).status == 200
    theirs = tok("priv23", ip="192.0.2.7")
    await problem(await c.get(f"/media/priv23/tok/{theirs}/hls/master.m3u8"), 403, "token-wrong-ip")


@pytest.mark.parametrize("raw", [
    "/media/pub234/../priv23/hls/master.m3u8",
    "/media/pub234/hls/../../priv23/hls/master.m3u8",
    "/media/pub234/%2e%2e/priv23/hls/master.m3u8",
    "/media/pub234/hls%2f..%2f..%2fpriv23/hls/master.m3u8",
    "/media/pub234/%252e%252e/priv23/hls/master.m3u8",
    "/media/pub234/hls/.%2e/.%2e/priv23/hls/master.m3u8",
    "/media/pub234/hls%5c..%5cmaster.m3u8",
    "/media/pub234/hls//master.m3u8",
    "/media/pub234/tok/{tok}/../../priv23/hls/master.m3u8",
    "/media/pub234/tok/{tok}/%2e%2e/%2e%2e/priv23/hls/master.m3u8",
    "/media/priv23/tok/{tok}/hls/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
])
async def test_path_tricks_do_not_escape(c: TestClient, media: dict[str, Path], raw: str) -> None:
    await publish(c.app[POOL], c.app[STORE], "priv23", media, visibility="private")
    await publish(c.app[POOL], c.app[STORE], "pub234", media)
    url = raw.replace("{tok}", tok("pub234") if "pub234/tok" in raw else tok("priv23"))
    async with c.session.get(c.make_url("").join(URL(url, encoded=True))) as resp:
        body = await resp.read()
        assert 400 <= resp.status < 500, (resp.status, url)
        assert b"#EXTM3U" not in body and b"root:" not in body


async def test_rights_windows(settings: Settings, media: dict[str, Path]) -> None:
    # The test client is the CDN edge here: its country headers are believed only because it is trusted.
    settings = settings.with_(trusted_proxies="127.0.0.1/32")
    app = create_app(settings, settings.database_url or "", run_worker=False)
    moment = [NOW]
    app[CLOCK] = lambda: moment[0]
    async with TestClient(TestServer(app)) as c:
        await publish(c.app[POOL], c.app[STORE], "embarg", media, available_from=NOW + timedelta(days=1),
                      available_until=NOW + timedelta(days=8))
        await problem(await c.get("/media/embarg/hls/master.m3u8"), 403, "embargoed")
        # a signed URL is a preview pass: it opens an embargo (and only that)
        preview = tok("embarg")
        assert (await c.get(f"/media/embarg/tok/{preview}/hls/master.m3u8")).status == 200
        moment[0] = NOW + timedelta(days=2)
        live = await c.get("/media/embarg/hls/master.m3u8")
        assert live.status == 200
        # cached no longer than the rights last
        assert int(live.headers["Cache-Control"].split("max-age=")[1].split(",")[0]) <= 6 * 86400
        moment[0] = NOW + timedelta(days=9)
        await problem(await c.get("/media/embarg/hls/master.m3u8"), 403, "rights-expired")
        late = tok("embarg", exp=moment[0] + timedelta(hours=1))
        await problem(await c.get(f"/media/embarg/tok/{late}/hls/master.m3u8"), 403, "rights-expired")
        moment[0] = NOW

        await publish(c.app[POOL], c.app[STORE], "geoonly", media, geo_allow=("GB", "IE"))
        await problem(await c.get("/media/geoonly/hls/seg_0.m4s", headers={"CF-IPCountry": "FR"}), 403,
                      "geo-blocked")
        await problem(await c.get("/media/geoonly/hls/seg_0.m4s"), 403, "geo-unknown")
        gb = await c.get("/media/geoonly/hls/seg_0.m4s", headers={"CloudFront-Viewer-Country": "gb"})
        assert gb.status == 200
        assert "CloudFront-Viewer-Country" in gb.headers["Vary"] and "CF-IPCountry" in gb.headers["Vary"]
        geo_tok = tok("geoonly")
        await problem(await c.get(f"/media/geoonly/tok/{geo_tok}/hls/seg_0.m4s", headers={"CF-IPCountry": "FR"}),
                      403, "geo-blocked")
        blocked = await c.get("/media/geoonly/hls/seg_0.m4s", headers={"CF-IPCountry": "FR"})
        assert blocked.headers["Cache-Control"] == "no-store"
