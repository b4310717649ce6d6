"""Helpers for origin tests: a real tiny HLS/fMP4 set made by ffmpeg, and assets published directly
(row in `assets` + objects in the store), independent of the transcoder."""

from __future__ import annotations

import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from tests.helpers import make_asset

DASH = b"""<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT2S"
     profiles="urn:mpeg:dash:profile:isoff-live:2011" minBufferTime="PT1S">
  <Period><AdaptationSet mimeType="video/mp4" segmentAlignment="true">
    <Representation id="v0" bandwidth="300000" width="160" height="90" codecs="avc1.42c00b">
      <SegmentTemplate initialization="../hls/init.mp4" media="../hls/seg_$Number$.m4s" startNumber="0"
                       duration="1" timescale="1"/>
    </Representation></AdaptationSet></Period>
</MPD>
"""
VTT = b"WEBVTT\n\n00:00.000 --> 00:01.000\nHello <b>world</b>\n"


def make_media(out: Path) -> dict[str, Path]:
    """Objects of one asset (key -> file): HLS fMP4 (master, media playlist, init, segments), an MPD,
    a poster JPEG and captions."""
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    hls = out / "hls"
    hls.mkdir(parents=True)
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2",
                    "-f", "lavfi", "-i", "sine=duration=2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
                    "-c:a", "aac", "-b:a", "32k", "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
                    "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
                    "-hls_segment_filename", str(hls / "seg_%d.m4s"), "-master_pl_name", "master.m3u8",
                    str(hls / "stream.m3u8")], check=True, timeout=60)
    (out / "images").mkdir()
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc2=size=160x90:duration=1", "-frames:v", "1", str(out / "images" / "poster.jpg")],
                   check=True, timeout=60)
    (out / "dash").mkdir()
    (out / "dash" / "manifest.mpd").write_bytes(DASH)
    (out / "captions").mkdir()
    (out / "captions" / "en.vtt").write_bytes(VTT)
    return {p.relative_to(out).as_posix(): p for p in sorted(out.rglob("*")) if p.is_file()}


OUTPUTS = {"hls": "hls/master.m3u8", "dash": "dash/manifest.mpd", "poster": "images/poster.jpg",
           "captions": [{"lang": "en", "label": "English", "key": "captions/en.vtt"}]}


async def publish(db: asyncpg.Pool, store: Any, asset_id: str, media: dict[str, Path], *,
                  status: str = "ready", visibility: str = "public", available_from: datetime | None = None,
                  available_until: datetime | None = None, geo_allow: tuple[str, ...] = (),
                  geo_deny: tuple[str, ...] = ()) -> None:
    await make_asset(db, asset_id, title=f"Asset {asset_id}", status=status, outputs=OUTPUTS, duration=None,
                     visibility=visibility, available_from=available_from, available_until=available_until,
                     geo_allow=list(geo_allow), geo_deny=list(geo_deny))
    for key, path in media.items():
        await store.put_file(f"assets/{asset_id}/{key}", path)
