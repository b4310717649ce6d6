"""Where one origin segment request's time goes in direct mode (the (a) column of bench_origin.py): cProfile over
GETs of a 41 KB segment from an in-process onair (real PostgreSQL, real TCP), bucketed like bench/vote_profile.py.

`python -m bench.origin_profile [requests]`; bench/bench_origin.py stores it in bench/results/origin.json.
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

from aiohttp.test_utils import TestServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import profile_buckets, raw_http  # noqa: E402
from bench.vote_profile import _database, _pg_url  # noqa: E402
from onair.app import create_app  # noqa: E402
from onair.core.db.migrate import migrate_url  # noqa: E402
from onair.core.db.pool import POOL  # noqa: E402
from onair.core.settings import Settings  # noqa: E402
from onair.core.storage import STORE  # noqa: E402
from tests.helpers import make_asset  # noqa: E402
from tests.origin_media import OUTPUTS  # noqa: E402

CONNECTIONS = 32
ASSET = "profile21"
KEY = "hls/seg_0.m4s"

BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("client", ("origin_profile.py", "raw_http.py")),
    ("origin_decisions", ("delivery/origin.py", "delivery/access.py", "delivery/caching.py",
                          "delivery/conditional.py", "delivery/signing.py", "catalog", "bounded.py", "clock.py")),
    ("read_file", ("'read' of '_io", "io.open", "'seek' of", "_io.open", "pathlib")),
    ("response", ("web_response.py", "http_writer.py", "helpers.py", "'write' of", "transports")),
    ("http_parse", ("http_parser.py", "_http_parser", "web_protocol.py", "web_request.py", "multidict", "yarl",
                    "streams.py", "base_protocol.py")),
    ("middleware_routing", ("web_urldispatcher.py", "web_app.py", "web_middlewares.py", "onair/core/",
                            "prometheus_client", "logging", "contextvars", "routes.py")),
    ("wait", ("select.epoll", "'poll' of", "selectors.py")),
    ("event_loop", ("asyncio", "events.py", "base_events.py", "futures", "tasks")),
)


async def _get_all(port: int, path: str, count: int) -> dict[int, int]:
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    return await raw_http.send_all(port, [req] * count, CONNECTIONS)


async def _profile(dsn: str, tmp: Path, count: int) -> dict[str, Any]:
    await migrate_url(dsn)
    settings = Settings(data_dir=tmp / "data", database_url=dsn, signing_key="k", log_level="WARNING",
                        log_format="text")
    app = create_app(settings, dsn, run_worker=False)
    async with TestServer(app, host="127.0.0.1") as server:
        await make_asset(app[POOL], ASSET, title="Profile", status="ready", outputs=OUTPUTS, duration=None)
        seg = tmp / "seg.m4s"
        seg.write_bytes(os.urandom(41186))
        await app[STORE].put_file(f"assets/{ASSET}/{KEY}", seg)
        path = f"/media/{ASSET}/{KEY}"
        await _get_all(server.port, path, 300)  # warm-up
        prof = cProfile.Profile()
        prof.enable()
        statuses = await _get_all(server.port, path, count)
        prof.disable()
    return {
        "requests": count, "statuses": statuses,
        **profile_buckets.breakdown(prof, BUCKETS, count, "request"),
        "method": "cProfile over the server's event loop (in-process, real TCP); shares of profiled server self "
                  "time, excluding the raw-socket client and epoll waits",
    }


def profile(count: int = 3000) -> dict[str, Any]:
    server = _pg_url()
    name = f"onair_oprof_{uuid.uuid4().hex[:8]}"
    asyncio.run(_database(server, name, drop=False))
    try:
        with tempfile.TemporaryDirectory(prefix="onair-oprof-") as tmp:
            return asyncio.run(_profile(server.rpartition("/")[0] + "/" + name, Path(tmp), count))
    finally:
        asyncio.run(_database(server, name, drop=True))


if __name__ == "__main__":
    print(json.dumps(profile(int(sys.argv[1]) if len(sys.argv) > 1 else 3000), indent=2))
