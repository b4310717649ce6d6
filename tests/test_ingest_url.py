"""Pulling an original from a URL: redirects re-checked, private targets refused unless allowed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from tests.conftest import ADMIN
from tests.ingest_tools import make_clip, wait_for


@pytest.fixture
async def source_server(tmp_path) -> AsyncIterator[str]:
    clip = make_clip(tmp_path / "clip.mp4", size="320x180", seconds=2).read_bytes()

    async def serve_clip(request: web.Request) -> web.Response:
        return web.Response(body=clip, content_type="video/mp4")

    async def hop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/media/clip.mp4")

    app = web.Application()
    app.router.add_get("/media/clip.mp4", serve_clip)
    app.router.add_get("/go", hop)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def private_ok_client(settings) -> AsyncIterator[TestClient]:
    app = create_app(settings.with_(allow_private_urls=True), settings.database_url or "")
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_url_pull_follows_redirect_and_becomes_ready(private_ok_client, source_server):
    resp = await private_ok_client.post("/api/v1/assets", headers=ADMIN,
                                        json={"source_url": source_server + "/go", "title": "Pulled"})
    assert resp.status == 202
    asset_id = (await resp.json())["id"]
    body = await wait_for(private_ok_client, asset_id)
    assert body["status"] == "ready", body["error"]
    assert body["title"] == "Pulled" and body["renditions"][0]["height"] == 180

    resp = await private_ok_client.post("/api/v1/assets", headers=ADMIN,
                                        json={"source_url": source_server + "/missing.mp4"})
    body = await wait_for(private_ok_client, (await resp.json())["id"])
    assert body["status"] == "failed" and "HTTP 404" in body["error"]


async def test_private_and_loopback_targets_are_refused_by_default(client, source_server):
    for url in (source_server + "/media/clip.mp4", "http://localhost:9/x.mp4", "http://10.0.0.1/x.mp4",
                "http://[::1]/x.mp4", "http://169.254.169.254/latest/meta-data"):
        # Literal loopback/private targets are refused at once (no asset is created); names that resolve
        # there are refused by the pull itself, which resolves and re-checks every redirect hop.
        resp = await client.post("/api/v1/assets", headers=ADMIN, json={"source_url": url})
        assert resp.status == 400 and resp.content_type == "application/problem+json", url
        detail = (await resp.json())["detail"]
        assert "private or loopback" in detail or "this machine" in detail, (url, detail)


async def test_names_resolving_to_loopback_are_refused_when_pulled() -> None:
    import pytest

    from onair.core import safe_urls

    with pytest.raises(safe_urls.UrlRejected, match="private or loopback"):
        await safe_urls.check_destination("http://localhost:9/x.mp4", allow_private=False)
    await safe_urls.check_destination("http://localhost:9/x.mp4", allow_private=True)  # the test-only setting


async def test_the_connection_goes_to_the_checked_address(tmp_path) -> None:
    """The pinned session resolves, checks and connects to one answer: a name that resolves to loopback is refused
    at connect time (no second lookup), also on a redirect hop to it, and allowed only with the test setting."""
    import ipaddress

    from onair.core import safe_urls

    async def hop(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://localhost:{request.url.port}/ok")

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="inside")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/go", hop)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with safe_urls.pinned_session(allow_private=False) as s:
            with pytest.raises(safe_urls.UrlRejected, match="private or loopback"):
                await s.get(f"http://localhost:{server.port}/ok")
        async with safe_urls.pinned_session(allow_private=False) as s:
            # a literal address never reaches a resolver (check_url judges it, per hop); the redirect it answers,
            # to a name resolving inside, is refused as the connection is made
            with pytest.raises(safe_urls.UrlRejected, match="private or loopback"):
                await s.get(f"http://127.0.0.1:{server.port}/go")
        async with safe_urls.pinned_session(allow_private=True) as s, s.get(f"http://localhost:{server.port}/ok") as r:
            assert await r.text() == "inside"
    finally:
        await server.close()

    # IPv6 forms that carry an IPv4 address are never public, whatever they embed
    for text in ("64:ff9b::7f00:1", "64:ff9b::808:808", "2002:c0a8:101::1", "2002:808:808::1", "::ffff:127.0.0.1",
                 "::ffff:8.8.8.8", "::127.0.0.1", "2001:0:4136:e378:8000:63bf:3fff:fdd2"):
        assert not safe_urls.is_public(ipaddress.ip_address(text)), text
        with pytest.raises(safe_urls.UrlRejected):
            safe_urls.check_url(f"http://[{text}]/x.mp4", allow_private=False)
    assert safe_urls.is_public(ipaddress.ip_address("2606:4700::1111"))
    assert safe_urls.is_public(ipaddress.ip_address("8.8.8.8"))
