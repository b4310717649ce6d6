"""The HTTP metrics written once per loop turn read exactly as if each request had been written on its own."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from onair.core.http_meter import HttpMeter
from onair.core.metrics import LATENCY_BUCKETS

SECONDS = [0.0004, 0.001, 0.001, 0.003, 0.07, 0.1, 0.3, 2.0, 11.0]  # on a bound, between, past the last one


def _metrics(registry: CollectorRegistry) -> tuple[Counter, Histogram, Gauge, Counter]:
    return (Counter("onair_http_requests", "r", ["method", "route", "status"], registry=registry),
            Histogram("onair_http_request_seconds", "l", ["route"], registry=registry, buckets=LATENCY_BUCKETS),
            Gauge("onair_http_in_flight", "f", registry=registry),
            Counter("onair_origin_responses", "o", ["status"], registry=registry))


async def test_batched_requests_read_as_one_by_one() -> None:
    by_hand, batched = CollectorRegistry(), CollectorRegistry()
    requests, latency, _, origin = _metrics(by_hand)
    for s in SECONDS:
        requests.labels("GET", "/media/{asset_id}/{path}", "200").inc()
        latency.labels("/media/{asset_id}/{path}").observe(s)
        origin.labels("200").inc()
    meter = HttpMeter(*_metrics(batched), LATENCY_BUCKETS)
    for _ in SECONDS:
        meter.begin()
    await _after_scheduled_callbacks()  # the loop turn's flush
    assert b"onair_http_in_flight 9.0" in generate_latest(batched)
    for s in SECONDS:
        meter.end("GET", "/media/{asset_id}/{path}", 200, s, True)
    await _after_scheduled_callbacks()
    assert _samples(batched) == _samples(by_hand)  # counts, sums, every bucket; in flight back to 0


async def _after_scheduled_callbacks() -> None:
    """Resume once every callback scheduled so far (the meter's flush) has run: call_soon runs in order."""
    done = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(done.set_result, None)
    await done


def _samples(registry: CollectorRegistry) -> list[bytes]:
    return [line for line in generate_latest(registry).split(b"\n") if b"_created" not in line]
