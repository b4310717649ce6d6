"""EBU R128 loudness of each audio track (integrated loudness, true peak, loudness range), measured by ffmpeg's
loudnorm filter in its analysis role: it prints one JSON object per filter instance at the end of the run
(`print_format=json`, its documented output), so no human-oriented log line is parsed. One audio-only decode
for all tracks; it runs beside the ladder's encode."""

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


def measure_argv(binary: str, source: str, tracks: list[int]) -> list[str]:
    graph = ";".join(f"[0:a:{t}]loudnorm=print_format=json[m{i}]" for i, t in enumerate(tracks))
    maps = [a for i in range(len(tracks)) for a in ("-map", f"[m{i}]")]
    return [binary, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "info", "-i", source, "-vn", "-sn", "-dn",
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
             "range_lu": _number(found[i].get("input_lra"))} if i in found else None for i in range(count)]


async def measure(binary: str, source: str, tracks: list[int], time_limit: float
                  ) -> list[dict[str, float | None] | None]:
    """One result per track index in `tracks` (None where ffmpeg printed nothing for it)."""
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
