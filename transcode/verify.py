"""Check packaged outputs before they are published: nothing empty, every fMP4 file a whole box structure,
and the media adding up to the planned duration.

A full disk makes ffmpeg write 0-byte or truncated segments and still exit 0; published, such objects are
served `immutable` for a year and a CDN keeps them as long. So every file is read back and checked here,
and a failure stops the job with a reason before anything becomes visible.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SEGMENTS_PREFIX = "cmaf/"
# The encoder's last segment can be a frame or an audio packet short/long of the source's duration.
DURATION_TOLERANCE = 0.05   # of the planned duration ...
DURATION_SLACK = 1.0        # ... plus this many seconds
SAMPLE_TOLERANCE = 0.10     # frames against EXTINF time x frame rate


class OutputInvalid(RuntimeError):
    """A packaged output is empty, truncated or does not cover the planned duration."""


@dataclass(frozen=True)
class TrackSummary:
    playlist: str
    segments: int
    seconds: float
    samples: int


def boxes(data: bytes, start: int = 0, end: int | None = None, *, where: str) -> list[tuple[str, int, int]]:
    """(type, payload start, box end) of the ISO-BMFF boxes in data[start:end]; they must tile it exactly."""
    end = len(data) if end is None else end
    found, pos = [], start
    while pos < end:
        if end - pos < 8:
            raise OutputInvalid(f"{where}: {end - pos} stray bytes after the last box")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if end - pos < 16:
                raise OutputInvalid(f"{where}: truncated box header")
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise OutputInvalid(f"{where}: box {kind.decode('latin-1')!r} of {size} bytes overruns the file")
        found.append((kind.decode("latin-1"), pos + header, pos + size))
        pos += size
    return found


def _child(data: bytes, parent: tuple[str, int, int], kind: str, where: str) -> list[tuple[str, int, int]]:
    return [b for b in boxes(data, parent[1], parent[2], where=where) if b[0] == kind]


def check_init(data: bytes, where: str) -> None:
    kinds = [b[0] for b in boxes(data, where=where)]
    if "ftyp" not in kinds or "moov" not in kinds:
        raise OutputInvalid(f"{where}: init segment lacks {'ftyp' if 'ftyp' not in kinds else 'moov'}")


def segment_samples(data: bytes, where: str) -> int:
    """Samples in one CMAF fragment (sum of its trun sample counts); it must have a moof and an mdat."""
    top = boxes(data, where=where)
    moofs = [b for b in top if b[0] == "moof"]
    if not moofs or not any(b[0] == "mdat" for b in top):
        raise OutputInvalid(f"{where}: fragment lacks {'moof' if not moofs else 'mdat'}")
    samples = 0
    for moof in moofs:
        for traf in _child(data, moof, "traf", where):
            for trun in _child(data, traf, "trun", where):
                if trun[2] - trun[1] < 8:
                    raise OutputInvalid(f"{where}: truncated trun")
                samples += struct.unpack_from(">I", data, trun[1] + 4)[0]
    if samples == 0:
        raise OutputInvalid(f"{where}: fragment has no samples")
    return samples


def _read(objects: Mapping[str, Path | bytes], key: str) -> bytes:
    value = objects.get(key)
    if value is None:
        raise OutputInvalid(f"{key} is referenced but was not produced")
    data = value if isinstance(value, bytes) else value.read_bytes()
    if not data:
        raise OutputInvalid(f"{key} is empty (0 bytes)")
    return data


def _playlist_entries(text: str) -> tuple[str, list[tuple[str, float]]]:
    init, entries, duration = "", [], 0.0
    for line in text.splitlines():
        if line.startswith("#EXT-X-MAP:") and (m := re.search(r'URI="([^"]+)"', line)):
            init = m.group(1)
        elif line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line and not line.startswith("#"):
            entries.append((line.strip(), duration))
    return init, entries


def _segment_key(uri: str) -> str:
    return SEGMENTS_PREFIX + uri.rsplit("/", 1)[-1]


def check_track(objects: Mapping[str, Path | bytes], playlist: str, planned: float,
                fps: float | None) -> TrackSummary:
    init, entries = _playlist_entries(_read(objects, playlist).decode())
    if not init or not entries:
        raise OutputInvalid(f"{playlist} names no init segment or no media segments")
    check_init(_read(objects, _segment_key(init)), _segment_key(init))
    seconds = sum(d for _, d in entries)
    allowed = planned * DURATION_TOLERANCE + DURATION_SLACK
    if abs(seconds - planned) > allowed:
        raise OutputInvalid(f"{playlist} covers {seconds:.2f} s of a planned {planned:.2f} s")
    samples = 0
    for uri, _ in entries:
        key = _segment_key(uri)
        samples += segment_samples(_read(objects, key), key)
    if fps:
        expected = seconds * fps
        if abs(samples - expected) > expected * SAMPLE_TOLERANCE + 2:
            raise OutputInvalid(f"{playlist} holds {samples} frames; {seconds:.2f} s at {fps:g} fps is "
                                f"{expected:.0f}")
    return TrackSummary(playlist, len(entries), seconds, samples)


def verify(objects: Mapping[str, Path | bytes], planned_seconds: float, fps: float) -> list[TrackSummary]:
    """Raise OutputInvalid unless every object is non-empty and every HLS media playlist's init and segments
    parse as fMP4 and add up to the planned duration (video: frames too)."""
    for key in objects:
        _read(objects, key)
    tracks = []
    for key in sorted(objects):
        if key.startswith("hls/") and key.endswith(".m3u8") and key != "hls/master.m3u8":
            tracks.append(check_track(objects, key, planned_seconds, None if key.startswith("hls/audio") else fps))
    if not tracks:
        raise OutputInvalid("no media playlists were produced")
    return tracks
