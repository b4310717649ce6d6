"""Live channels end to end: ffmpeg publishes a few seconds of testsrc2 over RTMP (and SRT); the channel goes live,
the origin serves HLS and a valid dynamic MPD, a wrong key is refused, a drop ends the channel after the window,
and a recorded event becomes a ready asset without a transcode job."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree

from onair.app import create_app
from tests.conftest import ADMIN
from tests.live_helpers import channel, create, ffmpeg_children, live_settings, publish, wait_status

SCHEMA = Path(__file__).resolve().parent / "schemas" / "DASH-MPD.xsd"


@pytest.fixture
async def live(settings) -> AsyncIterator[TestClient]:
    s = live_settings(settings)
    async with TestClient(TestServer(create_app(s, s.database_url or ""))) as c:
        yield c


async def test_rtmp_publish_goes_live_and_ends_into_a_ready_recording(live: TestClient, db):
    body = await create(live, record=True, dvr_seconds=60)
    assert body["status"] == "idle" and body["ingest"]["rtmp"].endswith(f"/live/{body['stream_key']}")
    assert body["playback"]["hls"].endswith(f"/live/{body['id']}/hls/master.m3u8")
    cid = body["id"]
    pub = publish(body["ingest"]["rtmp"], 6)
    try:
        live_body = await wait_status(live, cid, "live")
        assert live_body["input"]["width"] == 640 and live_body["input"]["video_codec"] == "h264"
        assert [r["name"] for r in live_body["ladder"]["rungs"]] == ["360p", "270p"]
        master = await live.get(f"/live/{cid}/hls/master.m3u8")
        assert master.status == 200 and "max-age=" in master.headers["Cache-Control"]
        media = await (await live.get(f"/live/{cid}/hls/v0.m3u8")).text()
        assert "#EXT-X-PROGRAM-DATE-TIME:" in media and "#EXT-X-ENDLIST" not in media
        seg = next(ln for ln in media.splitlines() if ln.endswith(".m4s"))
        resp = await live.get(seg)
        assert resp.status == 200 and "immutable" in resp.headers["Cache-Control"]
        mpd = await (await live.get(f"/live/{cid}/dash/manifest.mpd")).read()
        root = etree.fromstring(mpd)
        assert root.get("type") == "dynamic" and root.get("timeShiftBufferDepth") == "PT60.000S"
        etree.XMLSchema(etree.parse(str(SCHEMA))).assertValid(root)
        time_resp = await live.get("/api/v1/time")
        assert re.match(r"\d{4}-\d\d-\d\dT", await time_resp.text())
        # /metrics: the encoder's speed (media s per wall s, fed in real time: about 1) and the input bytes.
        async with asyncio.timeout(10):
            while not re.search(rf'onair_live_encoder_speed{{channel="{cid}"}} (?!0\.0\n)',
                                text := await (await live.get("/metrics")).text()):
                await asyncio.sleep(0.2)
        assert re.search(rf'onair_live_input_bytes_total{{channel="{cid}"}} [1-9]', text)
    finally:
        await asyncio.to_thread(pub.wait, 30)
    await wait_status(live, cid, "reconnecting", within=15)
    ended = await wait_status(live, cid, "ended", within=15)
    assert ended["recordings"], ended
    asset_id = ended["recordings"][0]["asset_id"]
    async with asyncio.timeout(10):
        while (a := await (await live.get(f"/api/v1/assets/{asset_id}", headers=ADMIN)).json())["status"] != "ready":
            await asyncio.sleep(0.2)
    vod = await (await live.get(f"/media/{asset_id}/hls/v0.m3u8")).text()
    assert "#EXT-X-ENDLIST" in vod and "#EXT-X-PLAYLIST-TYPE:VOD" in vod
    static = etree.fromstring(await (await live.get(f"/media/{asset_id}/dash/manifest.mpd")).read())
    assert static.get("type") == "static"
    etree.XMLSchema(etree.parse(str(SCHEMA))).assertValid(static)
    assert await db.fetchval("SELECT count(*) FROM jobs WHERE kind = 'transcode.asset'") == 0
    assert a["duration"] > 3
    poster = await live.get(f"/media/{asset_id}/images/poster.jpg")   # the last live poster, for feeds/oEmbed
    assert poster.status == 200 and (await poster.read())[:3] == b"\xff\xd8\xff"


async def test_wrong_key_is_refused_and_nothing_starts(live: TestClient, db):
    body = await create(live)
    url = body["ingest"]["rtmp"].replace(body["stream_key"], "live_wrong")
    pub = publish(url, 3)
    _, err = await asyncio.to_thread(pub.communicate, timeout=30)
    assert pub.returncode != 0, err
    assert (await channel(live, body["id"]))["status"] == "idle"
    assert await db.fetchval("SELECT count(*) FROM jobs WHERE kind = 'transcode.live'") == 0
    assert ffmpeg_children() <= 1  # only the SRT gatekeeper listens


async def test_srt_publish_goes_live(live: TestClient):
    body = await create(live, dvr_seconds=30)
    pub = publish(body["ingest"]["srt"], 5, fmt="mpegts")
    try:
        live_body = await wait_status(live, body["id"], "live")
        assert live_body["ingest_protocol"] == "srt"
        assert (await live.get(f"/live/{body['id']}/hls/a.m3u8")).status == 200
    finally:
        await asyncio.to_thread(pub.wait, 30)
