"""Shared by the live tests: settings that keep live runs short, an ffmpeg publisher, the channel API."""

from __future__ import annotations

import asyncio
import os
import subprocess

from aiohttp.test_utils import TestClient

from onair.core.settings import Settings
from tests.conftest import ADMIN
from tests.tools import free_port
from transcode.ffmpeg import ffmpeg_binary


def live_settings(settings: Settings, **extra: object) -> Settings:
    """1 s segments, a 2 s reconnect window, a 360p ultrafast ladder: live runs cheap on 2 cores."""
    return settings.with_(**{"live_rtmp_port": free_port(), "live_srt_port": free_port(),
                             "live_reconnect_seconds": 2.0, "live_segment_seconds": 1.0, "live_max_height": 360,
                             "live_preset": "ultrafast", **extra})


def publish(url: str, seconds: float, fmt: str = "flv", *, video: bool = True, audio: bool = True,
            size: str = "640x360") -> subprocess.Popen:
    """ffmpeg sends `seconds` of testsrc2 (+ a sine) in real time, as OBS would."""
    inputs, codecs = [], []
    if video:
        inputs += ["-f", "lavfi", "-i", f"testsrc2=s={size}:r=25:d={seconds}"]
        codecs += ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=f=440:d={seconds}:r=48000"]
        codecs += ["-c:a", "aac"]
    return subprocess.Popen([ffmpeg_binary(None), "-hide_banner", "-loglevel", "error", "-re", *inputs, *codecs,
                             "-f", fmt, url], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def channel(client: TestClient, cid: str) -> dict:
    resp = await client.get(f"/api/v1/live/channels/{cid}", headers=ADMIN)
    assert resp.status == 200
    return await resp.json()


async def wait_status(client: TestClient, cid: str, status: str, within: float = 30) -> dict:
    async with asyncio.timeout(within):
        while (body := await channel(client, cid))["status"] != status:
            await asyncio.sleep(0.2)
    return body


async def create(client: TestClient, **extra) -> dict:
    resp = await client.post("/api/v1/live/channels", json={"title": "Breaking", **extra}, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    return await resp.json()


def ffmpeg_children() -> int:
    out = subprocess.run(["pgrep", "-P", str(os.getpid()), "-f", "ffmpeg"], capture_output=True)
    return len(out.stdout.split())
