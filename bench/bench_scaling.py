"""Scaling curve of `onair serve --workers N`: the vote_now load (and the baseline health probes, the
same-run reference) at each N, written as bench/results/scaling.json + scaling.png.

    python -m bench scaling                                   (N = 1,2; env BENCH_SCALING_WORKERS=1,2,4,8,16)
    python -m bench.bench_scaling --workers 1,2,4,8,16 --users 2000 --duration 30

Each point starts a fresh server (loadtests/run.py). On a 2-core machine the load generator shares the
cores with the server, so N > 2 shows contention, not onair's limit; use --processes for locust there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from loadtests.run import RunConfig, run_scenario

SCENARIOS = ("baseline", "vote_now")


def _workers(spec: str) -> list[int]:
    return sorted({int(x) for x in spec.split(",") if x.strip()})


def measure(results_dir: Path, workers: list[int], users: int, duration: float, processes: int, *,
            draw: bool = True) -> dict[str, Any]:
    points: list[dict[str, Any]] = []
    for n in workers:
        for scenario in SCENARIOS:
            out = results_dir / "scaling" / f"{scenario}-w{n}"
            summary = run_scenario(RunConfig(scenario, users=users, duration=duration, workers=n,
                                             processes=processes, out=out))
            point: dict[str, Any] = {"scenario": scenario, "workers": n, "status": summary.get("status")}
            if summary.get("status") == "ran":
                point.update(req_per_s=summary["req_per_s"], peak_req_per_s=summary["peak_req_per_s"],
                             failure_rate=summary["failure_rate"],
                             p99_ms=summary["endpoints"].get("ALL", {}).get("p99_ms"))
                if "votes" in summary:
                    v = summary["votes"]
                    point.update(acknowledged=v["acknowledged"], tally=v["tally"], exact=v["exact"],
                                 peak_votes_per_s=v["peak_acknowledged_per_s"])
            else:
                point["reason"] = summary.get("reason")
            points.append(point)
            print(json.dumps(point), flush=True)
    for scenario in SCENARIOS:  # speed-up against the same run's 1-worker (smallest N) figure
        ran = [p for p in points if p["scenario"] == scenario and p.get("req_per_s")]
        if ran:
            ref = ran[0]["req_per_s"]
            for p in ran:
                p["speedup"] = round(p["req_per_s"] / ref, 3) if ref else None
    result = {"cpu_count": os.cpu_count(), "users": users, "duration_s": duration, "workers": workers,
              "locust_processes": processes, "points": points}
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "scaling.json").write_text(json.dumps(result, indent=2) + "\n")
    if draw:
        plot(result, results_dir / "scaling.png")
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for scenario, style in zip(SCENARIOS, ("o-", "s-"), strict=True):
        ran = [p for p in result["points"] if p["scenario"] == scenario and p.get("req_per_s")]
        if ran:
            ax.plot([p["workers"] for p in ran], [p["req_per_s"] for p in ran], style, label=f"{scenario} req/s")
            if scenario == "baseline":
                ref = ran[0]
                ax.plot([p["workers"] for p in ran], [ref["req_per_s"] * p["workers"] / ref["workers"] for p in ran],
                        ":", color="grey", label="linear (from smallest N)")
        votes = [p for p in ran if p.get("peak_votes_per_s")]
        if votes:
            ax.plot([p["workers"] for p in votes], [p["peak_votes_per_s"] for p in votes], "^--",
                    label="peak acknowledged votes/s")
    ax.set_xlabel("onair serve --workers N")
    ax.set_ylabel("requests per second")
    ax.set_xscale("log", base=2)
    ax.set_xticks(result["workers"], [str(n) for n in result["workers"]])
    ax.set_title(f"onair scaling ({result['cpu_count']} CPU cores, {result['users']} users, "
                 f"{result['duration_s']:.0f} s each)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run(results_dir: Path) -> dict[str, Any]:
    return measure(results_dir, _workers(os.environ.get("BENCH_SCALING_WORKERS", "1,2")),
                   int(os.environ.get("BENCH_SCALING_USERS", "200")),
                   float(os.environ.get("BENCH_SCALING_DURATION", "20")),
                   int(os.environ.get("BENCH_SCALING_PROCESSES", "0")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2", help="comma-separated web process counts, e.g. 1,2,4,8,16")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--processes", type=int, default=0, help="locust load-generator processes")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG (no matplotlib on the load host)")
    parser.add_argument("--replot", type=Path, help="only draw the PNG from an existing scaling.json")
    args = parser.parse_args(argv)
    if args.replot:
        plot(json.loads(args.replot.read_text()), args.replot.with_suffix(".png"))
        return 0
    measure(args.out, _workers(args.workers), args.users, args.duration, args.processes, draw=not args.no_plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
