"""Where one vote's time goes: cProfile over votes sent to an in-process onair (real PostgreSQL, real TCP),
bucketed into HTTP parse, JSON decode + validation, device-id HMAC, handler, batching, commit, response.

`python -m bench.vote_profile [votes]` prints the breakdown; bench/bench_interaction.py stores it in
bench/results/interaction.json. The client is raw asyncio streams writing prebuilt requests (its own share is
reported apart). Function-call counts per vote are exact and machine-independent; the time shares are cProfile
self time (a busy shared machine stretches them all alike; waiting for PostgreSQL shows as `wait`).

Needs PostgreSQL: ONAIR_BENCH_DATABASE_URL, else ONAIR_TEST_DATABASE_URL, else
postgresql://postgres@127.0.0.1:5432/postgres (a scratch database is created and dropped).
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp.test_utils import TestServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import profile_buckets, raw_http  # noqa: E402
from onair.app import create_app  # noqa: E402
from onair.core import memory  # noqa: E402
from onair.core.db.migrate import migrate_url  # noqa: E402
from onair.core.settings import Settings  # noqa: E402
from streaming.interaction import devices  # noqa: E402

KEY = "bench-signing-key"
TOKEN = "bench-admin-token"
CONNECTIONS = 32

# (bucket, substrings of "file:function") -- first match wins; order matters.
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("client", ("vote_profile.py", "raw_http.py")),
    ("device_hmac", ("interaction/devices.py", "hmac.py", "_hashlib", "base64", "binascii", "compare_digest")),
    ("json_decode_validation", ("pydantic", "validate_json", "read_json", "check_storable", "json/decoder",
                                "json.decoder", "errors.py:read_json")),
    ("commit", ("asyncpg", "ballots.py", "tallies.py")),
    ("batching", ("vote_batcher.py",)),
    ("response", ("web_response.py", "http_writer.py", "json/encoder", "json.encoder", "_json.encode",
                  "json/__init__.py:dumps", "helpers.py", "'write' of", "transports")),
    ("http_parse", ("http_parser.py", "_http_parser", "web_protocol.py", "web_request.py", "multidict",
                    "yarl", "streams.py", "base_protocol.py")),
    ("handler_middleware_routing", ("poll_routes.py", "polls.py", "web_urldispatcher.py", "web_app.py",
                                    "web_middlewares.py", "onair/core/", "live_state.py", "bounded.py",
                                    "prometheus_client", "logging", "contextvars")),
    ("wait", ("select.epoll", "'poll' of", "selectors.py")),
    ("event_loop", ("asyncio", "events.py", "base_events.py", "futures", "tasks")),
)


def _pg_url() -> str:
    return (os.environ.get("ONAIR_BENCH_DATABASE_URL") or os.environ.get("ONAIR_TEST_DATABASE_URL")
            or "postgresql://postgres@127.0.0.1:5432/postgres")


def _requests(host: str, poll_id: str, ids: list[str]) -> list[bytes]:
    out = []
    for i, d in enumerate(ids):
        body = json.dumps({"device_id": d, "option_id": 1 + i % 3}).encode()
        out.append(f"POST /api/v1/polls/{poll_id}/votes HTTP/1.1\r\nHost: {host}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return out


async def _profile(dsn: str, data_dir: Path, votes: int) -> dict[str, Any]:
    await migrate_url(dsn)
    settings = Settings(data_dir=data_dir, database_url=dsn, admin_token=TOKEN, signing_key=KEY,
                        log_level="WARNING", log_format="text")
    app = create_app(settings, dsn, run_worker=False)
    async with TestServer(app, host="127.0.0.1") as server:
        base = str(server.make_url("")).rstrip("/")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=auth) as s:
            async with s.post(f"{base}/api/v1/polls", json={"question": "Profile?", "options": ["a", "b", "c"]}) as r:
                poll = await r.json()
            async with s.post(f"{base}/api/v1/polls/{poll['id']}/open") as r:
                assert r.status < 300, await r.text()
        ids = [devices.issue(KEY.encode()) for _ in range(votes + 500)]
        host = f"127.0.0.1:{server.port}"
        await raw_http.send_all(server.port, _requests(host, poll["id"], ids[:500]), CONNECTIONS)  # warm-up
        measured = _requests(host, poll["id"], ids[500:])
        memory.settle_heap()  # as `onair serve` does once started
        prof = cProfile.Profile()
        prof.enable()
        statuses = await raw_http.send_all(server.port, measured, CONNECTIONS)
        prof.disable()
        async with aiohttp.ClientSession(headers=auth) as s, \
                s.get(f"{base}/api/v1/polls/{poll['id']}/results") as r:
            tally = (await r.json())["total"]
    return {
        "votes": votes, "connections": CONNECTIONS, "statuses": statuses, "tally_after": tally,
        "tally_exact": tally == votes + 500 and statuses.get(201, 0) == votes,
        **profile_buckets.breakdown(prof, BUCKETS, votes, "vote", top=40),
        "method": "cProfile over the server's event loop (in-process, real TCP and PostgreSQL); shares are of "
                  "profiled server self time, excluding the raw-socket client and epoll waits",
    }


async def _database(server: str, name: str, drop: bool) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' if drop else f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def profile(votes: int = 3000) -> dict[str, Any]:
    server = _pg_url()
    name = f"onair_vprof_{uuid.uuid4().hex[:8]}"
    asyncio.run(_database(server, name, drop=False))
    try:
        with tempfile.TemporaryDirectory(prefix="onair-vprof-") as tmp:
            return asyncio.run(_profile(server.rpartition("/")[0] + "/" + name, Path(tmp) / "data", votes))
    finally:
        asyncio.run(_database(server, name, drop=True))


if __name__ == "__main__":
    print(json.dumps(profile(int(sys.argv[1]) if len(sys.argv) > 1 else 3000), indent=2))
