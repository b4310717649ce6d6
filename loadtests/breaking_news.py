"""Breaking news: LL-HLS players join one live low-latency channel within LOADTEST_JOIN_WINDOW seconds (10 s) through
the cache (deploy/nginx) and follow the live edge with blocking playlist reloads (`_HLS_msn`/`_HLS_part`), fetching
every new part, for LOADTEST_DURATION seconds after the window.

A player: the media playlist once (join), its init segment, the last complete segment (the buffer behind the edge a
player starts from), then forever: a blocking reload for the part the PRELOAD-HINT names, and each part the answer
lists that it has not fetched yet (when more than LOADTEST_CATCH_UP are new, it has fallen behind and skips to the last
ones, counted in catch_ups / parts_skipped_to_catch_up). It follows one rendition (LOADTEST_TRACK, v0), as a player on
one rung does.

Held requests are cheap here: a FastHttpUser is a greenlet on a geventhttpclient socket, so 2,000 players blocked on
reloads cost locust memory, not CPU; what locust spends its core on is parsing playlists and the parts' bytes.

The first LOADTEST_PROBES players go straight to the origin (LOADTEST_ORIGIN) instead of the cache: their reloads
give the origin's own answer time. Every blocking answer is recorded as (via, msn, part, sent, answered) in wall-clock
seconds and written to LOADTEST_COUNTERS_DIR/held-<pid>.json; loadtests/run.py sets them against the time each part
was written. Counters: cache_<kind>_<STATUS> from X-Cache-Status.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from pathlib import Path
from urllib.parse import urljoin

import gevent
from _shared import COUNTERS, DURATION, USERS, cache_status, elapsed, env_float, env_int, env_str, jitter
from locust import LoadTestShape, constant, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment

CHANNEL_ID = env_str("CHANNEL_ID")
TRACK = env_str("TRACK", "v0")
JOIN_WINDOW = env_float("JOIN_WINDOW", 10.0)
END = JOIN_WINDOW + DURATION          # every player follows the edge for at least DURATION seconds
PROBES = env_int("PROBES", 3)
ORIGIN = env_str("ORIGIN")
CATCH_UP = env_int("CATCH_UP", 3)   # more new parts than this in one answer: the player skips to the last ones

PART = re.compile(r'#EXT-X-PART:[^\n]*URI="([^"]+?(\d{6})\.(\d+)\.m4s)"')
HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="[^"]+?(\d{6})\.(\d+)\.m4s"')
MAP = re.compile(r'#EXT-X-MAP:URI="([^"]+)"')
SEGMENT = re.compile(r"^[^#\n][^\n]*\d{6}\.m4s$", re.MULTILINE)

HELD: list[tuple[str, int, int, float, float]] = []   # (via, msn, part, sent, answered), wall clock
_seats = itertools.count()


class Player(FastHttpUser):
    wait_time = constant(0)
    network_timeout = 30.0       # a blocking reload is held at most 3 target durations by the origin
    connection_timeout = 10.0
    concurrency = 2              # one socket for the held reload, one for parts

    def on_start(self) -> None:
        seat = next(_seats)
        self.via = "origin" if seat < PROBES and ORIGIN else "cache"
        self.base = (ORIGIN if self.via == "origin" else "") + f"/live/{CHANNEL_ID}/hls/"
        self.join_at = jitter(JOIN_WINDOW)
        self.next: tuple[int, int] | None = None
        self.fetched: set[str] = set()

    def _get(self, url: str, kind: str) -> str | None:
        with self.client.get(url, name=kind, catch_response=True) as resp:
            if self.via == "cache":
                COUNTERS[f"cache_{kind}_{cache_status(resp.headers) or 'NONE'}"] += 1
            if resp.status_code != 200:
                resp.failure(f"{kind}: {resp.status_code}")
                return None
            return resp.text if kind in ("playlist", "blocking reload") else ""

    def _fetch_new_parts(self, playlist: str, since: tuple[int, int]) -> None:
        new = [uri for uri, seq, idx in PART.findall(playlist)
               if (int(seq), int(idx)) >= since and uri not in self.fetched]
        if len(new) > CATCH_UP:
            # Fallen behind the edge (locust short of CPU): jump back to it as a live player does, rather than
            # fetching a backlog of cache hits while the origin holds nothing.
            COUNTERS["parts_skipped_to_catch_up"] += len(new) - CATCH_UP
            COUNTERS["catch_ups"] += 1
            new = new[-CATCH_UP:]
        for uri in new:
            self.fetched.add(uri)
            self._get(urljoin(self.base, uri), "part")

    def _join(self) -> None:
        wait = self.join_at - elapsed()
        if wait > 0:
            gevent.sleep(wait)
        playlist = self._get(self.base + f"{TRACK}.m3u8", "playlist")
        hint = HINT.search(playlist or "")
        if not playlist or hint is None:
            gevent.sleep(0.5)   # not live yet (or ended): look again
            return
        if (init := MAP.findall(playlist)):
            self._get(urljoin(self.base, init[-1]), "init segment")
        if (segments := SEGMENT.findall(playlist)):
            self._get(urljoin(self.base, segments[-1]), "segment")
        listed = PART.findall(playlist)
        for uri, *_ in listed[-3:]:     # PART-HOLD-BACK is 3 part targets: start three parts behind the edge
            self.fetched.add(uri)
            self._get(urljoin(self.base, uri), "part")
        self.next = (int(hint.group(1)), int(hint.group(2)))

    @task
    def follow(self) -> None:
        if elapsed() >= END:
            gevent.sleep(1.0)
            return
        if self.next is None:
            self._join()
            return
        msn, part = self.next
        sent = time.time()
        playlist = self._get(self.base + f"{TRACK}.m3u8?_HLS_msn={msn}&_HLS_part={part}", "blocking reload")
        answered = time.time()
        hint = HINT.search(playlist or "")
        if hint is None:            # a failure (counted) or the event ended: join again
            self.next = None
            return
        HELD.append((self.via, msn, part, sent, answered))
        self._fetch_new_parts(playlist, (msn, part))
        self.next = (int(hint.group(1)), int(hint.group(2)))
        if len(self.fetched) > 64:  # only the parts near the edge can come again
            self.fetched = {u for u in self.fetched if u in playlist}


@events.quitting.add_listener
def _write_held(environment: Environment, **_: object) -> None:
    out = env_str("COUNTERS_DIR")
    if out and HELD:
        (Path(out) / f"held-{os.getpid()}.json").write_text(json.dumps(HELD, separators=(",", ":")))


class BreakingNewsShape(LoadTestShape):
    """Everyone is spawned at once and each player joins at its own moment within the join window (so the window is
    exact, whatever locust's spawn rate can do on a busy box); the run ends DURATION seconds after the window."""

    def tick(self) -> tuple[int, float] | None:
        if self.get_run_time() >= END:
            return None
        return USERS, float(max(USERS, 1))
