from __future__ import annotations

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.db.pool import POOL
from onair.core.jobs import enqueue
from onair.core.settings import Settings


async def test_health_ready_and_metrics(client: TestClient, db: asyncpg.Pool) -> None:
    # a queue no worker polls, so the job is still waiting when /metrics counts it
    await enqueue(db, "test.waiting", queue="metrics-test")
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200, await ready.text()
    assert (await ready.json())["checks"] == {"database": "ok", "disk": "ok", "storage": "ok", "bus": "ok"}
    metrics = await (await client.get("/metrics")).text()
    assert "onair_bus_up 1.0" in metrics and "onair_data_dir_free_bytes" in metrics
    assert 'onair_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics
    assert 'onair_job_queue_depth{kind="test.waiting",queue="metrics-test"} 1.0' in metrics
    assert 'onair_http_request_seconds_count{route="/healthz"}' in metrics  # the process's metrics are global


async def test_unknown_route_is_problem_json(client: TestClient) -> None:
    resp = await client.get("/no/such/thing")
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["status"] == 404 and body["title"] and "/no/such/thing" in body["detail"]


async def test_handler_crash_is_500_problem_without_traceback(settings: Settings) -> None:
    app = create_app(settings, settings.database_url or "", run_worker=False)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals")

    app.router.add_get("/boom", boom)
    async with TestClient(TestServer(app)) as c:
        resp = await c.get("/boom")
        assert resp.status == 500
        assert resp.content_type == "application/problem+json"
        text = await resp.text()
        assert "secret internals" not in text and "Traceback" not in text
        body = await resp.json()
        assert body["request_id"] == resp.headers["X-Request-Id"]


async def test_readyz_fails_when_database_is_gone(settings: Settings) -> None:
    app = create_app(settings, settings.database_url or "", run_worker=False)
    async with TestClient(TestServer(app)) as c:
        await app[POOL].close()
        resp = await c.get("/readyz")
        assert resp.status == 503
        assert (await resp.json())["checks"]["database"].startswith("failing")
