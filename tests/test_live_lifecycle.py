"""Live channel lifecycle with real publishers: a reconnect inside the window continues the event on the same
URLs (EXT-X-DISCONTINUITY in HLS, a new DASH Period), a second publisher is refused while the first is live, and
a rotated key is refused before any process starts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree

from onair.app import create_app
from tests.conftest import ADMIN
from tests.live_helpers import channel, create, ffmpeg_children, live_settings, publish, wait_status

SCHEMA = Path(__file__).resolve().parent / "schemas" / "DASH-MPD.xsd"
MPD_NS = "{urn:mpeg:dash:schema:mpd:2011}"


@pytest.fixture
async def live(settings) -> AsyncIterator[TestClient]:
    s = live_settings(settings, live_reconnect_seconds=10.0)  # room for a second ffmpeg to start
    async with TestClient(TestServer(create_app(s, s.database_url or ""))) as c:
        yield c


async def _until(client: TestClient, path: str, check, within: float = 20) -> bytes:
    async with asyncio.timeout(within):
        while True:
            resp = await client.get(path)
            data = await resp.read()
            if resp.status == 200 and check(data):
                return data
            await asyncio.sleep(0.3)


async def test_reconnect_inside_the_window_continues_on_the_same_urls(live: TestClient, db) -> None:
    body = await create(live, dvr_seconds=60)
    cid, url = body["id"], body["ingest"]["rtmp"]
    first = publish(url, 4)
    await wait_status(live, cid, "live")
    await asyncio.to_thread(first.wait, 30)
    dropped = await wait_status(live, cid, "reconnecting", within=15)
    assert dropped["status_reason"]
    second = publish(url, 4)
    try:
        back = await wait_status(live, cid, "live", within=20)
        assert back["event"] == body["event"] + 1 == dropped["event"]   # the same event, not a new one
        assert back["playback"] == body["playback"]
        media = (await _until(live, f"/live/{cid}/hls/v0.m3u8",
                              lambda d: d.count(b"#EXT-X-MAP") == 2)).decode()
        assert "#EXT-X-DISCONTINUITY\n" in media and "#EXT-X-ENDLIST" not in media
        assert 'init-1.mp4' in media and 'init-2.mp4' in media
        mpd = await _until(live, f"/live/{cid}/dash/manifest.mpd",
                           lambda d: len(etree.fromstring(d).findall(f"{MPD_NS}Period")) == 2)
        root = etree.fromstring(mpd)
        assert root.get("type") == "dynamic"
        assert [p.get("id") for p in root.findall(f"{MPD_NS}Period")] == ["p1", "p2"]
        etree.XMLSchema(etree.parse(str(SCHEMA))).assertValid(root)
    finally:
        await asyncio.to_thread(second.wait, 30)
    assert (await (await live.post(f"/api/v1/live/channels/{cid}/end", headers=ADMIN)).json())["status"] == "ended"
    assert await db.fetchval("SELECT count(*) FROM jobs WHERE kind = 'transcode.live'") == 2
    started = await db.fetch("SELECT payload->'data' AS d FROM jobs WHERE kind = 'events.published' "
                             "AND payload->>'type' = 'live.started' ORDER BY id")
    assert [r["d"]["resumed"] for r in started] == [False, True]   # the same event, resumed
    assert all(r["d"]["channel_id"] == cid and r["d"]["event"] == back["event"] for r in started)


async def test_a_second_publisher_is_refused_while_the_first_is_live(live: TestClient, db) -> None:
    body = await create(live)
    cid, url = body["id"], body["ingest"]["rtmp"]
    first = publish(url, 12)
    try:
        await wait_status(live, cid, "live")
        intruder = publish(url, 3)
        _, err = await asyncio.to_thread(intruder.communicate, timeout=30)
        assert intruder.returncode != 0, err
        now = await channel(live, cid)
        assert now["status"] == "live" and now["ingest_protocol"] == "rtmp" and now["event"] == body["event"] + 1
        assert await db.fetchval("SELECT count(*) FROM jobs WHERE kind = 'transcode.live'") == 1
    finally:
        first.kill()
        await asyncio.to_thread(first.wait, 30)


async def test_a_rotated_key_is_refused_and_leaves_no_process(live: TestClient, db) -> None:
    body = await create(live)
    baseline = ffmpeg_children()   # the SRT gatekeeper
    rotated = await (await live.post(f"/api/v1/live/channels/{body['id']}/rotate-key", headers=ADMIN)).json()
    assert rotated["stream_key"] != body["stream_key"]
    pub = publish(body["ingest"]["rtmp"], 3)
    _, err = await asyncio.to_thread(pub.communicate, timeout=30)
    assert pub.returncode != 0, err
    assert (await channel(live, body["id"]))["status"] == "idle"
    assert await db.fetchval("SELECT count(*) FROM jobs WHERE kind = 'transcode.live'") == 0
    assert ffmpeg_children() == baseline
