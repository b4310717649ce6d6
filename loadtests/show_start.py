"""Show start: thousands of players start within seconds and fetch the HLS master playlist, one media
playlist, its init segment and the first segments — through the cache in front of the origin.

Point --host (or LOADTEST_TARGET for run.py) at the cache (deploy/nginx), not at onair, to measure what
viewers get. Needs LOADTEST_ASSET_ID (a ready asset). Counters: cache_<STATUS> per response, from
X-Cache-Status (nginx) / X-Cache / CF-Cache-Status. Target: >= 99.5 % cache hits.
"""

from __future__ import annotations

import random
from urllib.parse import urljoin

import gevent
from _shared import COUNTERS, DURATION, USERS, cache_status, elapsed, env_float, env_int, env_str, jitter
from locust import LoadTestShape, constant, task
from locust.contrib.fasthttp import FastHttpUser

ASSET_ID = env_str("ASSET_ID")
RAMP = env_float("RAMP", max(2.0, DURATION * 0.2))
START_AT = env_float("START_AT", RAMP)     # the show starts: every player presses play
START_WINDOW = env_float("START_WINDOW", 5.0)
SEGMENTS = env_int("SEGMENTS", 3)          # first segments a player buffers before it plays


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _join(base: str, ref: str) -> str:
    # Resolve like a player does (RFC 3986): playlists point at shared CMAF segments via "../cmaf/...".
    return urljoin(base, ref)


class Player(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.play_at = START_AT + jitter(START_WINDOW)
        self.done = False

    def fetch(self, path: str, name: str) -> str | None:
        with self.client.get(path, name=name, catch_response=True) as resp:
            status = cache_status(resp.headers)
            COUNTERS[f"cache_{status or 'NONE'}"] += 1
            if resp.status_code != 200:
                resp.failure(f"{name}: {resp.status_code}")
                return None
            return resp.text if path.endswith((".m3u8", ".mpd")) else ""

    @task
    def play(self) -> None:
        if self.done:
            gevent.sleep(max(DURATION - elapsed(), 0.1))
            return
        wait = self.play_at - elapsed()
        if wait > 0:
            gevent.sleep(wait)
        self.done = True
        master_path = f"/media/{ASSET_ID}/hls/master.m3u8"
        master = self.fetch(master_path, "master.m3u8")
        if not master:
            return
        variants = [line for line in _lines(master) if not line.startswith("#")]
        if not variants:
            return
        # Players start low and climb: favour the lowest rungs.
        variant = _join(master_path, variants[min(int(random.expovariate(1.0)), len(variants) - 1)])
        playlist = self.fetch(variant, "media playlist")
        if not playlist:
            return
        for line in _lines(playlist):
            if line.startswith("#EXT-X-MAP:") and 'URI="' in line:
                self.fetch(_join(variant, line.split('URI="', 1)[1].split('"', 1)[0]), "init segment")
        segments = [line for line in _lines(playlist) if not line.startswith("#")][:SEGMENTS]
        for seg in segments:
            self.fetch(_join(variant, seg), "segment")


class ShowStartShape(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        if self.get_run_time() >= DURATION:
            return None
        return USERS, max(USERS / RAMP, 1.0)
