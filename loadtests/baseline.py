"""Baseline: the cheapest requests onair serves (/healthz, /readyz with its DB round trip). Not a live
event: the reference that the other scenarios and the scaling benchmark are compared with, and the
scenario that needs nothing but the foundation (a quick check that the load harness itself works)."""

from __future__ import annotations

from _shared import DURATION, USERS
from locust import LoadTestShape, constant, task
from locust.contrib.fasthttp import FastHttpUser


class Prober(FastHttpUser):
    wait_time = constant(0)

    @task(4)
    def healthz(self) -> None:
        self.client.get("/healthz", name="GET /healthz")

    @task(1)
    def readyz(self) -> None:
        self.client.get("/readyz", name="GET /readyz")


class BaselineShape(LoadTestShape):
    def tick(self) -> tuple[int, float] | None:
        if self.get_run_time() >= DURATION:
            return None
        return USERS, max(USERS / 2.0, 1.0)
