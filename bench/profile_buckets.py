"""Where a profiled request's time goes: cProfile entries sorted into named buckets (HTTP parse, event loop, ...)
by substrings of "file:function", first match first; the client's own work and epoll waits are left out."""

from __future__ import annotations

import cProfile
import pstats
from pathlib import Path
from typing import Any

Buckets = tuple[tuple[str, tuple[str, ...]], ...]
_NOT_SERVER = ("client", "wait")


def bucket_of(key: tuple[str, int, str], buckets: Buckets) -> str:
    name = f"{key[0]}:{key[2]}"
    for bucket, needles in buckets:
        if any(n in name for n in needles):
            return bucket
    return "other"


def breakdown(prof: cProfile.Profile, buckets: Buckets, count: int, unit: str, top: int = 25) -> dict[str, Any]:
    """Function calls per `unit` (exact, machine-independent) and shares of server self time, per bucket."""
    seconds: dict[str, float] = {}
    calls: dict[str, int] = {}
    heaviest: list[tuple[float, str, int]] = []
    for key, (_cc, ncalls, tottime, _ct, _callers) in pstats.Stats(prof).stats.items():  # type: ignore[attr-defined]
        b = bucket_of(key, buckets)
        seconds[b] = seconds.get(b, 0.0) + tottime
        calls[b] = calls.get(b, 0) + ncalls
        if b not in _NOT_SERVER:
            heaviest.append((tottime, f"{b}  {Path(key[0]).name}:{key[1]}:{key[2]}", ncalls))
    total = sum(v for k, v in seconds.items() if k not in _NOT_SERVER)
    heaviest.sort(reverse=True)
    return {
        f"server_function_calls_per_{unit}": round(sum(v for k, v in calls.items() if k != "client") / count, 1),
        f"function_calls_per_{unit}": {k: round(v / count, 1) for k, v in sorted(calls.items())},
        "server_self_time_share": {k: round(v / total, 3) for k, v in sorted(seconds.items())
                                   if k not in _NOT_SERVER},
        f"server_cpu_us_per_{unit}_profiled": round(total / count * 1e6, 1),
        "top_functions_self_time": [{"function": n, f"calls_per_{unit}": round(c / count, 2),
                                     "share": round(t / total, 3)} for t, n, c in heaviest[:top]],
    }
