"""onair.core.web: one rule each for the public base URL, the client IP, the viewer's country and TTL capping.

The test client connects from 127.0.0.1, so "trusted" below means ONAIR_TRUSTED_PROXIES covers 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.settings import SETTINGS, SettingError, Settings
from onair.core.web import base_url, cap_ttl, cap_ttl_all, client_ip, viewer_country
from tests.helpers import make_asset

LOOPBACK = "127.0.0.1/32"


async def _echo(request: web.Request) -> web.Response:
    return web.json_response({"ip": client_ip(request), "country": viewer_country(request),
                              "base": base_url(request)})


async def _policy_client(settings: Settings) -> TestClient:
    app = web.Application()
    app[SETTINGS] = settings
    app.router.add_get("/", _echo)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def untrusted() -> AsyncIterator[TestClient]:
    client = await _policy_client(Settings())
    yield client
    await client.close()


@pytest.fixture
async def trusted() -> AsyncIterator[TestClient]:
    client = await _policy_client(Settings(trusted_proxies=f"10.0.0.0/8, {LOOPBACK}", allowed_hosts="tv.example"))
    yield client
    await client.close()


FORWARDED = {"X-Forwarded-For": "198.51.100.7, 10.1.2.3", "X-Forwarded-Proto": "https",
             "X-Forwarded-Host": "tv.example", "CF-IPCountry": "fr"}


async def test_an_untrusted_peer_cannot_choose_its_ip_country_or_host(untrusted: TestClient) -> None:
    body = await (await untrusted.get("/", headers=FORWARDED)).json()
    assert body == {"ip": "127.0.0.1", "country": None, "base": f"http://127.0.0.1:{untrusted.port}"}


async def test_a_trusted_proxy_is_believed(trusted: TestClient) -> None:
    body = await (await trusted.get("/", headers=FORWARDED)).json()
    # 10.1.2.3 is one of our proxies; the first untrusted hop from the right is the viewer.
    assert body == {"ip": "198.51.100.7", "country": "FR", "base": "https://tv.example"}


async def test_client_written_hops_left_of_the_viewer_prove_nothing(trusted: TestClient) -> None:
    spoofed = {"X-Forwarded-For": "1.2.3.4, 198.51.100.7"}
    assert (await (await trusted.get("/", headers=spoofed)).json())["ip"] == "198.51.100.7"
    garbage = {"X-Forwarded-For": "not-an-ip"}
    assert (await (await trusted.get("/", headers=garbage)).json())["ip"] == "127.0.0.1"


async def test_a_country_header_that_is_not_a_code_is_ignored(trusted: TestClient) -> None:
    assert (await (await trusted.get("/", headers={"CF-IPCountry": "XX1"})).json())["country"] is None
    assert (await (await trusted.get("/", headers={"CloudFront-Viewer-Country": "gb"})).json())["country"] == "GB"


async def test_a_bad_host_header_falls_back_to_the_configured_address(untrusted: TestClient) -> None:
    body = await (await untrusted.get("/", headers={"Host": "evil.example/<script>"})).json()
    assert body["base"] == "http://127.0.0.1:8080"


def test_trusted_proxies_must_be_cidrs() -> None:
    with pytest.raises(SettingError, match="ONAIR_TRUSTED_PROXIES"):
        Settings.from_env({"ONAIR_TRUSTED_PROXIES": "10.0.0.0/8, the-cdn"})
    assert Settings().trusted_proxy_networks == ()


def test_cap_ttl_never_outlives_the_rights_end() -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert cap_ttl(60, None, now) == 60
    assert cap_ttl(60, now + timedelta(seconds=15), now) == 15
    assert cap_ttl(60, now - timedelta(seconds=15), now) == 0
    assert cap_ttl_all(3600, [None, now + timedelta(hours=2), now + timedelta(seconds=90)], now) == 90


@pytest.mark.parametrize(("public_url", "proxies", "headers", "expected"), [
    (None, "", {}, "http://127.0.0.1:{port}"),
    (None, "", {"X-Forwarded-Host": "tv.example", "X-Forwarded-Proto": "https"}, "http://127.0.0.1:{port}"),
    (None, LOOPBACK, {"X-Forwarded-Host": "tv.example", "X-Forwarded-Proto": "https"}, "https://tv.example"),
    # a host outside ONAIR_ALLOWED_HOSTS never reaches a link, even through a trusted proxy or as the Host itself
    (None, LOOPBACK, {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}, "http://127.0.0.1:1"),
    (None, "", {"Host": "evil.example"}, "http://127.0.0.1:1"),
    ("https://video.example.org/", "", {}, "https://video.example.org"),
])
async def test_assets_api_and_oembed_agree_on_the_host(settings: Settings, db: asyncpg.Pool, public_url: str | None,
                                                     proxies: str, headers: dict[str, str], expected: str) -> None:
    """The same video gets the same absolute URLs from the assets API and oEmbed, whatever the set-up."""
    settings = settings.with_(public_url=public_url, trusted_proxies=proxies, port=1,   # port: not what we listen on
                              allowed_hosts="127.0.0.1,tv.example")
    asset_id = await make_asset(db)
    async with TestClient(TestServer(create_app(settings, settings.database_url or "", run_worker=False))) as c:
        base = expected.format(port=c.port)
        api = await (await c.get(f"/api/v1/assets/{asset_id}", headers=headers)).json()
        assert api["playback"]["embed"] == f"{base}/embed/{asset_id}"
        resp = await c.get(f"/oembed?url={quote(api['playback']['embed'], safe='')}", headers=headers)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert f'src="{base}/embed/{asset_id}' in body["html"] and body["provider_url"] == base + "/"
        page = await (await c.get(f"/embed/{asset_id}", headers=headers)).text()
        assert f"{base}/oembed?url={quote(base + '/embed/' + asset_id, safe='')}" in page.replace("&amp;", "&")
