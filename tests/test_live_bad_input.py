"""Bad publishers end in a clear channel status with a reason, the worker stays healthy and no process is left:
audio only, video only, and a publisher that stalls with its socket open (SIGSTOP, detected within the
`live_stall_seconds` setting). Awkward media (4K60, HEVC, VFR, long GOPs, garbage): test_live_bad_media.py."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from tests.live_helpers import channel, create, ffmpeg_children, live_settings, open_sockets, publish, wait_status

STALL = 3.0


@pytest.fixture
async def live(settings) -> AsyncIterator[TestClient]:
    s = live_settings(settings, live_stall_seconds=STALL)
    async with TestClient(TestServer(create_app(s, s.database_url or ""))) as c:
        yield c


def _baseline(client: TestClient) -> tuple[int, int]:
    """ffmpeg children and open sockets of the server (pooled database and test-client connections aside)."""
    return ffmpeg_children(), open_sockets({5432, client.server.port or 0})


async def _healthy_and_clean(client: TestClient, baseline: tuple[int, int]) -> None:
    assert (await client.get("/healthz")).status == 200
    async with asyncio.timeout(15):
        while _baseline(client) != baseline:   # the encoder of the run has exited, its relay is closed
            await asyncio.sleep(0.2)


async def test_audio_only_publisher_ends_with_a_reason(live: TestClient) -> None:
    body = await create(live)
    baseline = _baseline(live)
    pub = publish(body["ingest"]["rtmp"], 4, video=False)
    try:
        ended = await wait_status(live, body["id"], "ended", within=30)
    finally:
        pub.kill()
        await asyncio.to_thread(pub.wait, 30)
    assert "unusable input" in ended["status_reason"] and "no video" in ended["status_reason"], ended
    await _healthy_and_clean(live, baseline)


async def test_video_only_publisher_goes_live_and_says_so(live: TestClient) -> None:
    body = await create(live)
    baseline = _baseline(live)
    # Long enough to be seen live on a busy machine (a short publish could go live and end between two looks);
    # stopped as soon as it was seen.
    pub = publish(body["ingest"]["rtmp"], 30, audio=False)
    try:
        on = await wait_status(live, body["id"], "live")
        assert on["input"]["audio_codec"] is None
        assert (await live.get(f"/live/{body['id']}/hls/master.m3u8")).status == 200
    finally:
        pub.terminate()
        await asyncio.to_thread(pub.wait, 30)
    await wait_status(live, body["id"], "ended", within=20)
    await _healthy_and_clean(live, baseline)


@pytest.mark.parametrize("protocol", ["rtmp", "srt"])
async def test_a_stalled_publisher_is_dropped_within_the_stall_setting(live: TestClient, protocol: str) -> None:
    body = await create(live)
    baseline = _baseline(live)
    pub = publish(body["ingest"][protocol], 30, fmt="flv" if protocol == "rtmp" else "mpegts")
    try:
        await wait_status(live, body["id"], "live")
        os.kill(pub.pid, signal.SIGSTOP)   # the socket stays open, nothing more arrives
        stopped = time.monotonic()
        dropped = await wait_status(live, body["id"], "reconnecting", within=STALL + 10)
        assert time.monotonic() - stopped < STALL + 5
        assert "sent nothing" in dropped["status_reason"], dropped
        ended = await wait_status(live, body["id"], "ended", within=15)
        assert ended["status_reason"] == "the publisher did not come back"
        assert (await channel(live, body["id"]))["ingest_protocol"] is None
    finally:
        pub.kill()
        await asyncio.to_thread(pub.wait, 30)
    await _healthy_and_clean(live, baseline)
