"""Object-store housekeeping beside a live encoder run: the DVR window's tail and the live poster.

Both only read the event timeline (`state`, kept by the publisher in transcode/live.py) and the store, so they
need nothing from the segmenter:
- pruning (unrecorded events only): segments that ended more than the DVR window plus a margin ago are deleted.
  The margin (three segments) covers a player that fetched a playlist just before its oldest entry fell out
  of the window. The timeline keeps listing them (the MPD's Period offsets are computed from it); `pruned` in
  the state remembers how far deletion went, so a reconnect's run does not delete twice.
- the poster: every few seconds the first frame of the newest top-rung segment (init + fragment, a keyframe by
  construction) becomes `images/poster.jpg` under the channel's prefix, for feeds, oEmbed, the studio and the
  embed page. One frame decoded per refresh costs next to nothing beside the live encode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from onair.core.storage import ObjectNotFound
from transcode import live_manifests
from transcode.ffmpeg import die_with_parent
from transcode.live_manifests import RUN, SEQ, WALL, D

log = logging.getLogger("onair.transcode.live")

MARGIN_SEGMENTS = 3
POSTER_KEY = "images/poster.jpg"
POSTER_TIMEOUT = 20.0


def expired_segments(state: dict[str, Any], now: float, keep_seconds: float) -> list[tuple[str, int]]:
    """(track, seq) of segments that ended before `now - keep_seconds` and were not deleted yet."""
    pruned = state.get("pruned", {})
    out = []
    for tid, track in state["tracks"].items():
        ts = track.get("timescale") or 1
        for s in track["segments"]:
            if s[SEQ] <= pruned.get(tid, 0):
                continue
            if s[WALL] + s[D] / ts >= now - keep_seconds:
                break
            out.append((tid, s[SEQ]))
    return out


async def prune_once(store: Any, state: dict[str, Any], media_prefix: str, keep_seconds: float,
                     now: float | None = None, parts_per_segment: int = 0) -> int:
    """Delete expired segments, and with low latency the parts they were joined from (part objects are never
    listed again once their segment is complete; a missing index is simply nothing to delete)."""
    gone = expired_segments(state, time.time() if now is None else now, keep_seconds)
    pruned = state.setdefault("pruned", {})
    for tid, seq in gone:
        keys = [live_manifests.segment_key(tid, seq),
                *(live_manifests.part_key(tid, seq, i) for i in range(parts_per_segment))]
        for key in keys:
            with contextlib.suppress(ObjectNotFound):
                await store.delete(media_prefix + key)
        pruned[tid] = max(pruned.get(tid, 0), seq)
    return len(gone)


def parts_per_segment(payload: dict[str, Any]) -> int:
    """An upper bound on a segment's parts (the encoder cuts parts of a whole number of frames, never longer than
    the target, so a segment has at most a couple more than segment/part)."""
    if payload.get("latency") != "low" or not payload.get("part_seconds"):
        return 0
    return int(payload["segment_seconds"] / payload["part_seconds"]) + 3


async def prune_loop(store: Any, state: dict[str, Any], payload: dict[str, Any]) -> None:
    seg = float(payload["segment_seconds"])
    keep = float(payload["dvr_seconds"]) + MARGIN_SEGMENTS * seg
    while True:
        await asyncio.sleep(seg)
        try:
            await prune_once(store, state, payload["media_prefix"], keep, parts_per_segment=parts_per_segment(payload))
        except Exception:   # the store hiccups: try again next segment; never stop the encoder for this
            log.warning("live %s: pruning old segments failed", payload["channel_id"], exc_info=True)


async def poster_once(store: Any, state: dict[str, Any], payload: dict[str, Any], ffmpeg: str,
                      scratch: Path) -> bool:
    track = state["tracks"].get("v0")
    if not track or not track["segments"]:
        return False
    last = track["segments"][-1]
    prefix = payload["media_prefix"]
    data = await store.get_bytes(prefix + track["inits"][str(last[RUN])]) + \
        await store.get_bytes(prefix + live_manifests.segment_key("v0", last[SEQ]))
    src, out = scratch / "poster-in.mp4", scratch / "poster.jpg"
    await asyncio.to_thread(src.write_bytes, data)
    proc = await asyncio.create_subprocess_exec(
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(src), "-frames:v", "1",
        "-q:v", "3", str(out), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        preexec_fn=die_with_parent)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), POSTER_TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        log.warning("live %s: poster frame failed: %s", payload["channel_id"], err[-200:].decode(errors="replace"))
        return False
    await store.put_bytes(payload["live_prefix"] + POSTER_KEY, await asyncio.to_thread(out.read_bytes))
    return True


async def copy_poster(store: Any, live_prefix: str, asset_prefix: str) -> str | None:
    """The recording's poster: the channel's last live poster (feeds and oEmbed show it); None if there is none."""
    try:
        data = await store.get_bytes(live_prefix + POSTER_KEY)
    except ObjectNotFound:
        return None
    await store.put_bytes(asset_prefix + POSTER_KEY, data)
    return POSTER_KEY


async def poster_loop(store: Any, state: dict[str, Any], payload: dict[str, Any], ffmpeg: str,
                      scratch: Path) -> None:
    """A poster as soon as the first segment is out, then every `poster_seconds`."""
    every = float(payload.get("poster_seconds") or 10.0)
    while True:
        try:
            made = await poster_once(store, state, payload, ffmpeg, scratch)
        except Exception:   # a missing object or a failed decode: the next refresh tries again
            log.warning("live %s: poster refresh failed", payload["channel_id"], exc_info=True)
            made = False
        await asyncio.sleep(every if made else min(every, float(payload["segment_seconds"])))
