"""Channel rights like an asset's: visibility, embargo/expiry window and geo allow/deny, enforced at the live
origin (the viewer's country from a trusted proxy's header) and in the live embed page, and inherited by the
recording of an event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.storage import STORE
from tests.conftest import ADMIN
from tests.live_helpers import create, live_settings, publish, wait_status

GB, FR = {"CF-IPCountry": "GB"}, {"CF-IPCountry": "FR"}


@pytest.fixture
async def live(settings) -> AsyncIterator[TestClient]:
    s = live_settings(settings, trusted_proxies="127.0.0.1/32")
    async with TestClient(TestServer(create_app(s, s.database_url or ""))) as c:
        yield c


async def _code(resp) -> tuple[int, str | None]:
    body = await resp.json() if resp.content_type == "application/problem+json" else {}
    return resp.status, body.get("type", "").removeprefix("/problems/") or None


async def test_geo_rights_at_the_origin_and_embed_and_the_recording_inherits(live: TestClient) -> None:
    body = await create(live, record=True, dvr_seconds=30, visibility="unlisted", geo_allow=["gb", "IE"])
    cid = body["id"]
    assert body["rights"]["geo_allow"] == ["GB", "IE"]
    pub = publish(body["ingest"]["rtmp"], 10)
    try:
        await wait_status(live, cid, "live")
        master = f"/live/{cid}/hls/master.m3u8"
        ok = await live.get(master, headers=GB)
        assert ok.status == 200 and "CF-IPCountry" in ok.headers["Vary"]
        assert await _code(await live.get(master, headers=FR)) == (403, "geo-blocked")
        # no country a trusted proxy vouches for: refused as unknown (a spoofable guess never opens a territory)
        assert await _code(await live.get(master)) == (403, "geo-unknown")
        assert (await live.get(f"/embed/live/{cid}", headers=GB)).status == 200
        blocked = await live.get(f"/embed/live/{cid}", headers=FR)
        assert blocked.status == 403 and "not available in your country" in await blocked.text()
    finally:
        await asyncio.to_thread(pub.wait, 30)
    ended = await wait_status(live, cid, "ended", within=20)
    asset = await (await live.get(f"/api/v1/assets/{ended['recordings'][0]['asset_id']}", headers=ADMIN)).json()
    assert asset["visibility"] == "unlisted" and asset["rights"]["geo_allow"] == ["GB", "IE"]


async def test_embargo_expiry_and_cache_capped_at_the_window(live: TestClient) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    body = await create(live, available_from=soon.isoformat())
    cid = body["id"]
    assert await _code(await live.get(f"/live/{cid}/hls/master.m3u8")) == (403, "embargoed")
    assert (await live.get(f"/embed/live/{cid}")).status == 403
    # the window opens: the channel is off air (no playlist yet), and its page says so
    past = datetime.now(UTC) - timedelta(minutes=1)
    resp = await live.patch(f"/api/v1/live/channels/{cid}", json={"available_from": past.isoformat()}, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    assert await _code(await live.get(f"/live/{cid}/hls/master.m3u8")) == (404, "object-not-found")
    assert "not live yet" in await (await live.get(f"/embed/live/{cid}")).text()
    # a segment served shortly before the window closes is cached no longer than the window lasts
    await live.app[STORE].put_bytes(f"live/{cid}/e1/cmaf/v0/seg-1.m4s", b"\0" * 16)
    closing = datetime.now(UTC) + timedelta(seconds=30)
    resp = await live.patch(f"/api/v1/live/channels/{cid}", json={"available_until": closing.isoformat()},
                            headers=ADMIN)
    assert resp.status == 200
    seg = await live.get(f"/live/{cid}/e1/cmaf/v0/seg-1.m4s")
    assert seg.status == 200 and 25 <= int(seg.headers["Cache-Control"].split("max-age=")[1]) <= 30
    ended = await live.patch(f"/api/v1/live/channels/{cid}",
                             json={"available_until": past.isoformat()}, headers=ADMIN)
    assert ended.status == 400 and "available_until" in (await ended.json())["detail"]
    gone = datetime.now(UTC) - timedelta(seconds=1)
    await live.patch(f"/api/v1/live/channels/{cid}", json={"available_from": None,
                                                           "available_until": gone.isoformat()}, headers=ADMIN)
    assert await _code(await live.get(f"/live/{cid}/hls/master.m3u8")) == (403, "rights-expired")
    assert (await live.get(f"/embed/live/{cid}")).status == 404


async def test_bad_rights_are_refused_naming_the_field(live: TestClient) -> None:
    resp = await live.post("/api/v1/live/channels", json={"title": "x", "geo_deny": ["GBR"]}, headers=ADMIN)
    assert resp.status == 400 and "geo_deny" in await resp.text()
    now = datetime.now(UTC)
    resp = await live.post("/api/v1/live/channels", json={
        "title": "x", "available_from": now.isoformat(), "available_until": (now - timedelta(1)).isoformat()},
        headers=ADMIN)
    assert resp.status == 400 and "available_until" in await resp.text()
