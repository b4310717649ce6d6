"""Helpers for the ingest/transcode tests: generated clips (never committed media) and waiting on assets."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from aiohttp.test_utils import TestClient

from tests.conftest import ADMIN
from transcode.ffmpeg import ffmpeg_binary


def make_clip(path: Path, *, size: str = "640x360", seconds: float = 6, rate: int = 25, audio: bool = True,
              extra: list[str] | None = None, frames: int | None = None) -> Path:
    argv = [ffmpeg_binary(None), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={size}:r={rate}:d={seconds}"]
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=f=440:d={seconds}:r=48000"]
    argv += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if frames:
        argv += ["-frames:v", str(frames)]
    if audio:
        argv += ["-c:a", "aac", "-shortest"]
    argv += [*(extra or []), str(path)]
    subprocess.run(argv, check=True, timeout=120)
    return path


def make_audio_only(path: Path, seconds: float = 3) -> Path:
    subprocess.run([ffmpeg_binary(None), "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=f=440:d={seconds}",
                    "-c:a", "aac", str(path)], check=True, timeout=60)
    return path


async def upload(client: TestClient, data: bytes, *, filename: str = "clip.mp4", title: str = "Clip",
                 content_type: str = "video/mp4", tags: str = "") -> str:
    from aiohttp import FormData

    form = FormData()
    form.add_field("title", title)
    if tags:
        form.add_field("tags", tags)
    form.add_field("file", data, filename=filename, content_type=content_type)
    resp = await client.post("/api/v1/assets", data=form, headers=ADMIN)
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    assert body["status"] == "queued"
    return body["id"]


async def wait_for(client: TestClient, asset_id: str, statuses: tuple[str, ...] = ("ready", "failed"),
                   within: float = 90) -> dict:
    """Poll the public API (as a user would) until the asset reaches one of `statuses`."""
    async with asyncio.timeout(within):
        while True:
            resp = await client.get(f"/api/v1/assets/{asset_id}", headers=ADMIN)
            assert resp.status == 200, await resp.text()
            body = await resp.json()
            if body["status"] in statuses:
                return body
            await asyncio.sleep(0.2)
