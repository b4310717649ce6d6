"""Live storage: an unrecorded event keeps only the DVR window (plus a margin) in the store, a new event drops the
previous one's segments, and the channel's poster is refreshed from the stream while it is live."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.storage import STORE
from tests.live_helpers import create, live_settings, publish, wait_status
from transcode.live_storage import expired_segments


def test_expired_segments_follow_wall_clock_and_skip_what_was_pruned() -> None:
    state = {"tracks": {"v0": {"timescale": 1000, "segments": [[1, 1, 0, 2000, 100.0], [2, 1, 2000, 2000, 102.0],
                                                               [3, 1, 4000, 2000, 104.0]]},
                        "a": {"timescale": 48000, "segments": [[1, 1, 0, 96000, 100.0]]}},
             "pruned": {"v0": 1}}
    assert expired_segments(state, now=115.0, keep_seconds=10) == [("v0", 2), ("a", 1)]
    assert expired_segments(state, now=111.0, keep_seconds=10) == []


@pytest.fixture
async def live(settings) -> AsyncIterator[TestClient]:
    s = live_settings(settings, live_poster_seconds=2.0)
    async with TestClient(TestServer(create_app(s, s.database_url or ""))) as c:
        yield c


async def _status(client: TestClient, path: str) -> int:
    return (await client.get(path)).status


async def test_dvr_tail_is_deleted_and_the_poster_refreshes(live: TestClient) -> None:
    body = await create(live, dvr_seconds=10)
    cid = body["id"]
    assert body["playback"]["poster"].endswith(f"/live/{cid}/images/poster.jpg")
    pub = publish(body["ingest"]["rtmp"], 24)
    poster_path, first_seg = f"/live/{cid}/images/poster.jpg", f"/live/{cid}/e1/cmaf/v0/000001.m4s"
    try:
        await wait_status(live, cid, "live")
        async with asyncio.timeout(20):
            while (resp := await live.get(poster_path)).status != 200:
                await asyncio.sleep(0.3)
        first = await resp.read()
        assert first[:3] == b"\xff\xd8\xff" and resp.headers["Content-Type"] == "image/jpeg"
        assert resp.headers["Cache-Control"] == "public, max-age=1"
        async with asyncio.timeout(20):   # a newer frame replaces it
            while await (await live.get(poster_path)).read() == first:
                await asyncio.sleep(0.5)
        assert await _status(live, first_seg) == 200
        async with asyncio.timeout(30):   # 10 s window + 3 s margin after the first segment ended
            while await _status(live, first_seg) != 404:
                await asyncio.sleep(0.5)
        media = await (await live.get(f"/live/{cid}/hls/v0.m3u8")).text()
        listed = [ln for ln in media.splitlines() if ln.endswith(".m4s")]
        assert all([await _status(live, f"/live/{cid}/hls/{u}") == 200 for u in listed])
        kept = await live.app[STORE].list(f"live/{cid}/e1/cmaf/v0/")
        segments = sorted(k for k in kept if re.search(r"/\d{6}\.m4s$", k))
        assert len(segments) <= 10 + 3 + 3, segments   # window + margin + a pruning period
        # low latency: the parts a segment was joined from go with it
        first_kept = segments[0].rsplit("/", 1)[1][:6]
        assert not [k for k in kept if k.rsplit("/", 1)[1][:6] < first_kept], kept
    finally:
        await asyncio.to_thread(pub.wait, 40)
    await wait_status(live, cid, "ended", within=20)
    assert await live.app[STORE].list(f"live/{cid}/e1/")
    again = publish(body["ingest"]["rtmp"], 8)
    try:
        await wait_status(live, cid, "live")
        async with asyncio.timeout(10):   # the new event made the old one's segments unreachable: gone
            while await live.app[STORE].list(f"live/{cid}/e1/"):
                await asyncio.sleep(0.3)
    finally:
        await asyncio.to_thread(again.wait, 30)
