"""When the live encoder falls behind its input: drop the top rung (then speed up the preset) at the next input
keyframe instead of drifting ever further from the live edge.

"Behind" is relative to the publisher: an encoder producing 0.8 media seconds per second from a publisher that
only sends 0.8 is keeping up. The dropped rung's playlist URL keeps working: from the change on, it carries the
next rung's picture (a discontinuity with a new init segment), so players on it never stall.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from transcode.ladder import Plan

PRESETS = ("fast", "faster", "veryfast", "superfast", "ultrafast")   # slowest to fastest


@dataclass(frozen=True)
class Step:
    plan: Plan
    dropped: str | None     # the rung dropped, or None when the preset changed
    description: str


def behind(encoder_speed: float, input_speed: float | None, min_speed: float) -> bool:
    return encoder_speed < min_speed * (input_speed if input_speed and input_speed > 0 else 1.0)


def next_step(p: Plan) -> Step | None:
    """Drop the top rung while there are two or more, then a faster preset; None when nothing is left to give."""
    if len(p.rungs) > 1:
        top = p.rungs[0]
        return Step(dataclasses.replace(p, rungs=p.rungs[1:]), top.name,
                    f"dropped the {top.name} rung (its playlist now carries {p.rungs[1].name})")
    if p.preset in PRESETS and p.preset != PRESETS[-1]:
        faster = PRESETS[PRESETS.index(p.preset) + 1]
        return Step(dataclasses.replace(p, preset=faster), None, f"x264 preset {p.preset} -> {faster}")
    return None


def ladder_after(ladder: dict[str, Any], step: Step) -> dict[str, Any]:
    p = step.plan
    return {**ladder, "rungs": [{"name": r.name, "width": r.width, "height": r.height, "bitrate": r.video_bitrate}
                                for r in p.rungs],
            "dropped": [*ladder.get("dropped", []), *([step.dropped] if step.dropped else [])], "preset": p.preset}
