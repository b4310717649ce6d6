"""The live publisher: turns the encoder's fragments into objects and playlists, in order.

Standard latency: one fragment per segment (a GOP of video, a segment's worth of audio), written whole.
Low latency: the encoder cuts short fragments (parts of ~0.5 s); each part is written as its own object the moment
it is complete (`cmaf/v0/000012.2.m4s`), the LL-HLS playlist is rewritten, and the part is announced on the bus
(`live-parts:<channel>`) so origin processes holding blocking playlist reloads answer at once. When a segment's
last part is in, the parts are concatenated into the very segment object standard latency writes
(`cmaf/v0/000012.m4s`: several moof+mdat, valid CMAF), so standard HLS, DASH and the recording use the same files.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from onair.core.bus import BusUnavailable, live_parts_channel
from onair.core.jobs import JobContext
from onair.core.metrics import METRICS
from onair.core.storage import ObjectNotFound
from transcode import fmp4_stream, live_manifests

log = logging.getLogger("onair.transcode.live")

SPEED_WINDOW = 10.0  # seconds of output the encoder speed is measured over
PART_SEGMENTS_KEPT = 3    # segments whose parts stay listed (RFC 8216bis: parts older than 3 targets go)


@dataclass
class _Open:
    """The segment being filled: its parts so far (the objects are out already in low latency)."""
    seq: int
    decode_time: int
    wall: float
    parts: list[bytes] = field(default_factory=list)
    duration: int = 0


class Publisher:
    """Owns the event timeline: writes each part/segment, then (serialised) the playlists that list it."""

    def __init__(self, ctx: JobContext, state: dict[str, Any], run: int) -> None:
        self.ctx, self.store, self.state, self.run = ctx, ctx.resources.store, state, run
        self.p = ctx.payload
        self.low = self.p.get("latency") == "low"
        self.lock = asyncio.Lock()
        self.anchor: dict[str, float] = {}   # per track: wall-clock time of media time 0 (see _anchor)
        self.sets_ast = state.get("ast") is None   # the event's first run fixes availabilityStartTime
        self.run_start: dict[str, int] = {}
        self.closed: dict[str, int] = {}   # segments closed per track in this run
        self.open: dict[str, _Open] = {}
        self.live_reported = False
        self.recent: collections.deque[tuple[float, float]] = collections.deque()  # (wall, media end) of v0
        self.speed = METRICS.encoder_speed.labels(self.p["channel_id"])
        settings = getattr(ctx.resources, "settings", None)
        self.window = float(getattr(settings, "live_speed_window_seconds", SPEED_WINDOW))
        self.measured: tuple[float, float] | None = None   # (speed, wall seconds it was measured over)

    async def init(self, tid: str, data: bytes, meta: dict[str, Any]) -> None:
        key = f"cmaf/{tid}/init-{self.run}.mp4"
        await self.store.put_bytes(self.p["media_prefix"] + key, data)
        track = self.state["tracks"].setdefault(tid, {**meta, "inits": {}, "segments": []})
        track.update(meta, timescale=fmp4_stream.timescale(data), codecs=fmp4_stream.codecs(data))
        track["inits"][str(self.run)] = key
        track["parts"], track["open"] = [], None   # parts of an earlier run never continue into this one

    def _anchor(self, tid: str, frag: fmp4_stream.Fragment) -> None:
        """Map media time to wall-clock time: a fragment is out no earlier than it was encoded, so the mapping is
        the earliest (arrival - media end) seen. The first fragment alone would be late by the startup backlog
        (the encoder starts on PROBE_SECONDS of buffered input and then works it off in a burst): LL-DASH players
        would take the media for that much younger than it is, and sit that much further behind the live edge
        than their target. It settles during the run's first segment; the MPD (the only reader of this clock
        besides PROGRAM-DATE-TIME) is first written once a segment is complete, and from then on it is fixed."""
        ts = self.state["tracks"][tid]["timescale"]
        bound = time.time() - (frag.decode_time + frag.duration) / ts
        if tid not in self.anchor:
            self.run_start[tid] = frag.decode_time
        elif self.closed.get(tid, 0) or bound >= self.anchor[tid]:
            return
        self.anchor[tid] = bound
        if self.sets_ast:
            self.state["ast"] = min(self.anchor[t] + self.run_start[t] / self.state["tracks"][t]["timescale"]
                                    for t in self.anchor)
        if (cur := self.open.get(tid)) is not None:
            cur.wall = round(bound + cur.decode_time / ts, 3)
            self.state["tracks"][tid]["open"][3] = cur.wall

    def _open_segment(self, tid: str, frag: fmp4_stream.Fragment) -> _Open:
        track = self.state["tracks"][tid]
        ts = track["timescale"]
        self._anchor(tid, frag)
        if (cur := self.open.get(tid)) is None:
            seq = track["segments"][-1][0] + 1 if track["segments"] else 1
            cur = self.open[tid] = _Open(seq, frag.decode_time, round(self.anchor[tid] + frag.decode_time / ts, 3))
            track["open"] = [seq, self.run, frag.decode_time, cur.wall]
        return cur

    def _completes(self, tid: str, frag: fmp4_stream.Fragment) -> bool:
        """Does this fragment end the segment? Segments end on the segment grid of the run (video: exactly at
        the next keyframe, the GOP being one segment; audio: the first part reaching the boundary)."""
        ts = self.state["tracks"][tid]["timescale"]
        end = (frag.decode_time + frag.duration - self.run_start[tid]) / ts
        return end >= (self.closed.get(tid, 0) + 1) * self.state["segment_seconds"] - 0.001

    def _measure(self, tid: str, media_end: float) -> None:
        """Media seconds produced per wall second over the last SPEED_WINDOW: below 1 the encoder falls behind
        its input and viewers drift away from the live edge (a whole-run average would hide a late slowdown)."""
        if tid != "v0":
            return
        wall = time.monotonic()
        self.recent.append((wall, media_end))
        while len(self.recent) > 2 and wall - self.recent[1][0] >= self.window:
            self.recent.popleft()
        first_wall, first_media = self.recent[0]
        if wall - first_wall > 0.5:
            self.measured = ((media_end - first_media) / (wall - first_wall), wall - first_wall)
            self.speed.set(self.measured[0])

    async def fragment(self, tid: str, frag: fmp4_stream.Fragment) -> None:
        track = self.state["tracks"][tid]
        cur = self._open_segment(tid, frag)
        self._measure(tid, (frag.decode_time + frag.duration) / track["timescale"])
        idx = len(cur.parts)
        cur.parts.append(frag.data)
        cur.duration += frag.duration
        if self.low:
            await self.store.put_bytes(self.p["media_prefix"] + live_manifests.part_key(tid, cur.seq, idx), frag.data)
            # Video parts start with a keyframe only at the segment's start (fixed GOP of one segment, no scenecut);
            # every AAC frame is a sync sample.
            track["parts"].append([cur.seq, idx, frag.duration, track["kind"] != "video" or idx == 0])
        done = self._completes(tid, frag)
        if done:
            await self.store.put_bytes(self.p["media_prefix"] + live_manifests.segment_key(tid, cur.seq),
                                       b"".join(cur.parts))
            track["segments"].append([cur.seq, self.run, cur.decode_time, cur.duration, cur.wall])
            track["open"] = None
            del self.open[tid]
            self.closed[tid] = self.closed.get(tid, 0) + 1
            track["parts"] = [x for x in track["parts"] if x[0] > cur.seq - PART_SEGMENTS_KEPT]
        await self.publish(tid, segment_done=done)
        if self.low:
            await self._announce(tid, cur.seq, idx, done)

    async def _announce(self, tid: str, seq: int, idx: int, complete: bool) -> None:
        bus = self.ctx.resources.bus
        if bus is None:
            return
        with contextlib.suppress(BusUnavailable):  # held reloads then answer at their deadline instead
            await bus.publish(live_parts_channel(self.p["channel_id"]),
                              {"track": tid, "msn": seq, "part": idx, "complete": complete})

    async def publish(self, tid: str | None = None, *, ended: bool = False, segment_done: bool = True) -> None:
        """The media playlist of `tid` (every track without one); the MPD, master playlist and timeline only when
        a segment completes (parts change neither)."""
        async with self.lock:
            prefix = self.p["live_prefix"]
            tids = [tid] if tid else list(self.state["tracks"])
            for t in tids:
                text = live_manifests.media_playlist(self.state, t, ended=ended, low=self.low and not ended)
                await self.store.put_bytes(f"{prefix}hls/{t}.m3u8", text.encode())
            if segment_done and all(t["segments"] for t in self.state["tracks"].values()):
                await self.store.put_bytes(f"{prefix}{live_manifests.MPD_KEY}",
                                           live_manifests.mpd(self.state, now=time.time(), ended=ended,
                                                              low=self.low and not ended))
                if self.low:   # one more write a segment: the MPD for DASH players without low latency
                    await self.store.put_bytes(f"{prefix}{live_manifests.STANDARD_MPD_KEY}",
                                               live_manifests.mpd(self.state, now=time.time(), ended=ended))
                await self.store.put_bytes(f"{prefix}hls/master.m3u8",
                                           live_manifests.master_playlist(self.state).encode())
                await self.store.put_bytes(self.p["state_key"], json.dumps(self.state).encode())
                if not self.live_reported:
                    self.live_reported = True
                    await self.ctx.report({"stage": "live"}, force=True)

    async def flush(self) -> None:
        """The encoder stopped: segments still open become (short) segments, so nothing viewers saw is lost."""
        for tid, cur in list(self.open.items()):
            track = self.state["tracks"][tid]
            await self.store.put_bytes(self.p["media_prefix"] + live_manifests.segment_key(tid, cur.seq),
                                       b"".join(cur.parts))
            track["segments"].append([cur.seq, self.run, cur.decode_time, cur.duration, cur.wall])
            track["open"] = None
            del self.open[tid]
        await self.publish()


async def load_state(store: Any, key: str, payload: dict[str, Any]) -> dict[str, Any]:
    try:
        return json.loads(await store.get_bytes(key))
    except ObjectNotFound:
        return {"event": payload["event"], "segment_seconds": payload["segment_seconds"],
                "dvr_seconds": payload["dvr_seconds"], "media_url": payload["media_url"],
                "utc_timing": payload["utc_timing"], "ast": None, "runs": 0, "tracks": {},
                "part_target": payload.get("part_seconds") if payload.get("latency") == "low" else None}
