"""Transcode benchmark: onair's one-decode ladder job against two references measured in the same run.

(a) onair: the real `transcode.asset` handler (probe, one ffmpeg decode split to every rung, CMAF packaging for
    HLS + DASH, poster/thumbnails/storyboard, publishing to a local object store);
(b) per-rung reference: one ffmpeg process per rung, each decoding the source, same encoder settings
    (how PeerTube and MediaCMS do it), run one after another;
(c) bare multi-output: one ffmpeg command producing the same rungs as plain MP4, no packaging.

(b) and (c) keep commands.BASELINE (the graph and x264 settings as anyone would write them); (a) runs with
commands.TUNED, whose knobs bench/ladder_tuning.py measured one at a time (its table, "tried", is kept here).

Source: generated 1080p30, 60 s, with audio. `ONAIR_BENCH_QUICK=1` (or `python -m bench.bench_transcode --quick`)
uses a 15 s clip for a fast look; the issue's targets are for the full clip.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import results_file
from onair.core import job_kinds
from onair.core.jobs import Job, JobContext, Resources
from onair.core.settings import Settings
from onair.core.storage import LocalStore
from transcode import commands
from transcode.ffmpeg import ffmpeg_binary
from transcode.ladder import plan
from transcode.probe import probe
from transcode.tasks import transcode_asset


class _BenchContext(JobContext):
    """The real handler, minus the database: progress reports are dropped."""

    async def report(self, progress, *, force: bool = False) -> None:  # type: ignore[override]
        return None


def make_source(path: Path, seconds: int) -> None:
    subprocess.run([ffmpeg_binary(None), "-v", "error", "-y", "-f", "lavfi",
                    "-i", f"testsrc2=s=1920x1080:r=30:d={seconds}", "-f", "lavfi",
                    "-i", f"sine=f=440:beep_factor=4:d={seconds}:r=48000", "-c:v", "libx264", "-preset", "fast",
                    "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "192k", "-shortest", str(path)],
                   check=True)


def cpu_seconds() -> float:
    """CPU time of this process and its finished children: far less sensitive than wall time to other load on a
    shared machine, so the ratios are also given in CPU time."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _children_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


async def run_onair(source: Path, work: Path) -> tuple[float, Any]:
    store = LocalStore(work / "objects")
    await store.setup()
    settings = Settings(data_dir=work / "data")
    payload = {"source_key": "sources/bench/original", "prefix": "assets/bench/"}
    job = Job(1, job_kinds.TRANSCODE_ASSET, "default", payload, 1, 3, None, datetime.now(UTC))
    (work / "objects" / "sources" / "bench").mkdir(parents=True)
    os.link(source, work / "objects" / "sources" / "bench" / "original")
    ctx = _BenchContext(job, Resources(settings=settings, pool=None, store=store))  # type: ignore[arg-type]
    start = time.perf_counter()
    result = await transcode_asset(ctx)
    return time.perf_counter() - start, result


def timed(argvs: list[list[str]]) -> float:
    start = time.perf_counter()
    for argv in argvs:
        subprocess.run(argv, check=True)
    return time.perf_counter() - start


def run(results_dir: Path, quick: bool | None = None) -> dict:
    quick = os.environ.get("ONAIR_BENCH_QUICK", "") not in ("", "0") if quick is None else quick
    seconds = 15 if quick else 60
    ffmpeg = ffmpeg_binary(None)
    with tempfile.TemporaryDirectory(prefix="onair-bench-") as tmp:
        work = Path(tmp)
        source = work / "source.mp4"
        make_source(source, seconds)
        facts = probe(source)
        the_plan = plan(facts)
        rss_before = _children_peak_rss_mb()
        cpu0 = cpu_seconds()
        a_wall, result = asyncio.run(run_onair(source, work / "a"))
        cpu1 = cpu_seconds()
        a_rss = _children_peak_rss_mb()  # children so far: the source generator and (a)'s ffmpeg processes
        (work / "b").mkdir()
        b_wall = timed([commands.reference_rung_argv(ffmpeg, source, work / "b" / f"rung{i}.mp4", the_plan, i)
                        for i in range(len(the_plan.rungs))])
        cpu2 = cpu_seconds()
        (work / "c").mkdir()
        c_wall = timed([commands.multi_output_argv(ffmpeg, source, work / "c", the_plan)])
        cpu3 = cpu_seconds()
        a_cpu, b_cpu, c_cpu = cpu1 - cpu0, cpu2 - cpu1, cpu3 - cpu2
    figures = {
        "source": {"width": facts.width, "height": facts.height, "fps": facts.fps, "duration_s": facts.duration,
                   "audio": facts.has_audio, "quick": quick},
        "rungs": [f"{r.name} {r.width}x{r.height} {r.video_bitrate // 1000}k" for r in the_plan.rungs],
        "a_onair_job_s": round(a_wall, 2),
        "b_per_rung_reference_s": round(b_wall, 2),
        "c_multi_output_lower_bound_s": round(c_wall, 2),
        "ratio_a_over_b": round(a_wall / b_wall, 3),
        "ratio_a_over_c": round(a_wall / c_wall, 3),
        "targets": {"a_over_b": 0.65, "a_over_c": 0.95},
        "cpu_seconds": {"a": round(a_cpu, 1), "b": round(b_cpu, 1), "c": round(c_cpu, 1)},
        "cpu_ratio_a_over_b": round(a_cpu / b_cpu, 3),
        "cpu_ratio_a_over_c": round(a_cpu / c_cpu, 3),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "realtime_factor": round(facts.duration / a_wall, 2),
        "peak_rss_mb": {"ffmpeg_children": round(max(a_rss, rss_before), 1),
                        "python_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)},
        "renditions_made": len(result["outputs"]["video"]),
        "machine": results_file.machine(),
        "measured_at": results_file.now_iso(),
    }
    previous = results_dir / ("transcode_quick.json" if quick else "transcode.json")
    if previous.exists():  # bench/ladder_tuning.py's table of what was tried stays with the figures
        kept = json.loads(previous.read_text())
        figures.update({k: kept[k] for k in ("tuning", "tried") if k in kept})
    return results_file.save(results_dir, "transcode", figures, quick=quick)


if __name__ == "__main__":
    out = run(Path(__file__).resolve().parent / "results", quick="--quick" in sys.argv[1:] or None)
    print(json.dumps(out, indent=2))
