"""First start with an empty library: generate a short test clip and ingest it, so there is something to play."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import imageio_ffmpeg
from aiohttp import web

from onair.core.db.pool import POOL
from onair.core.settings import SETTINGS
from onair.core.storage import STORE
from streaming import catalog
from streaming.ingest import originals

log = logging.getLogger("onair.sample")

SECONDS = 10


def sample_argv(ffmpeg: str, out: str) -> list[str]:
    return [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=s=1280x720:r=25:d={SECONDS}",
            "-f", "lavfi", "-i", f"sine=f=440:beep_factor=4:d={SECONDS}:r=48000",
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", out]


async def ingest_sample(app: web.Application) -> str | None:
    pool, store, settings = app[POOL], app[STORE], app[SETTINGS]
    if await pool.fetchval("SELECT EXISTS (SELECT 1 FROM assets)"):
        return None
    staged = originals.staging_dir(settings) / "sample.mp4"
    proc = await asyncio.create_subprocess_exec(*sample_argv(settings.ffmpeg or imageio_ffmpeg.get_ffmpeg_exe(),
                                                             str(staged)))
    if await proc.wait() != 0:
        log.warning("could not generate the sample clip; skipping it")
        return None
    asset_id = catalog.new_asset_id()
    try:
        await catalog.create_asset(pool, asset_id, title="onair sample (testsrc2)", tags=["sample"],
                                   description="Generated on first start; delete it whenever you like.",
                                   source_name="sample.mp4")
        size = (await asyncio.to_thread(os.stat, staged)).st_size
        await originals.store_and_queue(pool, store, asset_id, staged, size)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(staged)
    base = settings.base_url
    print(f"  sample clip {asset_id} is being transcoded; when ready:\n"
          f"    HLS   {base}/media/{asset_id}/hls/master.m3u8\n"
          f"    DASH  {base}/media/{asset_id}/dash/manifest.mpd\n"
          f"    embed {base}/embed/{asset_id}\n", flush=True)
    return asset_id
