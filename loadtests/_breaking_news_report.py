"""The breaking-news figures that locust cannot see: what the cache did (nginx's own log, $upstream_cache_status per
request), how often each object reached the origin, how long after a part was written each blocking reload was
answered, and what onair's memory did while it held those reloads.

Sources: an extra nginx access log (`nginx_extra`), the part objects' write times in the server's local object store,
the (msn, part, sent, answered) records the players write (breaking_news.py) and RSS samples of onair's processes.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG_FORMAT = "onair_edge"
LINE = re.compile(r'^(?P<msec>[\d.]+) (?P<rt>[\d.]+) "(?P<urt>[^"]*)" (?P<cache>\S+) (?P<status>\d+) "(?P<uri>[^"]*)"$')
PART = re.compile(r"/(\d{6})\.(\d+)\.m4s$")
PARSE = re.compile(r"_HLS_msn=(\d+)&_HLS_part=(\d+)")


NOTE = ("Measured on one machine that runs the encoder, onair, nginx and locust together: on a 2-core box the answer "
        "times and failures measure locust's single core (parsing playlists, scheduling 2,000 greenlets) as much as "
        "onair; run it on 16 cores (locust --processes) for onair's own figures. Blocking reloads pass nginx's cache "
        "uncollapsed (no cache lock on playlists, deploy/nginx/onair-cdn.conf): each crowd at the live edge is held "
        "at the origin as idle coroutines, so origin requests per blocking reload are up to one per waiting player "
        "by design, parts and segments one per cache.")


def nginx_extra(log: Path) -> str:
    """http{} lines for tests/nginx_cdn.py: one line per request with its cache status and upstream time."""
    return (f"log_format {LOG_FORMAT} '$msec $request_time \"$upstream_response_time\" $upstream_cache_status "
            f"$status \"$request_uri\"';\n    access_log {log} {LOG_FORMAT};")


def kind(uri: str) -> str:
    path, _, query = uri.partition("?")
    if path.endswith(".m3u8"):
        return "blocking reload" if "_HLS_msn=" in query else "playlist"
    if PART.search(path):
        return "part"
    if re.search(r"/\d{6}\.m4s$", path):
        return "segment"
    return "init segment" if path.endswith(".mp4") else "other"


@dataclass
class EdgeLine:
    at: float            # when nginx finished the response (epoch s)
    took: float          # $request_time
    upstream: float | None   # $upstream_response_time: None when the origin was not asked
    cache: str
    status: int
    uri: str


def read_edge_log(path: Path) -> list[EdgeLine]:
    lines = []
    for raw in path.read_text().splitlines() if path.exists() else []:
        m = LINE.match(raw)
        if m is None:
            continue
        urt = [float(v) for v in re.findall(r"[\d.]+", m["urt"])]
        lines.append(EdgeLine(float(m["msec"]), float(m["rt"]), sum(urt) if urt else None, m["cache"],
                              int(m["status"]), m["uri"]))
    return lines


def parts_written(data_dir: Path | None, channel_id: str) -> dict[tuple[str, int, int], float]:
    """(track, msn, part) -> when the part object was written (its mtime; the local store renames it into place)."""
    written: dict[tuple[str, int, int], float] = {}
    if data_dir is None:
        return written
    for path in (data_dir / "objects" / "live" / channel_id).glob("e*/cmaf/*/*.*.m4s"):
        m = PART.search("/" + path.name)
        if m:
            written[(path.parent.name, int(m[1]), int(m[2]))] = path.stat().st_mtime
    return written


def answered_after(written: dict[tuple[str, int, int], float], track: str, msn: int, part: int,
                   sent: float, answered: float) -> float | None:
    """Seconds from the moment the part existed (or the request was sent, if later) to the answer. A hint past a
    segment's last part is answered by part 0 of the next segment."""
    at = written.get((track, msn, part), written.get((track, msn + 1, 0)) if part > 0 else None)
    return None if at is None else answered - max(at, sent)


