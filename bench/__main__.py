"""Run every benchmark module (bench/bench_*.py) or the ones named: `python -m bench [name ...]`.

Each module exposes `async def run(results_dir: Path) -> dict` or `def run(results_dir: Path) -> dict`,
writes `bench/results/<name>.json` itself and returns the figures it wrote.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def main(argv: list[str]) -> int:
    RESULTS.mkdir(exist_ok=True)
    names = argv or sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    failed = []
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"== bench {name}", flush=True)
        start = time.monotonic()
        try:
            result = module.run(RESULTS)
            if inspect.isawaitable(result):
                result = asyncio.run(result)
        except Exception as exc:  # one broken benchmark should not hide the others' figures
            print(f"   FAILED: {type(exc).__name__}: {exc}", flush=True)
            failed.append(name)
            continue
        print(json.dumps(result, indent=2, default=str))
        print(f"   ({time.monotonic() - start:.0f}s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
