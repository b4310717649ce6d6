"""Shared by the embed/oEmbed tests: ready asset rows inserted directly, as the transcoder would leave them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from streaming.catalog.repository import new_asset_id


class FakeClock:
    """A clock the test moves; install it as app[CLOCK] before the app starts."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


OUTPUTS: dict[str, Any] = {
    "hls": "hls/master.m3u8", "dash": "dash/manifest.mpd",
    "video": [{"name": "360p", "width": 640, "height": 360, "bitrate": 800000, "codecs": "avc1.64001e",
               "frame_rate": 25.0},
              {"name": "720p", "width": 1280, "height": 720, "bitrate": 2400000, "codecs": "avc1.64001f",
               "frame_rate": 25.0}],
    "audio": {"codecs": "mp4a.40.2", "bitrate": 128000, "channels": 2, "sample_rate": 48000},
    "poster": "images/poster.jpg",
    "thumbnails": [{"width": 320, "height": 180, "key": "images/thumb-320.jpg"},
                   {"width": 640, "height": 360, "key": "images/thumb-640.jpg"}],
    "storyboard": {"vtt": "images/storyboard.vtt", "image": "images/storyboard.jpg"},
    "captions": [{"lang": "en", "label": "English", "key": "captions/en.vtt"}],
}


async def insert_asset(db: asyncpg.Pool, *, title: str = "Harbour fire", status: str = "ready",
                       outputs: dict[str, Any] | None = OUTPUTS, duration: float = 3.0,
                       visibility: str = "public", available_from: datetime | None = None,
                       available_until: datetime | None = None, embed_origins: list[str] | None = None,
                       asset_id: str | None = None, description: str = "", credit: str | None = None) -> str:
    asset_id = asset_id or new_asset_id()
    await db.execute(
        """INSERT INTO assets (id, title, description, status, progress, outputs, duration, visibility,
                               available_from, available_until, embed_origins, credit, ready_at)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12,
                   CASE WHEN $4 = 'ready' THEN now() END)""",
        asset_id, title, description, status, 100 if status == "ready" else 40,
        outputs, duration, visibility, available_from,
        available_until, embed_origins or [], credit)
    return asset_id