def percentiles(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    values = sorted(values)

    def q(p: float) -> float:
        return round(1000 * values[min(len(values) - 1, int(p * len(values)))], 1)

    return {"n": len(values), "p50_ms": q(0.50), "p95_ms": q(0.95), "p99_ms": q(0.99),
            "max_ms": round(1000 * values[-1], 1)}


class RssSampler(threading.Thread):
    """RSS of onair's Python processes (the serve supervisor and its web processes; not ffmpeg) every 0.25 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.samples, self._halt = pid, [], threading.Event()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = defaultdict(list)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children[int(fields[1])].append(int(stat.parent.name))
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += children.get(pid, [])
        return found

    def rss(self) -> int:
        total = 0
        for pid in self._tree():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            name = re.search(r"^Name:\s*(\S+)", status, re.MULTILINE)
            rss = re.search(r"^VmRSS:\s*(\d+) kB", status, re.MULTILINE)
            if name and rss and name[1].startswith(("python", "onair")):
                total += int(rss[1]) * 1024
        return total

    def run(self) -> None:
        while not self._halt.wait(0.25):
            self.samples.append((time.time(), self.rss()))

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


def read_held(counters_dir: Path) -> list[tuple[str, int, int, float, float]]:
    held: list[tuple[str, int, int, float, float]] = []
    for path in counters_dir.glob("held-*.json"):
        held += [tuple(r) for r in json.loads(path.read_text())]
    return held


def _held_at(intervals: list[tuple[float, float]], at: float) -> int:
    return sum(1 for start, end in intervals if start <= at <= end)


def report(edge: list[EdgeLine], held: list[tuple[str, int, int, float, float]],
           written: dict[tuple[str, int, int], float], track: str, baseline_rss: int,
           samples: list[tuple[float, int]]) -> dict[str, Any]:
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    origin_per_object: dict[str, Counter[str]] = defaultdict(Counter)
    objects: dict[str, set[str]] = defaultdict(set)
    for line in edge:
        k = kind(line.uri)
        by_kind[k][line.cache] += 1
        objects[k].add(line.uri)
        if line.upstream is not None:
            origin_per_object[k][line.uri] += 1
    cache = {k: {"requests": sum(c.values()), "by_status": dict(c),
                 "hit_ratio": round(c["HIT"] / sum(c.values()), 5)} for k, c in by_kind.items()}
    media = by_kind["part"] + by_kind["segment"]
    per_object = {k: {"objects": len(objects[k]), "origin_requests": sum(origin_per_object[k].values()),
                      "max_per_object": max(origin_per_object[k].values(), default=0),
                      "mean_per_object": round(sum(origin_per_object[k].values()) / max(len(objects[k]), 1), 3)}
                  for k in by_kind}

    def delays(rows: list[tuple[int, int, float, float]]) -> list[float]:
        out = [answered_after(written, track, *row) for row in rows]
        return [d for d in out if d is not None]

    blocking = [(line, PARSE.search(line.uri)) for line in edge if kind(line.uri) == "blocking reload"]
    blocking = [(line, int(m[1]), int(m[2])) for line, m in blocking if m and line.status == 200]
    nginx_rows = {
        "all": [(msn, part, line.at - line.took, line.at) for line, msn, part in blocking],
        "MISS (answered by the origin)": [(msn, part, line.at - line.took, line.at)
                                          for line, msn, part in blocking if line.upstream is not None],
    }
    answer = {
        "origin, direct (probe players)": percentiles(delays([r[1:] for r in held if r[0] == "origin"])),
        "cache, at the players (locust)": percentiles(delays([r[1:] for r in held if r[0] == "cache"])),
        **{f"cache, at nginx: {name}": percentiles(delays(rows)) for name, rows in nginx_rows.items()},
    }

    # Held at the origin: blocking reloads nginx passed through (from when nginx sent them to the answer) and the
    # probe players' own.
    intervals = [(line.at - line.upstream, line.at) for line, *_ in blocking if line.upstream is not None]
    intervals += [(r[3], r[4]) for r in held if r[0] == "origin"]
    memory: dict[str, Any] = {"baseline_rss_mb": round(baseline_rss / 2**20, 1)}
    if samples and intervals:
        counted = [(_held_at(intervals, at), rss) for at, rss in samples]
        peak_held, rss_then = max(counted)
        memory.update(peak_rss_mb=round(max(r for _, r in samples) / 2**20, 1), peak_held_at_origin=peak_held,
                      rss_at_peak_held_mb=round(rss_then / 2**20, 1),
                      kb_per_held_request=round((rss_then - baseline_rss) / 1024 / peak_held, 1) if peak_held else None)
    return {
        "cache": cache,
        "parts_and_segments_hit_ratio": round(media["HIT"] / sum(media.values()), 5) if media else None,
        "origin_requests_per_object": per_object,
        "blocking_reload_answered_after_part": answer,
        "memory": memory,
        "statuses": dict(Counter(line.status for line in edge)),
    }

