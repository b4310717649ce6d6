"""Request logs: one JSON line per request from a real `onair serve` (request id, route, status, duration, who
asked); X-Request-Id in and out; the id travels into the jobs the request enqueued and the webhooks they send."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.settings import Settings
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.helpers import spawn_server
from tests.test_polls import new_device, new_poll
from tests.test_webhooks import Receiver, subscribe


def _access_lines(output: str) -> list[dict]:
    lines = []
    for line in output.splitlines():
        if line.startswith("{"):
            doc = json.loads(line)
            if doc.get("logger") == "onair.access":
                lines.append(doc)
    return lines


def test_one_json_line_per_request_with_its_id(tmp_path: Path, database_url: str) -> None:
    env = {"ONAIR_DATABASE_URL": database_url, "ONAIR_ADMIN_TOKEN": ADMIN_TOKEN, "ONAIR_LOG_FORMAT": "json",
           "ONAIR_LOG_LEVEL": "INFO"}
    with spawn_server(tmp_path / "data", env) as server:
        sent = urllib.request.Request(server.url + "/api/v1/polls?limit=5",
                                      headers={"X-Request-Id": "cue-17", "Authorization": f"Bearer {ADMIN_TOKEN}"})
        with urllib.request.urlopen(sent, timeout=10) as resp:
            assert resp.headers["X-Request-Id"] == "cue-17"
        with urllib.request.urlopen(server.url + "/healthz", timeout=10) as resp:
            made = resp.headers["X-Request-Id"]
        assert re.fullmatch(r"[0-9a-f]{32}", made)
        bad = urllib.request.Request(server.url + "/healthz", headers={"X-Request-Id": "x" * 300})
        with urllib.request.urlopen(bad, timeout=10) as resp:
            assert resp.headers["X-Request-Id"] != "x" * 300  # unusable ids are replaced, not echoed

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(_access_lines(server.output())) < 3:
            time.sleep(0.1)
        lines = _access_lines(server.output())
    by_id = {d["request_id"]: d for d in lines}
    first = by_id["cue-17"]
    assert first["route"] == "/api/v1/polls" and first["path"] == "/api/v1/polls" and first["status"] == 200
    assert first["method"] == "GET" and first["duration_ms"] >= 0 and first["user"] == "admin-token"
    assert by_id[made]["route"] == "/healthz" and "user" not in by_id[made]
    assert len([d for d in lines if d["route"] == "/healthz"]) == 2, "one line per request"


@pytest.fixture
async def hooks(settings: Settings) -> AsyncIterator[tuple[TestClient, Receiver, str]]:
    """The app allowed to call a receiver on loopback, and that receiver."""
    rec = Receiver()
    receiving = web.Application()
    receiving.router.add_post("/hook", rec.handle)
    fast = settings.with_(allow_private_urls=True)
    async with TestClient(TestServer(receiving, host="127.0.0.1")) as hook, \
            TestClient(TestServer(create_app(fast, fast.database_url or ""))) as client:
        yield client, rec, str(hook.make_url("/hook"))


async def test_request_id_reaches_jobs_and_webhook_deliveries(hooks: tuple[TestClient, Receiver, str],
                                                              db: asyncpg.Pool) -> None:
    hooked, rec, url = hooks
    await subscribe(hooked, url, ["poll.opened"])
    poll = await new_poll(hooked)
    resp = await hooked.post(f"/api/v1/polls/{poll['id']}/open", headers={**ADMIN, "X-Request-Id": "opening-1"})
    assert resp.status == 200 and resp.headers["X-Request-Id"] == "opening-1"
    await asyncio.wait_for(rec.arrived.wait(), 30)
    headers, body = rec.accepted()[0]
    assert body["type"] == "poll.opened"
    assert headers["x-request-id"] == "opening-1"
    # The event job (enqueued by the request) and the delivery job (enqueued by that job) both carry it.
    kinds = {r["kind"] for r in await db.fetch("SELECT kind FROM jobs WHERE request_id = 'opening-1'")}
    assert kinds == {"events.published", "webhooks.deliver"}, kinds

    device = await new_device(hooked)
    voted = await hooked.post(f"/api/v1/polls/{poll['id']}/votes", json={"device_id": device, "option_id": 1})
    assert voted.status == 201 and re.fullmatch(r"[0-9a-f]{32}", voted.headers["X-Request-Id"])



async def test_access_log_errors_mode_keeps_failures_and_drops_the_rest(settings: Settings, caplog) -> None:
    caplog.set_level(logging.INFO, logger="onair.access")
    quiet = settings.with_(access_log="errors")
    async with TestClient(TestServer(create_app(quiet, quiet.database_url or "", run_worker=False))) as client:
        ok = await client.get("/healthz")
        missing = await client.get("/api/v1/assets/nope", headers=ADMIN)
    assert ok.status == 200 and missing.status == 404
    lines = [r for r in caplog.records if r.name == "onair.access"]
    assert [(r.status, r.request_id) for r in lines] == [(404, missing.headers["X-Request-Id"])]
