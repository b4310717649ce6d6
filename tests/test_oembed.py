"""oEmbed 1.0 against the spec's fields and status codes, over the real app and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree
from lxml import html as lxml_html

from onair.app import create_app
from onair.core.settings import Settings
from syndication.embed.oembed import fit
from tests.embed_helpers import FakeClock, insert_asset

REQUIRED = {"version", "type", "html", "width", "height"}


def _url(client: TestClient, path: str) -> str:
    return str(client.make_url(path))


async def _oembed(client: TestClient, url: str, **params: str):
    query = "&".join([f"url={quote(url, safe='')}", *(f"{k}={quote(v)}" for k, v in params.items())])
    return await client.get(f"/oembed?{query}")


async def test_video_response_has_the_spec_fields(client: TestClient, db: asyncpg.Pool) -> None:
    asset_id = await insert_asset(db, title="Harbour fire", credit="Newsroom North")
    resp = await _oembed(client, _url(client, f"/embed/{asset_id}"))
    assert resp.status == 200 and resp.content_type == "application/json"
    body = await resp.json()
    assert REQUIRED <= body.keys()
    assert body["version"] == "1.0" and body["type"] == "video"
    assert (body["width"], body["height"]) == (640, 360)
    assert body["title"] == "Harbour fire" and body["author_name"] == "Newsroom North"
    assert body["provider_name"] == "onair" and body["provider_url"] == _url(client, "/")
    assert body["thumbnail_url"] == _url(client, f"/media/{asset_id}/images/thumb-640.jpg")
    assert (body["thumbnail_width"], body["thumbnail_height"]) == (640, 360)
    assert body["cache_age"] == 3600
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    iframe = lxml_html.fragment_fromstring(body["html"])
    assert iframe.tag == "iframe" and iframe.get("src") == _url(client, f"/embed/{asset_id}")
    assert (iframe.get("width"), iframe.get("height")) == ("640", "360")
    assert iframe.get("allow") == "autoplay; fullscreen; picture-in-picture"
    assert iframe.get("allowfullscreen") is not None and iframe.get("title") == "Harbour fire"
    # the watch page URL resolves to the same video
    same = await (await _oembed(client, _url(client, f"/watch/{asset_id}"))).json()
    assert same["html"] == body["html"]


async def test_maxwidth_and_maxheight_keep_the_aspect(client: TestClient, db: asyncpg.Pool) -> None:
    asset_id = await insert_asset(db)
    url = _url(client, f"/embed/{asset_id}")
    body = await (await _oembed(client, url, maxwidth="400")).json()
    assert (body["width"], body["height"]) == (400, 225)
    assert body["thumbnail_width"] <= 400 and body["thumbnail_url"].endswith("thumb-320.jpg")
    body = await (await _oembed(client, url, maxwidth="1000", maxheight="90")).json()
    assert (body["width"], body["height"]) == (160, 90)
    # no thumbnail fits 90 px high: none is offered, rather than one larger than the consumer asked for
    assert not {"thumbnail_url", "thumbnail_width", "thumbnail_height"} & body.keys()
    iframe = lxml_html.fragment_fromstring(body["html"])
    assert (iframe.get("width"), iframe.get("height")) == ("160", "90")


async def test_poster_thumbnail_declares_the_poster_file_size(client: TestClient, db: asyncpg.Pool) -> None:
    # anamorphic SD: the top rung is 1280x720 after the ladder, the poster file is 1024x576
    outputs = {"video": [{"name": "720p", "width": 1280, "height": 720}], "poster": "images/poster.jpg",
               "poster_size": {"width": 1024, "height": 576}}
    asset_id = await insert_asset(db, outputs=outputs)
    body = await (await _oembed(client, _url(client, f"/embed/{asset_id}"))).json()
    assert body["thumbnail_url"].endswith("/images/poster.jpg")
    assert (body["thumbnail_width"], body["thumbnail_height"]) == (1024, 576)
    body = await (await _oembed(client, _url(client, f"/embed/{asset_id}"), maxwidth="500")).json()
    assert "thumbnail_url" not in body


def test_fit_is_pure_and_never_exceeds_the_box() -> None:
    assert fit(1280, 720, None, None) == (640, 360)
    assert fit(720, 1280, None, 400) == (225, 400)   # portrait
    assert fit(320, 180, None, None) == (320, 180)   # never upscaled past the source
    for mw in (1, 7, 333, 641):
        for mh in (1, 9, 250, 999):
            w, h = fit(1920, 1080, mw, mh)
            assert w <= mw and (h <= mh or h == 1)


async def test_bad_input_and_spec_status_codes(client: TestClient, db: asyncpg.Pool) -> None:
    asset_id = await insert_asset(db)
    url = _url(client, f"/embed/{asset_id}")
    for bad in ({"maxwidth": "abc"}, {"maxwidth": "0"}, {"maxheight": "-3"}, {"maxheight": "1.5"}):
        resp = await _oembed(client, url, **bad)
        assert resp.status == 400 and resp.content_type == "application/problem+json", bad
    assert (await client.get("/oembed")).status == 400
    assert (await _oembed(client, url, format="yaml")).status == 501
    assert (await _oembed(client, f"https://elsewhere.example/embed/{asset_id}")).status == 404
    assert (await _oembed(client, _url(client, "/embed/nosuchvideo1"))).status == 404
    assert (await _oembed(client, _url(client, f"/feeds/{asset_id}"))).status == 404
    assert (await _oembed(client, "javascript:alert(1)")).status == 404
    private = await insert_asset(db, visibility="private")
    resp = await _oembed(client, _url(client, f"/embed/{private}"))
    assert resp.status == 401 and resp.content_type == "application/problem+json"
    processing = await insert_asset(db, status="transcoding", outputs=None)
    assert (await _oembed(client, _url(client, f"/embed/{processing}"))).status == 404


async def test_xml_format(client: TestClient, db: asyncpg.Pool) -> None:
    asset_id = await insert_asset(db, title="Fish & <chips>")
    resp = await _oembed(client, _url(client, f"/embed/{asset_id}"), format="xml", maxwidth="320")
    assert resp.status == 200 and resp.content_type == "text/xml"
    root = etree.fromstring(await resp.read())
    assert root.tag == "oembed"
    assert root.findtext("type") == "video" and root.findtext("version") == "1.0"
    assert root.findtext("title") == "Fish & <chips>" and root.findtext("width") == "320"
    assert lxml_html.fragment_fromstring(root.findtext("html")).tag == "iframe"


async def test_unpublished_is_401_and_cache_age_stops_at_expiry(
        clocked: tuple[TestClient, FakeClock], db: asyncpg.Pool) -> None:
    client, clock = clocked
    embargoed = await insert_asset(db, available_from=clock.now + timedelta(hours=1))
    assert (await _oembed(client, _url(client, f"/embed/{embargoed}"))).status == 401
    expiring = await insert_asset(db, available_until=clock.now + timedelta(minutes=10))
    body = await (await _oembed(client, _url(client, f"/embed/{expiring}"))).json()
    assert body["cache_age"] == 600
    clock.now += timedelta(minutes=11)
    assert (await _oembed(client, _url(client, f"/embed/{expiring}"))).status == 401


async def test_public_url_setting_decides_the_host(settings: Settings, db: asyncpg.Pool) -> None:
    app = create_app(settings.with_(public_url="https://video.example.org"), settings.database_url or "",
                     run_worker=False)
    async with TestClient(TestServer(app)) as client:
        asset_id = await insert_asset(db)
        body = await (await _oembed(client, f"https://video.example.org/watch/{asset_id}")).json()
        assert body["provider_url"] == "https://video.example.org/"
        assert f'src="https://video.example.org/embed/{asset_id}"' in body["html"]
        page = await (await client.get(f"/embed/{asset_id}")).text()
        assert "https://video.example.org/oembed?url=https%3A%2F%2Fvideo.example.org%2Fembed%2F" in page
