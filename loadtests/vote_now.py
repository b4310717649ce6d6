"""Vote now: N viewers sit on the results (polling), the presenter says "vote now", everyone votes within
~10 s, then everyone watches the results.

Needs LOADTEST_POLL_ID and LOADTEST_OPTION_IDS (comma-separated), an open poll (run.py seeds it).
Counters: votes_acknowledged (201 first vote), votes_repeat (200), votes_rejected (other).
"""

from __future__ import annotations

import random
import time

import gevent
from _shared import COUNTERS, DURATION, USERS, elapsed, env_float, env_str, jitter, mint_device
from locust import LoadTestShape, constant, task
from locust.contrib.fasthttp import FastHttpUser

POLL_ID = env_str("POLL_ID")
OPTION_IDS = [o for o in env_str("OPTION_IDS").split(",") if o]
RAMP = env_float("RAMP", max(2.0, DURATION * 0.25))     # viewers arrive and idle on the results
CALL_AT = env_float("CALL_AT", RAMP + 2.0)                # "vote now!"
# Everyone votes within ~10 s of the call; shorter runs squeeze the window so all votes land in time.
VOTE_WINDOW = env_float("VOTE_WINDOW", min(10.0, max(1.0, (DURATION - CALL_AT) * 0.5)))
IDLE_POLL = env_float("IDLE_POLL", 5.0)                   # results polling before the call (s)
WATCH_POLL = env_float("WATCH_POLL", 2.0)                 # results polling after voting (s)


class Viewer(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.voted = False
        self.device_id = mint_device(self.client)
        self.vote_at = CALL_AT + jitter(VOTE_WINDOW)

    def results(self) -> None:
        self.client.get(f"/api/v1/polls/{POLL_ID}/results", name="GET /api/v1/polls/{id}/results")

    @task
    def watch(self) -> None:
        now = elapsed()
        if not self.voted and self.device_id and now >= self.vote_at:
            self.vote()
            return
        self.results()
        if self.voted:
            pause = WATCH_POLL * random.uniform(0.5, 1.5)
        else:
            pause = min(IDLE_POLL * random.uniform(0.5, 1.5), max(self.vote_at - elapsed(), 0.0))
        gevent.sleep(pause)

    def vote(self) -> None:
        self.voted = True
        body = {"device_id": self.device_id, "option_id": random.choice(OPTION_IDS)}
        with self.client.post(f"/api/v1/polls/{POLL_ID}/votes", json=body, name="POST /api/v1/polls/{id}/votes",
                              catch_response=True) as resp:
            if resp.status_code == 201:
                COUNTERS["votes_acknowledged"] += 1
                COUNTERS[f"ack_at_{int(time.time())}"] += 1  # per wall-clock second: the peak rate
            elif resp.status_code == 200:
                COUNTERS["votes_repeat"] += 1
            else:
                COUNTERS["votes_rejected"] += 1
                resp.failure(f"vote: {resp.status_code}")


class VoteNowShape(LoadTestShape):
    """Ramp viewers in, hold them through the call and the results, stop at DURATION."""

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        if t >= DURATION:
            return None
        return USERS, max(USERS / RAMP, 1.0)
