"""Per-title ladder: a quick complexity probe scales the fixed ladder's bitrates down for simple content.

The probe is one constant-quality encode (x264 CRF, `ultrafast`) of a few short windows spread over the asset, at
a small size (PROBE_SHORT_SIDE): the bits x264 needs there for a fixed quality measure how hard the picture is to
code (motion, texture, noise). Bits per pixel of the probe against REFERENCE_BPP (content that needs the whole
fixed table) gives a factor applied to every rung; the fixed table is the ceiling (per-title never spends more than
`fixed`) and FLOOR_FACTOR the floor (so a near-static slide still gets enough bits for a cut or a fade the probe
windows missed). Pure functions here; transcode/tasks.py runs the probe (asyncio, with a time limit).

Calibration and its limits: see bench/bench_quality.py and the figures in bench/results/quality.json.
"""

from __future__ import annotations

from dataclasses import replace

from transcode.ladder import Plan

PROBE_SHORT_SIDE = 270
PROBE_CRF = 23
PROBE_WINDOWS = 3          # windows spread over the asset ...
PROBE_WINDOW_SECONDS = 2.0  # ... of this length (the whole asset when it is shorter than all of them)
# Probe bits per pixel at which the fixed table is needed in full. Calibrated on the two natural clips of
# bench/bench_quality.py (3 s excerpts): bikes (camera footage, 640x272) probes at 0.18 and keeps VMAF within 1
# of the fixed ladder down to 0.8x its bits (0.7x loses 1.7), so 0.18 must map to 0.8; Big Buck Bunny probes
# at 0.66 and already scores only 88 at 720p on the fixed table, so it must stay at 1.0. Two clips fix one
# point of a curve, not its shape: EXPONENT is an assumption, not a measurement.
REFERENCE_BPP = 0.24
EXPONENT = 0.75            # bits needed grow slower than the probe's (rate-quality curves flatten)
FLOOR_FACTOR = 0.4


def windows(duration: float) -> list[tuple[float, float]]:
    """(start, length) of the probe windows: evenly spread, centred in equal slices of the asset."""
    total = PROBE_WINDOWS * PROBE_WINDOW_SECONDS
    if duration <= total:
        return [(0.0, duration)]
    slice_ = duration / PROBE_WINDOWS
    return [(round(i * slice_ + (slice_ - PROBE_WINDOW_SECONDS) / 2, 3), PROBE_WINDOW_SECONDS)
            for i in range(PROBE_WINDOWS)]


def probe_size(display_width: int, display_height: int) -> tuple[int, int]:
    """Even width x height with the short side PROBE_SHORT_SIDE (or the source's, if smaller)."""
    short, long_ = sorted((display_width, display_height))
    s = min(short, PROBE_SHORT_SIDE)
    lg = max(2, round(long_ * s / short / 2) * 2)
    s = max(2, s // 2 * 2)
    return (lg, s) if display_width >= display_height else (s, lg)


def probe_argv(binary: str, source: str, duration: float, display_width: int, display_height: int,
               fps: float) -> list[str]:
    """One ffmpeg: each window read with its own input seek, concatenated, scaled, CRF-encoded to raw H.264 on
    stdout (its byte count is the figure; nothing is written to disk)."""
    wins = windows(duration)
    w, h = probe_size(display_width, display_height)
    inputs = [a for start, length in wins for a in ("-ss", f"{start:.3f}", "-t", f"{length:.3f}", "-i", source)]
    parts = "".join(f"[{i}:v:0]fps={fps:.3f},scale={w}:{h},setsar=1,format=yuv420p[p{i}];" for i in range(len(wins)))
    graph = parts + "".join(f"[p{i}]" for i in range(len(wins))) + f"concat=n={len(wins)}:v=1:a=0[v]"
    return [binary, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", *inputs,
            "-filter_complex", graph, "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast",
            "-crf", str(PROBE_CRF), "-threads", "1", "-f", "h264", "-"]


def bits_per_pixel(probe_bytes: int, duration: float, display_width: int, display_height: int,
                   fps: float) -> float:
    """The probe's bits per coded pixel (`duration`: the asset's; the windows' total is what was coded)."""
    coded = sum(length for _, length in windows(duration))
    w, h = probe_size(display_width, display_height)
    pixels = w * h * max(fps, 1.0) * max(coded, 0.04)
    return probe_bytes * 8 / pixels


def factor(bpp: float) -> float:
    """The share of the fixed ladder's bitrates this content gets."""
    return round(min(1.0, max(FLOOR_FACTOR, (bpp / REFERENCE_BPP) ** EXPONENT)), 3)


def scaled(plan: Plan, share: float) -> Plan:
    """The plan with every rung's bitrate (and its VBV maxrate and buffer, in the same proportions) times
    `share`; sizes, levels and GOPs unchanged, so segments still align across rungs and manifests."""
    rungs = tuple(replace(r, video_bitrate=int(r.video_bitrate * share), maxrate=int(r.maxrate * share),
                          bufsize=int(r.bufsize * share)) for r in plan.rungs)
    return replace(plan, rungs=rungs, extra={**plan.extra, "ladder": "per_title", "per_title_factor": share})
