"""The breaking-news channel: a `latency: low` live channel on the load-test server, published by ffmpeg in real time
(`-re`, a small test pattern, so the encoder and not the publisher costs the CPU), until the load test is over."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loadtests.run import Server


def live_env(rtmp_port: int, srt_port: int) -> dict[str, str]:
    """onair settings for the run: 2 s segments of 0.5 s parts (the defaults), one cheap 270p rung."""
    return {"ONAIR_LIVE_RTMP_PORT": str(rtmp_port), "ONAIR_LIVE_SRT_PORT": str(srt_port),
            "ONAIR_LIVE_LATENCY": "low", "ONAIR_LIVE_SEGMENT_SECONDS": "2", "ONAIR_LIVE_PART_SECONDS": "0.5",
            "ONAIR_LIVE_MAX_HEIGHT": "270", "ONAIR_LIVE_PRESET": "ultrafast", "ONAIR_LIVE_RECONNECT_SECONDS": "5"}


def _publisher(url: str, seconds: float) -> subprocess.Popen[bytes]:
    from transcode.ffmpeg import ffmpeg_binary

    return subprocess.Popen(
        [ffmpeg_binary(None), "-hide_banner", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", f"testsrc2=s=480x270:r=25:d={seconds}", "-f", "lavfi", "-i", f"sine=f=440:d={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-f", "flv", url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextlib.contextmanager
def live_channel(server: Server, seconds: float, track: str = "v0", timeout: float = 120) -> Iterator[dict[str, str]]:
    """Create the channel, publish to it for `seconds`, wait until its LL-HLS playlist names a next part; yields the
    LOADTEST_* values breaking_news.py needs."""
    from loadtests.run import _need

    channel = _need(*server.request("POST", "/api/v1/live/channels",
                                    {"title": "Breaking news", "latency": "low", "dvr_seconds": 60}),
                    "create live channel", ok=(201,))
    publisher = _publisher(channel["ingest"]["rtmp"], seconds)
    try:
        playlist = f"/live/{channel['id']}/hls/{track}.m3u8"
        deadline = time.monotonic() + timeout
        while True:
            status, body = server.request("GET", playlist, admin=False)
            if status == 200 and "#EXT-X-PRELOAD-HINT" in str(body):
                break
            if publisher.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"channel {channel['id']} did not go live (publisher rc {publisher.returncode})")
            time.sleep(0.3)
        yield {"CHANNEL_ID": channel["id"], "TRACK": track, "ORIGIN": server.base}
    finally:
        publisher.kill()
        publisher.wait(10)
