"""The library's live view: one server-sent event stream per studio page carrying every asset that changed
(progress, status, a new upload, an edit by a colleague), however many rows the page shows.

The stream reads `assets.updated_at` rather than a bus: progress is written by transcode workers in other
processes, and the row is the truth whichever process wrote it. One indexed query a second per open library
page is cheap next to a request per row.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

from aiohttp import web

from onair.core.auth import requires
from onair.core.db.pool import POOL
from onair.core.lifecycle import Stopping, unless_stopping
from onair.core.metrics import METRICS
from onair.core.web import base_url
from streaming import catalog

INTERVAL = 1.0  # seconds between looks: progress bars move about once a second, like the transcoder reports it
HEARTBEAT = 15.0  # a comment line now and then, so proxies keep an idle stream open
# updated_at is the writer's transaction start: a transaction that commits late carries an older time, so each
# look reaches this far back and skips what it has already sent.
OVERLAP = timedelta(seconds=10)


class _Seen:
    """What this stream has sent (id -> updated_at), forgetting what fell behind the overlap."""

    def __init__(self) -> None:
        self.sent: dict[str, datetime] = {}

    def fresh(self, asset: catalog.Asset) -> bool:
        if self.sent.get(asset.id) == asset.updated_at:
            return False
        self.sent[asset.id] = asset.updated_at
        return True

    def forget_before(self, cutoff: datetime) -> None:
        self.sent = {k: v for k, v in self.sent.items() if v >= cutoff}


@requires("assets:read")
async def stream(request: web.Request) -> web.StreamResponse:
    pool = request.app[POOL]
    since: datetime = await pool.fetchval("SELECT now()")  # the database's clock: it is the one updated_at uses
    seen = _Seen()
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    gauge = METRICS.connections.labels("sse")
    gauge.inc()
    base = base_url(request)
    quiet = 0.0
    try:
        await resp.write(b"retry: 2000\n\n")
        while True:
            try:
                await unless_stopping(request.app, asyncio.sleep(INTERVAL))
            except Stopping:  # the EventSource reconnects (retry: 2000) to a process that stays
                break
            changed = await catalog.changed_since(pool, since - OVERLAP)
            sent = False
            for asset in changed:
                if seen.fresh(asset):
                    body = json.dumps(catalog.asset_json(asset, base))
                    await resp.write(f"event: asset\ndata: {body}\n\n".encode())
                    sent = True
            if changed:
                since = max(since, changed[-1].updated_at)
                seen.forget_before(since - OVERLAP)
            quiet = 0.0 if sent else quiet + INTERVAL
            if quiet >= HEARTBEAT:
                await resp.write(b": keep-alive\n\n")
                quiet = 0.0
    except ConnectionResetError:
        pass
    finally:
        gauge.dec()
    return resp


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/catalog/events", stream, name="assets-changes")
