"""Feeds as real clients read them: feedparser for all three formats, MRSS element list, paging, 304, gzip."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import feedparser
import pytest
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree

from onair.app import create_app
from onair.core.clock import CLOCK
from onair.core.settings import Settings
from tests.helpers import make_asset

BASE = "https://tv.example.org"
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MRSS = "{http://search.yahoo.com/mrss/}"
ATOM = "{http://www.w3.org/2005/Atom}"
DCTERMS = "{http://purl.org/dc/terms/}"

OUTPUTS = {
    "hls": "hls/master.m3u8", "dash": "dash/manifest.mpd",
    "video": [{"name": "360p", "width": 640, "height": 360, "bitrate": 800000, "codecs": "avc1.4d401e",
               "frame_rate": 25.0},
              {"name": "720p", "width": 1280, "height": 720, "bitrate": 2400000, "codecs": "avc1.64001f",
               "frame_rate": 25.0}],
    "audio": {"codecs": "mp4a.40.2", "bitrate": 128000, "channels": 2, "sample_rate": 48000},
    "poster": "images/poster.jpg",
    "poster_size": {"width": 1024, "height": 576},   # the file's own size, not the top rung's
    "thumbnails": [{"width": 320, "height": 180, "key": "images/thumb-320.jpg"}],
    "captions": [{"language": "de", "kind": "subtitle", "vtt": "captions/de-subtitle-0123456789/captions.vtt"},
                 {"language": "en", "kind": "caption", "vtt": "captions/en-caption-abcdef0123/captions.vtt"}],
}


@dataclass
class ManualClock:
    value: datetime = T0

    def __call__(self) -> datetime:
        return self.value


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def app_client(settings: Settings, clock: ManualClock) -> AsyncIterator[TestClient]:
    """The real app with a clock the test moves, and a public URL so absolute links are checkable."""
    settings = settings.with_(public_url=BASE)
    app = create_app(settings, settings.database_url or "", run_worker=False)
    app[CLOCK] = clock
    async with TestClient(TestServer(app)) as c:
        yield c


async def add_asset(db: asyncpg.Pool, asset_id: str, *, created: datetime, status: str = "ready",
                    **fields: Any) -> None:
    """A ready asset the way the transcoder leaves it, created (and last changed) at `created`."""
    fields = {"title": f"Clip {asset_id}", "description": f"About {asset_id}", **fields}
    await make_asset(db, asset_id, status=status, outputs=OUTPUTS, duration=42.4, created=created, **fields)


async def get(client: TestClient, path: str, **headers: str) -> tuple[int, bytes, Any]:
    resp = await client.get(path, headers=headers)
    return resp.status, await resp.read(), resp


async def test_mrss_has_every_media_field_feedparser_reads(app_client: TestClient, db: asyncpg.Pool) -> None:
    await add_asset(db, "alpha", created=T0 - timedelta(hours=2), title="Budget <speech> & reply",
                    description="Full speech. " * 300, tags=["politics", "uk"], show="news-at-ten",
                    geo_allow=["GB", "IE"], credit="Jane Reporter", copyright="(c) 2026 Example TV",
                    rating="nonadult", available_from=T0 - timedelta(hours=1),
                    available_until=T0 + timedelta(days=7))
    status, body, resp = await get(app_client, "/feeds/mrss.xml")
    assert status == 200 and resp.content_type == "application/rss+xml"
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    (entry,) = parsed.entries
    assert entry.title == "Budget <speech> & reply"
    assert entry.id.startswith("tag:tv.example.org,") and entry.id.endswith(":asset/alpha")
    assert entry.guidislink is False
    assert entry.link == f"{BASE}/embed/alpha"
    hls = [c for c in entry.media_content if c["type"] == "application/vnd.apple.mpegurl"]
    assert hls[0]["url"] == f"{BASE}/media/alpha/hls/master.m3u8"
    assert hls[0]["medium"] == "video" and hls[0]["duration"] == "42"
    assert (hls[0]["width"], hls[0]["height"], hls[0]["bitrate"]) == ("1280", "720", "2400")
    assert any(c["url"] == f"{BASE}/media/alpha/dash/manifest.mpd" for c in entry.media_content)
    assert entry.media_thumbnail[0]["url"] == f"{BASE}/media/alpha/images/poster.jpg"
    assert (entry.media_thumbnail[0]["width"], entry.media_thumbnail[0]["height"]) == ("1024", "576")
    assert {t["url"] for t in entry.media_thumbnail} >= {f"{BASE}/media/alpha/images/thumb-320.jpg"}
    assert entry.media_player["url"] == f"{BASE}/embed/alpha"
    assert entry.media_keywords == "politics, uk"
    assert entry.media_credit[0]["content"] == "Jane Reporter"
    assert entry.media_copyright == "(c) 2026 Example TV"
    assert entry.media_rating["content"] == "nonadult"
    assert entry.media_restriction["relationship"] == "allow"
    assert entry.media_restriction["content"] == ["gb", "ie"]

    # Elements feedparser does not expose: check the XML against the MRSS element list directly.
    item = etree.fromstring(body).find("channel/item")
    assert len(item.find(f"{MRSS}title").text) <= 100
    assert len(item.find(f"{MRSS}description").text) <= 2048
    assert item.find(f"{MRSS}group/{MRSS}content").get("type") == "application/vnd.apple.mpegurl"
    valid = item.find(f"{DCTERMS}valid").text
    assert valid == "start=2026-06-01T11:00:00Z; end=2026-06-08T12:00:00Z; scheme=W3C-DTF"
    assert item.find("pubDate").text == "Mon, 01 Jun 2026 11:00:00 GMT"  # the embargo end is its date
    restriction = item.find(f"{MRSS}restriction")
    assert restriction.get("type") == "country"
    assert [(s.get("lang"), s.get("type"), s.get("href")) for s in item.iterfind(f"{MRSS}subTitle")] == [
        ("de", "text/vtt", f"{BASE}/media/alpha/captions/de-subtitle-0123456789/captions.vtt"),
        ("en", "text/vtt", f"{BASE}/media/alpha/captions/en-caption-abcdef0123/captions.vtt")]


async def test_atom_and_json_feed_carry_the_same_items(app_client: TestClient, db: asyncpg.Pool) -> None:
    await add_asset(db, "one", created=T0 - timedelta(hours=3), tags=["sport"], credit="Desk")
    await add_asset(db, "two", created=T0 - timedelta(hours=2))
    status, body, resp = await get(app_client, "/feeds/atom.xml")
    assert status == 200 and resp.content_type == "application/atom+xml"
    parsed = feedparser.parse(body)
    assert not parsed.bozo and parsed.version == "atom10"
    root = etree.fromstring(body)
    for required in ("id", "title", "updated"):
        assert root.find(f"{ATOM}{required}") is not None
    assert root.find(f"{ATOM}author/{ATOM}name") is not None
    for entry in root.findall(f"{ATOM}entry"):
        for required in ("id", "title", "updated"):
            assert entry.find(f"{ATOM}{required}").text
    assert [e.id.rsplit("/", 1)[1] for e in parsed.entries] == ["two", "one"]
    assert parsed.entries[1].media_content[0]["url"] == f"{BASE}/media/one/hls/master.m3u8"
    assert parsed.entries[1].enclosures[0]["type"] == "application/vnd.apple.mpegurl"

    status, body, resp = await get(app_client, "/feeds/feed.json")
    assert status == 200 and resp.content_type == "application/feed+json"
    doc = json.loads(body)
    assert doc["version"] == "https://jsonfeed.org/version/1.1" and doc["title"]
    assert doc["feed_url"] == f"{BASE}/feeds/feed.json"
    for item in doc["items"]:
        assert isinstance(item["id"], str) and (item.get("content_text") or item.get("content_html"))
        assert item["attachments"][0]["mime_type"] == "application/vnd.apple.mpegurl"
    assert doc["items"][1]["image"] == f"{BASE}/media/one/images/poster.jpg"
    assert doc["items"][1]["authors"] == [{"name": "Desk"}]
    assert [i["title"] for i in doc["items"]] == ["Clip two", "Clip one"]  # feedparser 6.0 lacks JSON Feed


async def test_only_ready_public_assets_and_tag_filter(app_client: TestClient, db: asyncpg.Pool) -> None:
    await add_asset(db, "ready1", created=T0 - timedelta(hours=4), tags=["weather"])
    await add_asset(db, "queued1", created=T0 - timedelta(hours=3), status="transcoding")
    await add_asset(db, "private1", created=T0 - timedelta(hours=2), visibility="private")
    await add_asset(db, "unlist1", created=T0 - timedelta(hours=1), visibility="unlisted")
    await add_asset(db, "ready2", created=T0 - timedelta(minutes=30), tags=["news"])
    ids = [e.id.rsplit("/", 1)[1] for e in feedparser.parse((await get(app_client, "/feeds/mrss.xml"))[1]).entries]
    assert ids == ["ready2", "ready1"]
    status, body, _ = await get(app_client, "/feeds/mrss.xml?tag=weather")
    assert status == 200
    assert [e.title for e in feedparser.parse(body).entries] == ["Clip ready1"]
    await add_asset(db, "show1", created=T0 - timedelta(minutes=10), show="morning")
    status, body, _ = await get(app_client, "/feeds/atom.xml?show=morning")
    assert status == 200 and [e.title for e in feedparser.parse(body).entries] == ["Clip show1"]
    status, body, _ = await get(app_client, "/feeds/feed.json?tag=no-such-tag")
    assert status == 200 and json.loads(body)["items"] == []
    status, body, _ = await get(app_client, "/feeds/atom.xml?tag=%27%3B%20DROP%20TABLE%20assets%3B--")
    assert status == 200 and feedparser.parse(body).entries == []


async def test_paging_with_next_links_and_tampered_cursor(app_client: TestClient, db: asyncpg.Pool) -> None:
    for i in range(7):
        await add_asset(db, f"p{i}", created=T0 - timedelta(minutes=60 - i))
    seen: list[str] = []
    url: str | None = "/feeds/mrss.xml?limit=3"
    pages = 0
    while url:
        status, body, _ = await get(app_client, url)
        assert status == 200
        parsed = feedparser.parse(body)
        pages += 1
        assert len(parsed.entries) <= 3
        seen += [e.title for e in parsed.entries]
        links = {link.get("rel"): link.get("href") for link in
                 etree.fromstring(body).findall(f"channel/{ATOM}link")}
        assert links["first"] == f"{BASE}/feeds/mrss.xml?limit=3"
        url = links.get("next", "").removeprefix(BASE) or None
    assert pages == 3 and seen == [f"Clip p{i}" for i in range(6, -1, -1)]

    # Same paging in JSON Feed via next_url; a cursor edited by one character is refused.
    doc = json.loads((await get(app_client, "/feeds/feed.json?limit=3"))[1])
    nxt = doc["next_url"].removeprefix(BASE)
    assert (await get(app_client, nxt))[0] == 200
    cursor = nxt.split("cursor=")[1].split("&")[0]
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    status, body, resp = await get(app_client, nxt.replace(cursor, tampered))
    assert status == 400 and resp.content_type == "application/problem+json"
    assert (await get(app_client, "/feeds/feed.json?cursor=garbage"))[0] == 400
    assert (await get(app_client, "/feeds/feed.json?limit=101"))[0] == 400
    # A cursor from one listing is not valid for another (tag filter changes the scope).
    assert (await get(app_client, f"/feeds/feed.json?limit=3&tag=x&cursor={cursor}"))[0] == 400


async def test_etag_304_and_gzip(app_client: TestClient, db: asyncpg.Pool) -> None:
    await add_asset(db, "e1", created=T0 - timedelta(hours=1))
    resp = await app_client.get("/feeds/mrss.xml", headers={"Accept-Encoding": "identity"})
    plain = await resp.read()
    etag = resp.headers["ETag"]
    assert resp.headers.get("Content-Encoding") is None
    again = await app_client.get("/feeds/mrss.xml", headers={"If-None-Match": etag, "Accept-Encoding": "identity"})
    assert again.status == 304 and again.headers["ETag"] == etag and await again.read() == b""

    # gzip when asked; raw bytes on the wire decompress to the same document.
    raw = await app_client.get("/feeds/mrss.xml", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert raw.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in raw.headers["Vary"]
    assert gzip.decompress(await raw.read()) == plain
    refused = await app_client.get("/feeds/mrss.xml", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert refused.headers.get("Content-Encoding") is None and await refused.read() == plain
    gz_etag = raw.headers["ETag"]
    assert (await app_client.get("/feeds/mrss.xml", headers={"If-None-Match": gz_etag})).status == 304

    # A change to an item changes the ETag, even from a writer that does not touch updated_at.
    await db.execute("UPDATE assets SET title = 'Renamed' WHERE id = 'e1'")
    changed = await app_client.get("/feeds/mrss.xml", headers={"If-None-Match": etag})
    assert changed.status == 200 and "Renamed" in await changed.text()
