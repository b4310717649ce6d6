"""Rights that hold: nothing about a private, embargoed or expired asset reaches an anonymous caller on any
surface, and geo rules are decided only on a country a trusted proxy vouched for."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import asyncpg
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.settings import Settings
from tests.conftest import ADMIN
from tests.helpers import make_asset

NOW = datetime.now(UTC)
HIDDEN = {
    "private": {"visibility": "private"},
    "embargoed": {"available_from": NOW + timedelta(days=3)},
    "expired": {"available_from": NOW - timedelta(days=9), "available_until": NOW - timedelta(days=1)},
}

# Every anonymous surface that takes an asset id (or lists assets), as a path built from the id.
SURFACES: dict[str, Callable[[str, str], str]] = {
    "assets API": lambda i, base: f"/api/v1/assets/{i}",
    "embed": lambda i, base: f"/embed/{i}",
    "watch": lambda i, base: f"/watch/{i}",
    "oEmbed json": lambda i, base: "/oembed?url=" + quote(f"{base}/embed/{i}", safe=""),
    "oEmbed xml": lambda i, base: "/oembed?format=xml&url=" + quote(f"{base}/watch/{i}", safe=""),
    "feed mrss": lambda i, base: "/feeds/mrss.xml",
    "feed atom": lambda i, base: "/feeds/atom.xml",
    "feed json": lambda i, base: "/feeds/feed.json",
    "partner API": lambda i, base: f"/api/v1/partner/assets/{i}",
    "partner search": lambda i, base: "/api/v1/partner/assets",
    "origin playlist": lambda i, base: f"/media/{i}/hls/master.m3u8",
    "origin poster": lambda i, base: f"/media/{i}/images/poster.jpg",
    "HbbTV app": lambda i, base: "/hbbtv/leaks/",
    "HbbTV state": lambda i, base: "/hbbtv/leaks/state.json",
}


async def test_hidden_assets_leak_nothing_anywhere(client: TestClient, db: asyncpg.Pool) -> None:
    ids = {}
    for kind, fields in HIDDEN.items():
        ids[kind] = await make_asset(db, title=f"Leaky {kind} title", description=f"Leaky {kind} description",
                                     **fields)
    visible = await make_asset(db, title="Public harbour")
    resp = await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json={
        "slug": "leaks", "name": "Leaks", "org_id": 1, "app_id": 7, "vod_assets": [*ids.values(), visible]})
    assert resp.status == 201, await resp.text()
    base = str(client.make_url("")).rstrip("/")
    checked = 0
    for kind, asset_id in ids.items():
        for surface, path in SURFACES.items():
            requested = path(asset_id, base)
            resp = await client.get(requested)
            body = (await resp.text()).replace(requested.split("?")[0], "")  # a problem's `instance` echoes it
            for secret in (f"Leaky {kind} title", f"Leaky {kind} description", f"/media/{asset_id}/"):
                assert secret not in body, (kind, surface, resp.status, secret)
            if surface in ("assets API", "embed", "watch", "origin playlist", "partner API"):
                assert resp.status >= 400, (kind, surface, resp.status)
            checked += 1
    assert checked == len(HIDDEN) * len(SURFACES)
    # the control: the same surfaces do show a public asset
    assert "Public harbour" in await (await client.get(f"/api/v1/assets/{visible}")).text()
    assert "Public harbour" in await (await client.get("/feeds/feed.json")).text()
    assert "Public harbour" in await (await client.get("/hbbtv/leaks/")).text()
    # editors still see what the public does not
    for asset_id in ids.values():
        assert (await client.get(f"/api/v1/assets/{asset_id}", headers=ADMIN)).status == 200


async def _code(resp) -> tuple[int, str | None]:
    if resp.content_type != "application/problem+json":
        return resp.status, None
    return resp.status, (await resp.json())["type"].rsplit("/", 1)[1]


async def test_spoofed_country_is_geo_unknown_trusted_country_decides(settings: Settings, db: asyncpg.Pool) -> None:
    gb_only = await make_asset(db, title="GB only", geo_allow=["GB"])
    no_us = await make_asset(db, title="Not in US", geo_deny=["US"])
    spoof = {"CloudFront-Viewer-Country": "GB", "CF-IPCountry": "GB"}
    # The peer (127.0.0.1) is not a trusted proxy: its country headers are the client's own claim.
    async with TestClient(TestServer(create_app(settings, settings.database_url or "", run_worker=False))) as c:
        for asset_id in (gb_only, no_us):
            resp = await c.get(f"/media/{asset_id}/hls/master.m3u8", headers=spoof)
            assert await _code(resp) == (403, "geo-unknown")
        page = await c.get(f"/embed/{gb_only}", headers=spoof)
        assert page.status == 403 and "GB only" not in await page.text()
    # Behind a trusted proxy the same header is believed, and the rule decides.
    trusted = settings.with_(trusted_proxies="127.0.0.1/32")
    async with TestClient(TestServer(create_app(trusted, trusted.database_url or "", run_worker=False))) as c:
        gb = await c.get(f"/media/{gb_only}/hls/master.m3u8", headers={"CloudFront-Viewer-Country": "GB"})
        assert gb.status != 403  # allowed: whatever the store holds (the test stored no media)
        fr = await c.get(f"/media/{gb_only}/hls/master.m3u8", headers={"CloudFront-Viewer-Country": "FR"})
        assert await _code(fr) == (403, "geo-blocked")
        us = await c.get(f"/media/{no_us}/hls/master.m3u8", headers={"CF-IPCountry": "US"})
        assert await _code(us) == (403, "geo-blocked")
        assert (await c.get(f"/embed/{gb_only}", headers={"CF-IPCountry": "GB"})).status == 200


async def test_security_headers_csp_on_hbbtv_documents_and_metrics_restricted(settings: Settings) -> None:
    closed = settings.with_(metrics_networks="192.0.2.0/24", metrics_token="scrape-token-123")
    async with TestClient(TestServer(create_app(closed, closed.database_url or "", run_worker=False))) as c:
        assert (await c.get("/metrics")).status == 403  # 127.0.0.1 is not in the configured networks
        assert (await c.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 403
        ok = await c.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"})
        assert ok.status == 200 and "onair_http_requests_total" in await ok.text()
        resp = await c.post("/api/v1/hbbtv/apps", headers=ADMIN, json={"slug": "csp", "name": "CSP", "org_id": 1,
                                                                      "app_id": 3})
        assert resp.status == 201
        for path in ("/hbbtv/csp/", "/hbbtv/nosuchapp/"):
            csp = (await c.get(path)).headers.get("Content-Security-Policy", "")
            assert "script-src 'self'" in csp and "base-uri 'none'" in csp, path
    async with TestClient(TestServer(create_app(settings, settings.database_url or "", run_worker=False))) as c:
        assert (await c.get("/metrics")).status == 200  # loopback is in the default networks


async def test_same_origin_links_refuse_backslash_forms(client: TestClient) -> None:
    """A browser reads "/\\evil.example/x" as "//evil.example/x": another host, so it is not a same-origin path."""
    for link in ("/\\evil.example/i.png", "/\t/evil.example/i.png", "//evil.example/i.png"):
        resp = await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json={
            "slug": "sameorigin", "name": "S", "org_id": 1, "app_id": 4, "logo_url": link})
        assert resp.status == 400, (link, await resp.text())
    resp = await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json={
        "slug": "sameorigin", "name": "S", "org_id": 1, "app_id": 4, "logo_url": "/hbbtv/static/logo.png"})
    assert resp.status == 201
