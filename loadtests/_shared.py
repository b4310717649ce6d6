"""Helpers shared by the locustfiles: configuration from the environment, the scenario clock, the
request cap, and scenario counters written to a JSON file for loadtests/run.py's summary.

The locustfiles are plain locust: they run under `make loadtest` (which sets the LOADTEST_* variables
after seeding) or by hand / distributed (`locust -f loadtests/vote_now.py --master`, `--worker`,
`--processes`), with the same variables exported.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import time
from collections import Counter
from pathlib import Path

import gevent
from locust import events
from locust.env import Environment


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(f"LOADTEST_{name}", default)


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(f"LOADTEST_{name}", default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(f"LOADTEST_{name}", default))


USERS = env_int("USERS", 200)
DURATION = env_float("DURATION", 60.0)          # seconds, whole scenario
MAX_REQUESTS = env_int("MAX_REQUESTS", 2_000_000)  # hard cap: the run stops when reached
ADMIN_TOKEN = env_str("ADMIN_TOKEN")
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

COUNTERS: Counter[str] = Counter()
_clock = {"t0": time.monotonic()}
_requests = {"n": 0}


def elapsed() -> float:
    """Seconds since this locust process started the test (each worker keeps its own; close enough)."""
    return time.monotonic() - _clock["t0"]


def jitter(window: float) -> float:
    return random.uniform(0, max(window, 0.0))


@events.test_start.add_listener
def _start(environment: Environment, **_: object) -> None:
    _clock["t0"] = time.monotonic()


@events.request.add_listener
def _cap(**_: object) -> None:
    _requests["n"] += 1
    if _requests["n"] == MAX_REQUESTS:
        env = _ENV.get("env")
        if env is not None and env.runner is not None:
            # From a fresh greenlet: quitting from inside a user's request would kill the caller mid-hook.
            gevent.spawn(env.runner.quit)


_ENV: dict[str, Environment] = {}


@events.init.add_listener
def _init(environment: Environment, **_: object) -> None:
    _ENV["env"] = environment


@events.quitting.add_listener
def _write_counters(environment: Environment, **_: object) -> None:
    # One file per locust process (distributed runs and --processes have several); run.py sums them.
    out = env_str("COUNTERS_DIR")
    if out and COUNTERS:
        path = Path(out) / f"counters-{os.getpid()}.json"
        path.write_text(json.dumps(dict(COUNTERS)))


def cache_status(headers: object) -> str | None:
    """HIT/MISS/... from the cache in front of the origin (nginx $upstream_cache_status or a CDN's header)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    for name in ("X-Cache-Status", "X-Cache", "CF-Cache-Status", "X-Proxy-Cache"):
        value = get(name)
        if value:
            return str(value).split(",")[0].split()[0].upper()
    return None


def _solve(challenge: str, bits: int) -> str:
    """The proof-of-work POST /api/v1/devices asks for: SHA-256("<challenge>:<nonce>") with `bits` zero bits."""
    for n in itertools.count():
        digest = hashlib.sha256(f"{challenge}:{n}".encode()).digest()
        if int.from_bytes(digest[:4], "big") >> (32 - bits) == 0 or bits == 0:
            return str(n)
    raise AssertionError("unreachable")


def mint_device(client) -> str | None:
    """A device id minted as the TV app does: challenge, proof-of-work, then POST /api/v1/devices."""
    with client.get("/api/v1/devices/challenge", name="GET /api/v1/devices/challenge",
                    catch_response=True) as resp:
        if resp.status_code != 200:
            resp.failure(f"challenge: {resp.status_code}")
            return None
        challenge = resp.json()
    body = {"challenge": challenge["challenge"], "nonce": _solve(challenge["challenge"], challenge["bits"])}
    with client.post("/api/v1/devices", json=body, name="POST /api/v1/devices", catch_response=True) as resp:
        if resp.status_code != 201:
            resp.failure(f"device: {resp.status_code}")
            return None
        return resp.json()["device_id"]
