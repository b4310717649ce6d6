"""Rights windows with a controllable clock: items appear exactly when the embargo lifts and vanish at expiry,
in every feed and in the partner API; geography travels as media:restriction."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg
import feedparser
from aiohttp.test_utils import TestClient

from streaming.catalog.rights import Availability, Rights, availability, in_window
from tests.test_feeds import T0, ManualClock, add_asset
from tests.test_feeds import app_client as app_client  # fixture
from tests.test_feeds import clock as clock  # fixture
from tests.test_partner_api import bearer, make_partner

OPEN = T0 + timedelta(hours=1)
CLOSE = T0 + timedelta(hours=5)


def test_pure_decision_edges() -> None:
    r = Rights(available_from=OPEN, available_until=CLOSE, geo_allow=("GB",))
    assert availability(r, OPEN - timedelta(microseconds=1), "GB") is Availability.EMBARGOED
    assert availability(r, OPEN, "GB") is Availability.AVAILABLE
    assert availability(r, OPEN, "us") is Availability.GEO_BLOCKED
    assert availability(r, OPEN, None) is Availability.GEO_UNKNOWN   # unknown country fails an allow list
    assert availability(r, CLOSE, "GB") is Availability.EXPIRED
    deny = Rights(geo_deny=("US",))
    assert availability(deny, T0, None) is Availability.GEO_UNKNOWN  # ... and a deny list
    assert availability(deny, T0, "GB") is Availability.AVAILABLE
    assert availability(deny, T0, "us") is Availability.GEO_BLOCKED
    assert in_window(Rights(available_from=OPEN, geo_allow=("FR",)), OPEN)  # feeds ignore the reader's country
    assert not in_window(Rights(available_until=datetime(2000, 1, 1, tzinfo=UTC)), T0)


async def visible(client: TestClient, key: str) -> dict[str, list[str]]:
    """What each surface lists right now, by asset id."""
    mrss = feedparser.parse(await (await client.get("/feeds/mrss.xml")).read())
    atom = feedparser.parse(await (await client.get("/feeds/atom.xml")).read())
    jf = json.loads(await (await client.get("/feeds/feed.json")).read())
    partner = feedparser.parse(await (await client.get("/feeds/partners/wire/mrss.xml",
                                                       headers=bearer(key))).read())
    api = await (await client.get("/api/v1/partner/assets", headers=bearer(key))).json()
    fetch = await client.get("/api/v1/partner/assets/windowed", headers=bearer(key))
    return {"mrss": [e.id.rsplit("/", 1)[1] for e in mrss.entries],
            "atom": [e.id.rsplit("/", 1)[1] for e in atom.entries],
            "json": [i["_onair"]["asset_id"] for i in jf["items"]],
            "partner": [e.id.rsplit("/", 1)[1] for e in partner.entries],
            "api": [i["id"] for i in api["items"]],
            "fetch": ["windowed"] if fetch.status == 200 else []}


async def test_item_appears_exactly_at_embargo_and_leaves_at_expiry(app_client: TestClient, clock: ManualClock,
                                                                    db: asyncpg.Pool) -> None:
    key = await make_partner(app_client, "wire", ["feeds:read", "assets:read"])
    await add_asset(db, "always", created=T0 - timedelta(days=1))
    await add_asset(db, "windowed", created=T0 - timedelta(hours=2), available_from=OPEN, available_until=CLOSE)
    nothing = {k: [] for k in ("mrss", "atom", "json", "partner", "api", "fetch")}
    only_always = {k: ([] if k == "fetch" else ["always"]) for k in nothing}
    both = {k: (["windowed"] if k == "fetch" else ["windowed", "always"]) for k in nothing}

    clock.value = OPEN - timedelta(seconds=1)
    assert await visible(app_client, key) == only_always
    clock.value = OPEN
    assert await visible(app_client, key) == both
    clock.value = CLOSE - timedelta(seconds=1)
    assert await visible(app_client, key) == both
    # Shared caches are told to drop the page by the time its first item expires.
    assert (await app_client.get("/feeds/mrss.xml")).headers["Cache-Control"] == "public, max-age=1"
    clock.value = CLOSE
    assert await visible(app_client, key) == only_always


async def test_feed_etag_changes_when_window_opens(app_client: TestClient, clock: ManualClock,
                                                   db: asyncpg.Pool) -> None:
    await add_asset(db, "later", created=T0 - timedelta(hours=2), available_from=OPEN)
    clock.value = T0
    first = await app_client.get("/feeds/mrss.xml")
    etag = first.headers["ETag"]
    assert (await app_client.get("/feeds/mrss.xml", headers={"If-None-Match": etag})).status == 304
    clock.value = OPEN
    # A cached copy must not hide the newly available item.
    resp = await app_client.get("/feeds/mrss.xml", headers={"If-None-Match": etag})
    assert resp.status == 200 and "later" in await resp.text()


async def test_geo_rights_are_published_not_filtered(app_client: TestClient, db: asyncpg.Pool) -> None:
    await add_asset(db, "geo", created=T0 - timedelta(hours=1), geo_allow=["GB", "IE"], geo_deny=[])
    await add_asset(db, "nous", created=T0 - timedelta(hours=2), geo_deny=["US"])
    parsed = feedparser.parse(await (await app_client.get("/feeds/mrss.xml",
                                                          headers={"CF-IPCountry": "US"})).read())
    by_id = {e.id.rsplit("/", 1)[1]: e for e in parsed.entries}
    assert set(by_id) == {"geo", "nous"}
    assert by_id["geo"].media_restriction["relationship"] == "allow"
    assert by_id["nous"].media_restriction["relationship"] == "deny"
    assert by_id["nous"].media_restriction["content"] == ["us"]
    jf = json.loads(await (await app_client.get("/feeds/feed.json")).read())
    assert {i["_onair"]["asset_id"]: i["_onair"]["geo_allow"] for i in jf["items"]} == {"geo": ["GB", "IE"],
                                                                                        "nous": []}
