"""EBU R128 loudness of each audio track (integrated loudness, true peak, loudness range), measured by ffmpeg's
loudnorm filter in its analysis role: it prints one JSON object per filter instance at the end of the run
(`print_format=json`, its documented output), so no human-oriented log line is parsed. One audio-only decode
for all tracks; it runs beside the ladder's encode, or before it when the asset is normalised (the encode then
applies a gain computed from it: `normalisation`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
from typing import Any

from transcode.ffmpeg import FFmpegError, die_with_parent, within

# "[Parsed_loudnorm_1 @ 0x...] " followed by the filter's JSON object
_BLOCK = re.compile(r"\[Parsed_loudnorm_(\d+) @ [^\]]+\]\s*(\{[^{}]*\})", re.S)


def measure_argv(binary: str, source: str | list[str], tracks: list[int]) -> list[str]:
    """One source and its audio tracks `tracks`; or several files (a list), track tracks[i] of file i."""
    files = source if isinstance(source, list) else [source]
    several = isinstance(source, list)
    graph = ";".join(f"[{i if several else 0}:a:{t}]loudnorm=print_format=json[m{i}]" for i, t in enumerate(tracks))
    maps = [a for i in range(len(tracks)) for a in ("-map", f"[m{i}]")]
    inputs = [a for f in files for a in ("-i", f)]
    return [binary, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info", *inputs, "-vn", "-sn", "-dn",
            "-filter_complex", graph, *maps, "-f", "null", "-"]


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return round(x, 1) if math.isfinite(x) else None   # silence measures "-inf"


def parse(stderr: str, count: int) -> list[dict[str, float | None] | None]:
    found: dict[int, dict[str, Any]] = {}
    for index, body in _BLOCK.findall(stderr):
        with contextlib.suppress(ValueError):
            found[int(index)] = json.loads(body)
    return [{"integrated_lufs": _number(found[i].get("input_i")), "true_peak_dbtp": _number(found[i].get("input_tp")),
             "range_lu": _number(found[i].get("input_lra")), "threshold_lufs": _number(found[i].get("input_thresh"))}
            if i in found else None for i in range(count)]


async def measure(binary: str, source: str | list[str], tracks: list[int], time_limit: float
                  ) -> list[dict[str, float | None] | None]:
    """One result per track index in `tracks` (None where ffmpeg printed nothing for it); `source` as in
    measure_argv."""
    if not tracks:
        return []
    proc = await asyncio.create_subprocess_exec(
        *measure_argv(binary, source, tracks), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        preexec_fn=die_with_parent if os.name == "posix" else None)
    _, err = await within(proc, proc.communicate(), time_limit)
    if proc.returncode != 0:
        raise FFmpegError(f"loudness measurement exited with {proc.returncode}")
    return parse(err.decode(errors="replace"), len(tracks))


# Integrated loudness targets: EBU R128 for broadcast; -16 LUFS is what streaming platforms and AES TD1004
# recommend for the web. Both keep true peaks at or below -1 dBTP (R128's ceiling; lossy coding adds overshoot).
TARGETS = {"broadcast": -23.0, "web": -16.0}
MAX_TRUE_PEAK = -1.0
Filter = tuple[str, tuple[tuple[str, str], ...]]   # ffmpeg filter name and options, hashable for frozen plans


# Sample-peak ceiling of the limiter: 2 dB under the true-peak ceiling, the room inter-sample peaks and AAC's
# overshoot took in our measurements (a click train limited to -3 dBFS measures -1.0 dBTP after AAC).
LIMIT_DBFS = -3.0


def normalisation(measured: dict[str, float | None] | None, target: str) -> tuple[Filter, ...]:
    """The audio filters that bring a track from its measured loudness to the target: the gain (`volume`)
    alone whenever the raised true peak stays under the ceiling, since it keeps the mix untouched; otherwise
    the same gain followed by a peak limiter that only touches the peaks that would pass the ceiling.

    Not loudnorm's second pass: its dynamic mode (what it falls back to when the peaks leave no room for a
    linear gain) follows a 3 s window and missed the target by 2.6 LU on a 4 s clip, where gain + limiter
    lands within a few tenths whatever the length. Nothing for `off`, silence (no integrated loudness) or
    a failed measurement."""
    goal = TARGETS.get(target)
    if goal is None or not measured or measured.get("integrated_lufs") is None:
        return ()
    loudness, peak = measured["integrated_lufs"], measured.get("true_peak_dbtp")
    gain = round(goal - loudness, 2)
    volume: Filter = ("volume", (("volume", f"{gain:.2f}dB"),))
    if peak is not None and peak + gain <= MAX_TRUE_PEAK:
        return (volume,)
    limit = f"{10 ** (LIMIT_DBFS / 20):.4f}"
    # level=disabled: alimiter would otherwise raise the whole signal back up to the limit
    return (volume, ("alimiter", (("limit", limit), ("attack", "1"), ("release", "50"), ("level", "disabled"),
                                  ("latency", "1"))))


def method(filters: tuple[Filter, ...]) -> str | None:
    """How a track was normalised, for the asset API: "gain", "gain+limiter" or None (as the source)."""
    if not filters:
        return None
    return "gain" if len(filters) == 1 else "gain+limiter"
