"""Shared by the live tests: settings that keep live runs short, an ffmpeg publisher, the channel API."""

from __future__ import annotations

import asyncio
import contextlib
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
            size: str = "640x360", video_args: tuple[str, ...] = ("-g", "25")) -> subprocess.Popen:
    """ffmpeg sends `seconds` of testsrc2 (+ a sine) in real time, as OBS would."""
    inputs, codecs = [], []
    if video:
        inputs += ["-f", "lavfi", "-i", f"testsrc2=s={size}:r=25:d={seconds}"]
        codecs += ["-c:v", "libx264", "-preset", "ultrafast", *video_args, "-pix_fmt", "yuv420p"]
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


def server_children() -> int:
    """Processes the server (this test process: TestServer runs in it) has started and not reaped."""
    out = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True)
    return len(out.stdout.split())


def _tcp_ports() -> dict[str, tuple[int, int]]:
    """socket inode -> (local port, remote port) of this process's TCP sockets."""
    ports: dict[str, tuple[int, int]] = {}
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                ports[cols[9]] = (int(cols[1].rsplit(":", 1)[1], 16), int(cols[2].rsplit(":", 1)[1], 16))
    return ports


def open_sockets(pooled: set[int]) -> int:
    """Socket fds of this process (the server), less pooled connections to or on `pooled` ports (PostgreSQL, the
    test client's keep-alive): a leaked relay listener, ingest connection or encoder pipe socket is counted."""
    tcp = _tcp_ports()
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                ends = tcp.get(target[8:-1])
                if ends is None or not pooled.intersection(ends):
                    count += 1
    return count
