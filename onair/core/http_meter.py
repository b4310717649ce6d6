"""Per-request HTTP metrics counted in plain Python and written to prometheus-client once per event-loop turn.

Writing each request straight through cost five stores (in flight up and down, the request counter, the latency
histogram's sum and bucket); with `--workers N` each is a locked write into a memory-mapped file, about 13 us a
request, a tenth of what /healthz costs. Here a request adds to a dict, and the first request of a loop turn
schedules one flush (call_soon) that writes each (method, route, status)'s totals once. A scrape flushes first
(metrics.exposition), so it always sees its own process's requests; another process's show one loop turn after
they were answered (microseconds when idle, the turn's other callbacks under load).
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

# Totals of one (method, route, status) since the last flush: count, seconds, per-bucket counts, origin route.
_Pending = list[Any]


class HttpMeter:
    def __init__(self, requests: Counter, latency: Histogram, in_flight: Gauge, origin: Counter,
                 buckets: Sequence[float]) -> None:
        self._requests, self._latency, self._in_flight, self._origin = requests, latency, in_flight, origin
        self._bounds = [float(b) for b in buckets] + [float("inf")]  # prometheus-client's own bucket list
        self.in_flight = 0
        self._written_in_flight = 0
        self._pending: dict[tuple[str, str, int], _Pending] = {}
        # the labelled children, looked up once: labels() validates and locks on every call
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        # the loop a flush is scheduled on (one closed with the callback pending, as tests do, is left behind)
        self._scheduled_on: asyncio.AbstractEventLoop | None = None

    def begin(self) -> None:
        self.in_flight += 1
        self._schedule()  # a long request (WebSocket, SSE) shows as in flight without waiting for its end

    def end(self, method: str, route: str, status: int, seconds: float, origin: bool) -> None:
        self.in_flight -= 1
        self.done(method, route, status, seconds, origin)
        self._schedule()

    def done(self, method: str, route: str, status: int, seconds: float, origin: bool) -> None:
        """Count one answered request (not in flight) until the next flush."""
        key = (method, route, status)
        totals = self._pending.get(key)
        if totals is None:
            totals = self._pending[key] = [0, 0.0, [0] * len(self._bounds), origin]
        totals[0] += 1
        totals[1] += seconds
        totals[2][bisect_left(self._bounds, seconds)] += 1  # Prometheus buckets are "less than or equal"

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test counting by hand): write through
            self.flush()
            return
        if self._scheduled_on is not loop:
            loop.call_soon(self.flush)
            self._scheduled_on = loop

    def flush(self) -> None:
        self._scheduled_on = None
        if self.in_flight != self._written_in_flight:
            self._in_flight.set(self.in_flight)
            self._written_in_flight = self.in_flight
        pending, self._pending = self._pending, {}
        for key, (count, seconds, buckets, origin) in pending.items():
            children = self._children.get(key)
            if children is None:
                method, route, status = key
                children = self._children[key] = (self._requests.labels(method, route, str(status)),
                                                  self._latency.labels(route),
                                                  self._origin.labels(str(status)) if origin else None)
            children[0].inc(count)
            _observe_many(children[1], seconds, buckets)
            if children[2] is not None:
                children[2].inc(count)


def _observe_many(child: Any, seconds: float, buckets: list[int]) -> None:
    """Add many observations to a histogram child at once. prometheus-client has no batch observe; its child keeps
    the sum and the per-bucket counts in `_sum` and `_buckets` (tests/test_app.py reads the result back)."""
    child._sum.inc(seconds)
    for i, n in enumerate(buckets):
        if n:
            child._buckets[i].inc(n)
