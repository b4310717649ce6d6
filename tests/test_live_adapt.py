"""An encoder that falls behind steps down instead of drifting: the top rung goes at the next input keyframe, the
channel says so (`degraded`, the ladder), and the dropped rung's playlist URL carries on with the next rung.

"Behind" is forced with the threshold (ONAIR_LIVE_MIN_SPEED far above what any encoder fed in real time can
reach) rather than by loading the machine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree

from onair.app import create_app
from tests.live_helpers import channel, create, live_settings, publish, wait_status
from transcode import live_adapt
from transcode.ladder import LadderConfig, plan
from transcode.probe import Facts

SCHEMA = Path(__file__).resolve().parent / "schemas" / "DASH-MPD.xsd"


@pytest.fixture
async def live(settings) -> AsyncIterator[TestClient]:
    s = live_settings(settings, live_min_speed=50.0, live_speed_window_seconds=2.0, live_latency="standard")
    async with TestClient(TestServer(create_app(s, s.database_url or ""))) as c:
        yield c


@pytest.mark.parametrize("protocol", ["rtmp", "srt"])   # restarts after FLV sequence headers / TS PAT+PMT
async def test_a_slow_encoder_drops_its_top_rung_and_says_so(live: TestClient, protocol: str) -> None:
    body = await create(live)
    cid = body["id"]
    # 640x360: rungs 360p and 270p
    pub = publish(body["ingest"][protocol], 40, fmt="flv" if protocol == "rtmp" else "mpegts")
    try:
        on = await wait_status(live, cid, "live")
        assert [r["name"] for r in on["ladder"]["rungs"]] == ["360p", "270p"], on["ladder"]
        async with asyncio.timeout(30):
            while not ((now := await channel(live, cid))["degraded"] or {}).get("applied"):
                await asyncio.sleep(0.3)
        # the first step; the next judgement (one rung, ultrafast already) may have found nothing left to drop
        assert "dropped the 360p rung" in now["degraded"]["steps"][0], now["degraded"]
        assert "realtime" in now["degraded"]["reason"] and now["degraded"]["speed"] < 50
        assert [r["name"] for r in now["ladder"]["rungs"]] == ["270p"] and now["ladder"]["dropped"] == ["360p"]
        # the 360p URL goes on, with the 270p picture after a discontinuity (new init segment)
        async with asyncio.timeout(30):
            while True:
                v0 = await (await live.get(f"/live/{cid}/hls/v0.m3u8")).text()
                after = v0.split("#EXT-X-DISCONTINUITY\n", 1)
                if len(after) == 2 and after[1].count("#EXTINF") >= 2:
                    break
                await asyncio.sleep(0.5)
        assert "init-2.mp4" in after[1], v0
        # DASH: a Period per run, the second one with v0 and v1 both carrying 270p; still a valid MPD
        mpd = etree.fromstring(await (await live.get(f"/live/{cid}/dash/manifest.mpd")).read())
        etree.XMLSchema(etree.parse(str(SCHEMA))).assertValid(mpd)
        periods = mpd.findall("{urn:mpeg:dash:schema:mpd:2011}Period")
        assert len(periods) == 2
        reps = periods[1].findall(".//{urn:mpeg:dash:schema:mpd:2011}Representation[@height]")
        assert {r.get("id"): r.get("height") for r in reps} == {"v0": "270", "v1": "270"}
        assert (await channel(live, cid))["status"] == "live"
    finally:
        pub.kill()
        await asyncio.to_thread(pub.wait, 30)
    ended = await wait_status(live, cid, "ended", within=30)
    assert ended["degraded"] is None   # said while on air only


def test_steps_go_rung_by_rung_then_preset_by_preset() -> None:
    facts = Facts(duration=3600.0, width=1920, height=1080, display_width=1920, display_height=1080, fps=30.0,
                  vfr=False, video_codec="h264", pix_fmt="yuv420p", rotation=0, sar="1:1", interlaced=False,
                  frames=0, audio_codec=None, audio_channels=0, audio_sample_rate=0, format="flv", size_bytes=0)
    p = plan(facts, LadderConfig(preset="veryfast"))
    names = []
    while (step := live_adapt.next_step(p)) is not None:
        names.append(step.dropped or step.plan.preset)
        p = step.plan
    assert names == ["1080p", "720p", "540p", "360p", "superfast", "ultrafast"]
    assert live_adapt.behind(0.8, 1.0, 0.9) and not live_adapt.behind(0.8, 0.85, 0.9)
