"""Give memory back to the system after a crowd of live connections has left.

Each stalled WebSocket or SSE client can hold tens of kilobytes of send buffer; when hundreds of them go at
once, Python frees the buffers but glibc keeps the pages inside its heap (a freed chunk below a live one cannot
be returned by shrinking the heap), so the process stays at its peak size for good. malloc_trim(0) releases
those free pages. It is called only after many connections closed (measured: 500 silent WebSockets left
~30 MiB behind without it), never on the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from onair.core.metrics import METRICS

log = logging.getLogger("onair.core.memory")

# Python collects its youngest generation every 700 net container allocations: under load that is every few
# requests, and each collection promotes the objects of the requests still in flight, which the older (slower)
# collections then walk too. A larger first generation makes collections rarer and promotes less.
GEN0_THRESHOLD = 10_000
CHECK_SECONDS = 1.0   # a cheap look at one gauge; often enough to see a crowd that stayed a few seconds
TRIM_AFTER_CLOSED = 50   # connections closed since the last high point that make a trim worthwhile


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where there is none (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def settle_heap() -> None:
    """Once a web process has started: what start-up built (modules, routes, validators: most of the heap) lives as
    long as the process, so it leaves the collector's view (gc.freeze) instead of being walked by every full
    collection, and the youngest generation is collected less often (GEN0_THRESHOLD)."""
    gc.collect()  # garbage made during start-up goes now; freezing it would keep it for good
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, middle, oldest)


def _open_connections() -> float:
    """This process's open WebSocket/SSE/long-poll connections, all kinds: the gauge's own collect() reads this
    process's values only (in multiprocess mode its own file), unlike /metrics, which sums every process."""
    return sum(sample.value for metric in METRICS.connections.collect() for sample in metric.samples)


def trim_context():
    async def loop(app: web.Application, trim: Callable[[int], int]) -> None:
        high = 0.0
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            now = _open_connections()
            high = max(high, now)
            if high - now >= TRIM_AFTER_CLOSED:
                trim(0)
                log.info("%.0f live connections closed; freed memory returned to the system", high - now)
                high = now

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        trim = malloc_trim()
        task = asyncio.create_task(loop(app, trim), name="memory-trim") if trim else None
        yield
        if task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return ctx
