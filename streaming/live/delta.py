"""LL-HLS Playlist Delta Updates (RFC 8216bis 6.2.5.1): `?_HLS_skip=YES` answers the media playlist with its older
segments replaced by one `EXT-X-SKIP:SKIPPED-SEGMENTS=N` line; the player keeps those segments from its last reload.

A live DVR window of a minute of 2 s segments with 0.4 s parts is ~200 lines that a player re-reads every part; the
delta keeps only the last CAN-SKIP-UNTIL seconds (the publisher advertises 6 target durations, the spec's floor).
The delta is cut from the full playlist the publisher wrote, so the two never disagree.
"""

from __future__ import annotations

import re

from onair.core.errors import BadRequest

SKIP_UNTIL = re.compile(r"CAN-SKIP-UNTIL=([\d.]+)")
SKIP_VERSION = 9    # EXT-X-SKIP needs compatibility version 9


def wants_skip(query: dict[str, str]) -> bool:
    value = query.get("_HLS_skip")
    if value is None:
        return False
    if value not in ("YES", "v2"):   # v2 also skips date ranges; onair writes none, so both mean the same here
        raise BadRequest("_HLS_skip must be YES or v2", code="invalid-query", field="_HLS_skip")
    return True


def skip(text: str) -> str:
    """The delta update of a full media playlist; the playlist unchanged if it offers none or nothing is old enough."""
    found = SKIP_UNTIL.search(text)
    if found is None or "#EXT-X-ENDLIST" in text:
        return text
    lines = text.splitlines()
    # Segments as line ranges: each ends at its URI line (the line after #EXTINF).
    segments: list[tuple[int, int, float]] = []     # (first line, last line, duration)
    start, duration = None, None
    for i, line in enumerate(lines):
        if start is None and (line.startswith(("#EXT-X-PROGRAM-DATE-TIME", "#EXT-X-MAP", "#EXT-X-PART:"))
                              or line == "#EXT-X-DISCONTINUITY"):
            start = i
        elif line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].split(",", 1)[0])
            start = i if start is None else start
        elif duration is not None and line and not line.startswith("#"):
            segments.append((start, i, duration))
            start, duration = None, None
    total = sum(d for *_, d in segments)
    boundary, elapsed, skipped = total - float(found.group(1)), 0.0, 0
    for _, _, d in segments:
        if elapsed + d > boundary:
            break
        elapsed += d
        skipped += 1
    if skipped == 0:
        return text
    first, last = segments[0][0], segments[skipped - 1][1]
    # Nothing of the skipped segments is repeated, EXT-X-MAP included: the player applies the tags it already has
    # (hls.js 1.6 takes a re-declared EXT-X-MAP after EXT-X-SKIP as a new segment and misdates the ones after it).
    header = [f"#EXT-X-VERSION:{SKIP_VERSION}" if line.startswith("#EXT-X-VERSION:") else line
              for line in lines[:first]]
    return "\n".join([*header, f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}", *lines[last + 1:]]) + "\n"
