"""Counting endpoints count viewers, not POSTs: 100 anonymous requests are not 100 completions or clicks."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.settings import Settings
from tests.conftest import ADMIN
from tests.helpers import make_asset


async def test_invented_player_sessions_are_capped_per_ip(settings: Settings, db) -> None:
    capped = settings.with_(count_sessions_per_ip=10)
    asset_id = await make_asset(db, duration=30.0)
    async with TestClient(TestServer(create_app(capped, capped.database_url or "", run_worker=False))) as c:
        statuses = []
        for i in range(100):
            ev = {"asset_id": asset_id, "session": f"fake-session-{i:04d}", "event": "ended", "watched": 30}
            statuses.append((await c.post("/api/v1/player/events", json=ev)).status)
        assert statuses.count(204) == 10 and statuses.count(429) == 90
        # a session that was let in keeps reporting (one session, many events)
        for event in ("play", "q25", "q50", "ended"):
            ev = {"asset_id": asset_id, "session": "fake-session-0000", "event": event, "watched": 30}
            assert (await c.post("/api/v1/player/events", json=ev)).status == 204
        stats = await (await c.get(f"/api/v1/assets/{asset_id}/stats", headers=ADMIN)).json()
    completions = stats.get("completions", stats.get("totals", {}).get("completions"))
    assert completions == 10, stats


async def test_repeated_banner_clicks_count_once_per_tv(client: TestClient) -> None:
    resp = await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json={"slug": "ads", "name": "Ads", "org_id": 1,
                                                                        "app_id": 9})
    assert resp.status == 201, await resp.text()
    resp = await client.post("/api/v1/hbbtv/apps/ads/banners", headers=ADMIN, json={
        "image_url": "/hbbtv/static/ad.png", "target_url": "https://shop.example/offer", "label": "Win",
        "duration_s": 30})
    assert resp.status == 201, await resp.text()
    banner = await resp.json()
    for _ in range(100):
        assert (await client.post(f"/hbbtv/ads/banners/{banner['id']}/clicks")).status == 204
    counted = await (await client.get(f"/api/v1/hbbtv/apps/ads/banners/{banner['id']}", headers=ADMIN)).json()
    assert counted["clicks"] == 1
