"""Partner keys (admin API and CLI), scopes, rate limits, usage, search, fetch and publish."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import asyncpg
import feedparser
from aiohttp.test_utils import TestClient

from onair.core import job_kinds
from onair.core.settings import Settings
from tests.conftest import ADMIN
from tests.test_feeds import BASE, T0, ManualClock, add_asset
from tests.test_feeds import app_client as app_client  # fixture
from tests.test_feeds import clock as clock  # fixture

ROOT = Path(__file__).resolve().parent.parent


async def make_partner(client: TestClient, name: str, scopes: list[str], **extra: object) -> str:
    resp = await client.post("/api/v1/partners", json={"name": name, "scopes": scopes, **extra}, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["key"].startswith("onp_") and body["scopes"] == scopes
    return body["key"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_bad_missing_and_revoked_keys_look_the_same(app_client: TestClient, db: asyncpg.Pool) -> None:
    key = await make_partner(app_client, "portal", ["feeds:read", "assets:read"])
    ok = await app_client.get("/api/v1/partner/assets", headers=bearer(key))
    assert ok.status == 200
    stored = await db.fetchval("SELECT key_hash FROM partners WHERE name = 'portal'")
    assert key.encode() not in bytes(stored)  # stored hashed, never in clear

    async def refused(headers: dict[str, str]) -> dict:
        resp = await app_client.get("/api/v1/partner/assets", headers=headers)
        assert resp.status == 401 and resp.content_type == "application/problem+json"
        body = await resp.json()
        body.pop("instance", None)
        return body

    missing = await refused({})
    wrong = await refused(bearer("onp_" + "x" * 43))
    assert (await app_client.delete("/api/v1/partners/portal")).status == 401  # admin only
    assert (await app_client.delete("/api/v1/partners/portal", headers=ADMIN)).status == 200
    revoked = await refused(bearer(key))
    assert missing == wrong == revoked
    listed = await (await app_client.get("/api/v1/partners", headers=ADMIN)).json()
    assert listed["partners"][0]["revoked_at"] and "key" not in listed["partners"][0]


async def test_scopes_are_enforced(app_client: TestClient, db: asyncpg.Pool) -> None:
    feeds_only = await make_partner(app_client, "aggregator", ["feeds:read"])
    resp = await app_client.get("/api/v1/partner/assets", headers=bearer(feeds_only))
    assert resp.status == 403 and (await resp.json())["type"].endswith("missing-scope")
    resp = await app_client.post("/api/v1/partner/assets", json={"source_url": "https://example.com/a.mp4"},
                                 headers=bearer(feeds_only))
    assert resp.status == 403
    assert (await app_client.get("/feeds/partners/aggregator/mrss.xml", headers=bearer(feeds_only))).status == 200
    reader = await make_partner(app_client, "reader", ["assets:read"])
    assert (await app_client.get("/feeds/partners/reader/mrss.xml", headers=bearer(reader))).status == 403
    # Someone else's partner feed with a valid key is refused too.
    assert (await app_client.get("/feeds/partners/reader/mrss.xml", headers=bearer(feeds_only))).status == 403
    bad = await app_client.post("/api/v1/partners", json={"name": "x", "scopes": ["root"]}, headers=ADMIN)
    assert bad.status == 400
    dup = await app_client.post("/api/v1/partners", json={"name": "reader"}, headers=ADMIN)
    assert dup.status == 409


async def test_rate_limit_429_with_retry_after_then_recovers(app_client: TestClient, clock: ManualClock,
                                                             db: asyncpg.Pool) -> None:
    clock.value = T0 + timedelta(seconds=15)
    key = await make_partner(app_client, "burst", ["assets:read"], rate_per_minute=3)
    for _ in range(3):
        assert (await app_client.get("/api/v1/partner/assets", headers=bearer(key))).status == 200
    resp = await app_client.get("/api/v1/partner/assets", headers=bearer(key))
    assert resp.status == 429 and resp.content_type == "application/problem+json"
    assert resp.headers["Retry-After"] == "45"
    clock.value = T0 + timedelta(minutes=1, seconds=1)  # next window
    assert (await app_client.get("/api/v1/partner/assets", headers=bearer(key))).status == 200
    usage = await (await app_client.get("/api/v1/partner/usage", headers=bearer(key))).json()
    assert usage["days"] == [{"day": "2026-06-01", "feed_pulls": 0, "api_calls": 5}]


async def test_usage_counts_feed_pulls_and_api_calls_per_day(app_client: TestClient, clock: ManualClock,
                                                            db: asyncpg.Pool) -> None:
    key = await make_partner(app_client, "daily", ["feeds:read", "assets:read"])
    for _ in range(2):
        assert (await app_client.get("/feeds/partners/daily/atom.xml", headers=bearer(key))).status == 200
    assert (await app_client.get("/api/v1/partner/assets", headers=bearer(key))).status == 200
    clock.value = T0 + timedelta(days=1)
    assert (await app_client.get("/feeds/partners/daily/feed.json", headers=bearer(key))).status == 200
    usage = await (await app_client.get("/api/v1/partner/usage", headers=bearer(key))).json()
    assert usage["days"] == [{"day": "2026-06-02", "feed_pulls": 1, "api_calls": 1},
                             {"day": "2026-06-01", "feed_pulls": 2, "api_calls": 1}]
    admin_view = await (await app_client.get("/api/v1/partners/daily/usage", headers=ADMIN)).json()
    assert admin_view["days"][1]["feed_pulls"] == 2


async def test_search_full_text_filters_and_hostile_queries(app_client: TestClient, db: asyncpg.Pool) -> None:
    await add_asset(db, "elect1", created=T0 - timedelta(hours=3), title="Election night live",
                    description="Results as they come in", tags=["politics"])
    await add_asset(db, "storm1", created=T0 - timedelta(hours=2), title="Storm warning",
                    description="Gales expected overnight; election rallies cancelled", tags=["weather"])
    await add_asset(db, "footy1", created=T0 - timedelta(hours=1), title="Cup final", tags=["sport", "football"])
    key = await make_partner(app_client, "search", ["assets:read"])

    async def ids(query: str) -> list[str]:
        resp = await app_client.get("/api/v1/partner/assets", params={"q": query}, headers=bearer(key))
        assert resp.status == 200, await resp.text()
        return [i["id"] for i in (await resp.json())["items"]]

    assert await ids("election") == ["storm1", "elect1"]   # title and description, newest first
    assert await ids("football") == ["footy1"]              # tags are searched
    assert await ids("election -storm") == ["elect1"]       # web-search syntax
    assert await ids("'; DROP TABLE assets; --") == []
    assert await ids('"unbalanced OR ( \\ %_') == []
    resp = await app_client.get("/api/v1/partner/assets", params={"q": "x" * 5_000}, headers=bearer(key))
    assert resp.status == 400 and resp.content_type == "application/problem+json"
    # 10 KB: longer than aiohttp's request-line limit (8190), refused by the HTTP parser before the app.
    resp = await app_client.get("/api/v1/partner/assets", params={"q": "x" * 10_000}, headers=bearer(key))
    assert resp.status == 400
    resp = await app_client.get("/api/v1/partner/assets", params={"q": "news\x00"}, headers=bearer(key))
    assert resp.status == 400 and resp.content_type == "application/problem+json"
    resp = await app_client.get("/api/v1/partner/assets", params={"tag": "weather"}, headers=bearer(key))
    items = (await resp.json())["items"]
    assert [i["id"] for i in items] == ["storm1"]
    assert items[0]["playback"]["hls"] == f"{BASE}/media/storm1/hls/master.m3u8"
    assert (await db.fetchval("SELECT count(*) FROM assets")) == 3

    one = await app_client.get("/api/v1/partner/assets/footy1", headers=bearer(key))
    assert one.status == 200 and (await one.json())["title"] == "Cup final"
    missing = await app_client.get("/api/v1/partner/assets/nosuch", headers=bearer(key))
    assert missing.status == 404 and missing.content_type == "application/problem+json"


async def test_allowed_tags_limit_what_a_key_sees(app_client: TestClient, db: asyncpg.Pool) -> None:
    await add_asset(db, "sport1", created=T0 - timedelta(hours=2), tags=["sport"])
    await add_asset(db, "news1", created=T0 - timedelta(hours=1), tags=["news"])
    key = await make_partner(app_client, "sportsite", ["feeds:read", "assets:read"], tags=["sport"])
    body = await (await app_client.get("/feeds/partners/sportsite/mrss.xml", headers=bearer(key))).read()
    assert [e.title for e in feedparser.parse(body).entries] == ["Clip sport1"]
    items = (await (await app_client.get("/api/v1/partner/assets", headers=bearer(key))).json())["items"]
    assert [i["id"] for i in items] == ["sport1"]
    assert (await app_client.get("/api/v1/partner/assets/news1", headers=bearer(key))).status == 404
    resp = await app_client.get("/feeds/partners/sportsite/mrss.xml", headers=bearer(key))
    assert resp.headers["Cache-Control"].startswith("private")


async def test_publish_by_url_creates_asset_and_ingest_job(app_client: TestClient, db: asyncpg.Pool) -> None:
    writer = await make_partner(app_client, "newsroom", ["assets:read", "assets:write"])
    body = {"source_url": "https://media.example.net/clip.mp4", "title": "Flood footage", "tags": ["news"],
            "available_from": "2026-06-02T06:00:00Z", "geo_deny": ["us"], "credit": "Newsroom"}
    resp = await app_client.post("/api/v1/partner/assets", json=body, headers=bearer(writer))
    assert resp.status == 202, await resp.text()
    created = await resp.json()
    assert created["status"] == "queued"
    row = await db.fetchrow("SELECT a.*, j.kind, j.payload FROM assets a JOIN jobs j ON j.id = a.job_id "
                            "WHERE a.id = $1", created["id"])
    assert row["title"] == "Flood footage" and row["source_url"] == body["source_url"]
    assert row["geo_deny"] == ["US"] and row["partner_id"] is not None
    assert row["kind"] == job_kinds.INGEST_FETCH  # the same URL pull the assets API uses
    # `by` counts the key's pulls in flight (ONAIR_URL_PULL_PER_CALLER)
    assert row["payload"] == {"asset_id": created["id"], "url": body["source_url"],
                              "by": f"partner:{row['partner_id']}"}

    for bad in ({"source_url": "ftp://x/y"}, {"source_url": "http://127.0.0.1/x.mp4"},
                {"source_url": "https://e.com/x", "geo_allow": ["GBR"]},
                {"source_url": "https://e.com/x", "available_from": "2026-06-02T06:00:00"},
                {"source_url": "https://e.com/x", "available_from": "2026-06-02T06:00:00Z",
                 "available_until": "2026-06-01T06:00:00Z"}):
        resp = await app_client.post("/api/v1/partner/assets", json=bad, headers=bearer(writer))
        assert resp.status == 400, (bad, await resp.text())
        assert resp.content_type == "application/problem+json"
    resp = await app_client.post("/api/v1/partner/assets", data=b"{not json", headers=bearer(writer))
    assert resp.status in (400, 415)


def test_cli_partner_add_list_revoke(settings: Settings) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ONAIR_DATABASE_URL": settings.database_url or "",
           "ONAIR_DATA_DIR": str(settings.data_dir), "ONAIR_LOG_FORMAT": "text"}

    def onair(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "onair.cli", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=60)

    added = onair("partner", "add", "msn", "--scopes", "feeds:read,assets:read", "--tags", "news,sport")
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert key.startswith("onp_") and "shown once" in added.stderr
    listed = onair("partner", "list")
    assert "msn" in listed.stdout and "feeds:read,assets:read" in listed.stdout and "tags=news,sport" in listed.stdout
    assert key not in listed.stdout
    assert onair("partner", "add", "bad", "--scopes", "admin").returncode == 2
    assert onair("partner", "revoke", "msn").returncode == 0
    assert "revoked" in onair("partner", "list").stdout
    assert onair("partner", "revoke", "nobody").returncode == 1


async def test_allowed_shows_limit_reads_and_publishes(app_client: TestClient, db: asyncpg.Pool) -> None:
    await add_asset(db, "am1", created=T0 - timedelta(hours=2), show="morning")
    await add_asset(db, "pm1", created=T0 - timedelta(hours=1), show="evening")
    key = await make_partner(app_client, "breakfast", ["feeds:read", "assets:read", "assets:write"],
                             shows=["morning"])
    body = await (await app_client.get("/feeds/partners/breakfast/feed.json", headers=bearer(key))).json()
    assert [i["_onair"]["asset_id"] for i in body["items"]] == ["am1"]
    resp = await app_client.post("/api/v1/partner/assets", headers=bearer(key),
                                 json={"source_url": "https://e.com/x.mp4", "show": "evening"})
    assert resp.status == 403 and resp.content_type == "application/problem+json"
    resp = await app_client.post("/api/v1/partner/assets", headers=bearer(key),
                                 json={"source_url": "https://e.com/x.mp4", "show": "morning"})
    assert resp.status == 202


async def test_tag_limited_key_publishes_only_inside_its_tags_and_uploads_start_unlisted(
        app_client: TestClient, db: asyncpg.Pool) -> None:
    key = await make_partner(app_client, "sportdesk", ["assets:read", "assets:write"], tags=["sport"])
    for tags in (["news"], ["sport", "news"], []):
        resp = await app_client.post("/api/v1/partner/assets", headers=bearer(key),
                                     json={"source_url": "https://e.com/x.mp4", "tags": tags})
        problem = await resp.json()
        assert resp.status == 403 and problem["type"].endswith("/tag-not-allowed"), (tags, problem)
        assert problem["field"] == "tags"
    resp = await app_client.post("/api/v1/partner/assets", headers=bearer(key),
                                 json={"source_url": "https://e.com/x.mp4", "tags": ["sport"], "title": "Goal"})
    assert resp.status == 202
    created = await resp.json()
    # unlisted until an editor approves: playable by link, not in public feeds
    assert await db.fetchval("SELECT visibility FROM assets WHERE id = $1", created["id"]) == "unlisted"
