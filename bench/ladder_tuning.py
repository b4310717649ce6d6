"""Ladder tuning: each knob of transcode.commands.Tuning tried on its own against the same-run references, with
the VMAF of every rung, so a change is adopted only when it saves CPU without losing quality.

`python -m bench.ladder_tuning [seconds]` (default 10 s: a shared machine). Source: 1080p30 testsrc2 with
temporal noise (clean testsrc2 is so easy to code that every rung scores ~100 and no loss would show), plus audio.

Per variant: the bare one-decode multi-output command (commands.multi_output_argv, plain MP4, no packaging: what
the tuning changes is the same in the packaged job) with that Tuning; its CPU is the children's user+sys time
(resource.getrusage), never wall time, which the other load on a shared machine makes meaningless. References in
the same run: the per-rung reference (one process per rung, each decoding the source) and the BASELINE
multi-output. VMAF (libvmaf, model vmaf_v0.6.1, every 5th frame): each rung against the source scaled to the rung
size (bicubic). The table goes to bench/results/transcode.json under "tried" (bench_transcode keeps it).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import results_file, vmaf
from transcode import commands
from transcode.commands import BASELINE, TUNED, Tuning
from transcode.ffmpeg import ffmpeg_binary
from transcode.ladder import Plan, plan
from transcode.probe import probe

RESULTS = Path(__file__).resolve().parent / "results"

# (what was changed, the Tuning): one knob at a time against BASELINE, then the adopted combination (TUNED).
VARIANTS: tuple[tuple[str, Tuning], ...] = (
    ("cascaded scaling (each rung from the next larger one)", Tuning(cascade=True)),
    ("x264 threads=1 per encoder (5 encoders share the cores)", Tuning(x264_threads=1)),
        ("x264 lookahead-threads=1", Tuning(lookahead_threads=1)),
    ("x264 rc-lookahead=5 (veryfast: 10)", Tuning(rc_lookahead=5)),
    ("filter threads=1 (-filter_complex_threads)", Tuning(filter_threads=1)),
    ("scale flags=bilinear (fewer taps; pixel formats: none converted, see note)", Tuning(scale_flags="bilinear")),
)


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def make_source(binary: str, path: Path, seconds: int) -> None:
    subprocess.run([binary, "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=s=1920x1080:r=30:d={seconds},noise=alls=6:allf=t", "-f", "lavfi", "-i",
                    f"sine=f=440:beep_factor=4:d={seconds}:r=48000", "-c:v", "libx264", "-preset", "ultrafast",
                    "-crf", "16", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "192k", "-shortest", str(path)],
                   check=True)


def cpu_of(argvs: list[list[str]]) -> float:
    before = children_cpu()
    for argv in argvs:
        subprocess.run(argv, check=True)
    return children_cpu() - before


def multi_output(binary: str, source: Path, out: Path, the_plan: Plan, tuning: Tuning) -> tuple[float, list[float]]:
    out.mkdir()
    cpu = cpu_of([commands.multi_output_argv(binary, source, out, the_plan, tuning, os.cpu_count() or 1)])
    scores = [vmaf.score(binary, out / f"rung{i}.mp4", source, r.width, r.height, scale="source",
                         options="n_subsample=5") for i, r in enumerate(the_plan.rungs)]
    return cpu, scores


def per_rung(binary: str, source: Path, out: Path, the_plan: Plan) -> tuple[float, list[float]]:
    out.mkdir()
    return cpu_of([commands.reference_rung_argv(binary, source, out / f"rung{i}.mp4", the_plan, i)
                   for i in range(len(the_plan.rungs))]), []


def run(seconds: int = 10, variants: tuple[tuple[str, Tuning], ...] = VARIANTS, jobs: int = 3) -> dict[str, Any]:
    """Each measurement in a pool worker: its CPU is that worker's children's, so measurements running side by
    side do not mix (running them side by side only shortens the wall time on a busy machine)."""
    binary = ffmpeg_binary(None)
    last = ("adopted combination (commands.TUNED)", TUNED) if TUNED != BASELINE else \
        ("BASELINE again (run-to-run noise)", BASELINE)
    rows = (*variants, last)
    with tempfile.TemporaryDirectory(prefix="onair-tuning-") as tmp, ProcessPoolExecutor(jobs) as pool:
        work = Path(tmp)
        source = work / "source.mp4"
        make_source(binary, source, seconds)
        the_plan = plan(probe(source))
        reference = pool.submit(per_rung, binary, source, work / "per_rung", the_plan)
        baseline = pool.submit(multi_output, binary, source, work / "baseline", the_plan, BASELINE)
        futures = [pool.submit(multi_output, binary, source, work / f"v{n}", the_plan, tuning)
                   for n, (_, tuning) in enumerate(rows)]
        per_rung_cpu = reference.result()[0]
        base_cpu, base_vmaf = baseline.result()
        tried = []
        for (change, tuning), future in zip(rows, futures, strict=True):
            cpu, scores = future.result()
            tried.append({"change": change, "tuning": asdict(tuning), "cpu_s": round(cpu, 2),
                          "cpu_ratio_vs_per_rung": round(cpu / per_rung_cpu, 3),
                          "cpu_ratio_vs_multi_output": round(cpu / base_cpu, 3), "vmaf": scores,
                          "vmaf_delta_per_rung": [round(v - b, 2) for v, b in zip(scores, base_vmaf, strict=True)]})
            print(json.dumps(tried[-1]), flush=True)
    return {"how": (__doc__ or "").split("\n\n", 1)[1].strip().replace("\n", " "), "seconds": seconds,
            "rungs": [f"{r.name} {r.width}x{r.height}" for r in the_plan.rungs],
            "per_rung_cpu_s": round(per_rung_cpu, 2), "multi_output_cpu_s": round(base_cpu, 2),
            "baseline_ratio_vs_per_rung": round(base_cpu / per_rung_cpu, 3), "baseline_vmaf": base_vmaf,
            "tried": tried, "measured_at": results_file.now_iso(), "machine": results_file.machine()}


def save(table: dict[str, Any]) -> None:
    """Into transcode.json; rows of an earlier run for changes this run did not try are kept (each row carries
    its own references' CPU, so rows from different runs stay comparable as ratios)."""
    path = RESULTS / "transcode.json"
    figures = json.loads(path.read_text()) if path.exists() else {}
    runs = figures.get("tuning", {}).get("runs", [])
    runs.append({k: v for k, v in table.items() if k != "tried"})
    figures["tuning"] = {"how": table["how"], "runs": runs}
    done = {row["change"] for row in table["tried"]}
    figures["tried"] = [row for row in figures.get("tried", []) if row["change"] not in done] + [
        {**row, "run": len(runs)} for row in table["tried"]]
    path.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    # --adopted: only the references and TUNED (after TUNED changed)
    table = run(int(args[0]) if args else 10, () if "--adopted" in sys.argv else VARIANTS)
    save(table)
    print(json.dumps(table, indent=2))
