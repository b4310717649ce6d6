"""Prometheus metrics, one set per process, summed over every process of a run when scraped.

`onair serve --workers N` forks N processes that share the port: a scrape reaches one of them, so each
process writes its values to memory-mapped files in a per-run directory (prometheus-client's multiprocess
mode) and /metrics reads them all. A process that dies keeps its counters (totals never go backwards) but
its "live" gauges (connections, requests in flight) are dropped. With one process the values stay in memory.

Values measured at scrape time (queue depth, disk, bus) are added by the caller as plain families.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess, values
from prometheus_client.metrics_core import Metric

from onair.core.http_meter import HttpMeter
from onair.core.processes import alive

ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
SPEED_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 4, 8, 16, 32)


class Metrics:
    """Every metric the application writes. `build` makes them anew (after switching to multiprocess mode)."""

    def __init__(self) -> None:
        self.build()

    def build(self) -> None:
        r = self.registry = CollectorRegistry()
        # HTTP, per route template (never the raw path: one series per asset would explode).
        self.requests = Counter("onair_http_requests", "HTTP requests", ["method", "route", "status"], registry=r)
        self.latency = Histogram("onair_http_request_seconds", "HTTP request latency", ["route"], registry=r,
                                 buckets=LATENCY_BUCKETS)
        self.in_flight = Gauge("onair_http_in_flight", "Requests being served", registry=r,
                               multiprocess_mode="livesum")
        self.origin = Counter("onair_origin_responses", "Origin (/media, /live) responses by status (304/206 "
                              "say how well caches and players revalidate)", ["status"], registry=r)
        # what each request adds to the four metrics above, written once per event-loop turn
        self.http = HttpMeter(self.requests, self.latency, self.in_flight, self.origin, LATENCY_BUCKETS)
        self.connections = Gauge("onair_live_connections", "Open WebSocket/SSE/long-poll connections", ["kind"],
                                 registry=r, multiprocess_mode="livesum")
        # Media work.
        self.transcode_speed = Histogram("onair_transcode_speed", "VOD transcode speed (media s per wall s)",
                                         registry=r, buckets=SPEED_BUCKETS)
        self.transcode_media = Counter("onair_transcode_media_seconds", "Media seconds transcoded", registry=r)
        self.transcode_wall = Counter("onair_transcode_wall_seconds", "Wall seconds spent transcoding", registry=r)
        self.encoder_speed = Gauge("onair_live_encoder_speed", "Live encoder speed (media s per wall s; 0 when "
                                   "the channel is off air)", ["channel"], registry=r, multiprocess_mode="livemax")
        self.live_input = Counter("onair_live_input_bytes", "Bytes received from live publishers", ["channel"],
                                  registry=r)
        # Votes and chat.
        self.vote_batch = Histogram("onair_vote_batch_size", "Votes per committed batch", registry=r,
                                    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000))
        self.vote_commit = Histogram("onair_vote_commit_seconds", "Time to write and commit one vote batch",
                                     registry=r, buckets=LATENCY_BUCKETS)
        self.votes_accepted = Counter("onair_votes_accepted", "Votes recorded", ["result"], registry=r)
        self.votes_refused = Counter("onair_votes_refused", "Votes refused", ["reason"], registry=r)
        self.chat_messages = Counter("onair_chat_messages", "Chat messages posted", ["room", "status"], registry=r)
        self.chat_connections = Gauge("onair_chat_connections", "Open chat WebSockets", ["room"], registry=r,
                                      multiprocess_mode="livesum")
        # Integrations.
        self.webhook_deliveries = Counter("onair_webhook_deliveries", "Webhook delivery attempts", ["outcome"],
                                          registry=r)
        self.webhook_latency = Histogram("onair_webhook_delivery_seconds", "Webhook receiver response time",
                                         registry=r, buckets=LATENCY_BUCKETS)


METRICS = Metrics()


class LabelBudget:
    """At most `limit` distinct values for a label that clients choose (chat rooms are made by posting): the
    rest count as "other", so nobody can grow /metrics and every process's memory without bound."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self.seen:
            return value
        if len(self.seen) >= self.limit:
            return "other"
        self.seen.add(value)
        return value


ROOMS = LabelBudget(200)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_directory: Path | None = None
_created = False   # the per-run directory is ours to remove; one named by the operator is not


def directory() -> Path | None:
    """The multiprocess directory in use, or None when values live in this process only."""
    return _directory or (Path(os.environ[ENV]) if os.environ.get(ENV) else None)


def enable_multiprocess(path: Path | None = None) -> Path:
    """Switch this process (and the children it forks later) to file-backed values in `path` (default: a new
    per-run directory). Call before forking; metrics recorded earlier in this process are dropped."""
    global _directory, _created
    if path is None and os.environ.get(ENV):
        path = Path(os.environ[ENV])  # the operator's (shared with `onair worker` in the same pod, say)
    elif path is None:
        _sweep_orphans(Path(tempfile.gettempdir()))
        path, _created = Path(tempfile.mkdtemp(prefix=PREFIX)), True
        (path / "owner").write_text(str(os.getpid()))
    path.mkdir(parents=True, exist_ok=True)
    clean_dead(path)
    os.environ[ENV] = str(path)  # read by prometheus-client in forked children
    values.ValueClass = values.MultiProcessValue()
    _directory = path
    METRICS.build()
    return path


def disable_multiprocess() -> None:
    """Back to in-memory values; the per-run directory goes if this process made it."""
    global _directory, _created
    path, created, _directory, _created = _directory, _created, None, False
    if created:
        os.environ.pop(ENV, None)
    values.ValueClass = values.MutexValue
    METRICS.build()
    if created and path is not None:
        shutil.rmtree(path, ignore_errors=True)


_PID = re.compile(r"_(\d+)\.db$")
PREFIX = "onair-metrics-"


def _sweep_orphans(parent: Path) -> None:
    """Per-run directories whose server was killed (SIGKILL skips the clean-up) go at the next start."""
    for old in parent.glob(PREFIX + "*"):
        try:
            owner = int((old / "owner").read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being set up
        if not alive(owner):
            shutil.rmtree(old, ignore_errors=True)


def clean_dead(path: Path) -> None:
    """Drop the files of processes that no longer exist (a directory reused from an earlier run)."""
    for f in path.glob("*.db"):
        m = _PID.search(f.name)
        if m and not alive(int(m.group(1))):
            f.unlink(missing_ok=True)


def process_died(pid: int) -> None:
    """A child of this run exited: its live gauges go, its counters stay."""
    path = directory()
    if path is not None:
        multiprocess.mark_process_dead(pid, str(path))


class _Families:
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def exposition(extra: Iterable[Metric] = ()) -> bytes:
    """The text a scrape gets: every process's values (or this one's) plus `extra` families."""
    METRICS.http.flush()  # this process's requests of the current loop turn, the scrape itself included
    path = directory()
    if path is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(METRICS.registry.collect()))  # type: ignore[arg-type]
    else:
        registry = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(registry, str(path))
    registry.register(_Families(extra))  # type: ignore[arg-type]
    return generate_latest(registry)
