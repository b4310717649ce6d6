"""Accepting a publisher: key check, one publisher per channel, the recording asset, the encoder job, the relay.

The encoder runs as a `transcode.live` job (queue "live") so any worker can take it; it reads the stream from a
loopback relay this process offers for the duration of the publish. Nothing is encoded before the key is
accepted, and a refused publisher leaves neither a process nor a row behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web

from onair.core import job_kinds
from onair.core.db.pool import POOL
from onair.core.jobs import enqueue
from onair.core.settings import SETTINGS
from onair.core.storage import STORE
from streaming import catalog
from streaming.live import channels

log = logging.getLogger("onair.live")

RELAY_BUFFER = 16 * 1024 * 1024   # bytes held while the encoder job starts (about 40 s of a 3 Mb/s stream)
RELAY_WAIT = 30.0                 # an encoder that never connects: give the publisher up
WATCH_SECONDS = 1.0
TOKEN_WAIT = 5.0                  # seconds a relay connection has to present the encoder's token
_BACKGROUND: set[asyncio.Task[None]] = set()


class Relay:
    """TCP server handing one publisher's bytes to one encoder connection: on loopback when the encoder runs in
    this host's worker pool, on the pod's address (ONAIR_LIVE_RELAY_HOST) when any worker pod may claim the
    encoder job. The encoder proves itself with the job's one-time token (first line) before it gets a byte, so
    nothing else that reaches the port can take the stream."""

    def __init__(self, channel_id: str, pool: asyncpg.Pool, host: str = "127.0.0.1") -> None:
        self.channel_id, self.pool, self.host = channel_id, pool, host
        self.token = secrets.token_urlsafe(24)
        self.event_no: int | None = None    # set once the publish is accepted
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.queued = 0
        self.stopped = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.connected = asyncio.Event()
        self.watch: asyncio.Task[None] | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._encoder, self.host, 0)
        self.watch = asyncio.create_task(self._watch())
        return self.server.sockets[0].getsockname()[1]

    async def _encoder(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), TOKEN_WAIT)
        except (TimeoutError, ConnectionError, ValueError):
            line = b""
        if self.connected.is_set() or not hmac.compare_digest(line.strip(), self.token.encode()):
            log.warning("live %s: refused a relay connection without the encoder's token", self.channel_id)
            writer.close()
            return
        self.connected.set()
        try:
            while (chunk := await self.queue.get()) is not None:
                self.queued -= len(chunk)
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            self.stopped.set()
        finally:
            writer.close()

    async def _watch(self) -> None:
        """End the publish when the encoder never comes or the channel is ended from the API."""
        started = asyncio.get_running_loop().time()
        while not self.stopped.is_set():
            await asyncio.sleep(WATCH_SECONDS)
            if not self.connected.is_set() and asyncio.get_running_loop().time() - started > RELAY_WAIT:
                log.warning("live %s: no encoder took the stream within %.0f s", self.channel_id, RELAY_WAIT)
                self.stopped.set()
            with contextlib.suppress(Exception):
                ch = await channels.get_channel(self.pool, self.channel_id)
                if ch is None or ch.status not in channels.ON_AIR:
                    self.stopped.set()

    async def write(self, data: bytes) -> None:
        if self.queued + len(data) > RELAY_BUFFER:
            self.stopped.set()
            raise ConnectionError("the encoder is not keeping up with the publisher")
        self.queued += len(data)
        self.queue.put_nowait(data)

    async def close(self, reason: str) -> None:
        log.info("live %s: publisher gone (%s)", self.channel_id, reason)
        if self.event_no is not None and not self.stopped.is_set():
            # before the encoder sees its input end, so its on_done finds the reason
            with contextlib.suppress(Exception):
                await channels.note_ingest_reason(self.pool, self.channel_id, self.event_no, reason)
        self.stopped.set()
        self.queue.put_nowait(None)
        if self.watch is not None:
            self.watch.cancel()
        if self.server is not None:
            self.server.close()


async def accept(app: web.Application, protocol: str, app_name: str, key: str) -> Relay | str:
    """Check the key and take the channel for this publisher; a string is the refusal reason."""
    pool = app[POOL]
    if protocol == "rtmp" and app_name != "live":
        log.warning("live: refused RTMP publish to unknown application %r", app_name)
        return "unknown application (use rtmp://HOST:PORT/live/<stream key>)"
    channel = await channels.channel_by_key(pool, key) if key else None
    if channel is None:
        log.warning("live: refused %s publish with an unknown or rotated stream key", protocol)
        return "unknown or rotated stream key"
    relay = Relay(channel.id, pool, app[SETTINGS].live_relay_host)
    port = await relay.start()
    try:
        async with pool.acquire() as conn, conn.transaction():
            claimed = await channels.claim_publish(conn, channel.id, protocol)
            if claimed is None:
                log.warning("live %s: refused a second publisher", channel.id)
                await relay.close("refused")
                return "the channel already has a publisher"
            ch, new_event = claimed
            asset_id = ch.recording_asset if not new_event else None
            if new_event and ch.record:
                asset_id = catalog.new_asset_id()
                stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
                # The recording inherits the channel's rights (and visibility) as they are when the event starts.
                r = ch.rights
                await catalog.create_asset(conn, asset_id, title=f"{ch.title} (live {stamp})", status="uploading",
                                           available_from=r.available_from, available_until=r.available_until,
                                           geo_allow=list(r.geo_allow), geo_deny=list(r.geo_deny),
                                           visibility=ch.visibility)
            payload = {**_payload(app, ch, asset_id, protocol, port, relay), "resumed": not new_event}
            job_id = await enqueue(conn, job_kinds.TRANSCODE_LIVE, payload, queue="live", priority=0,
                                   max_attempts=1, on_done=job_kinds.LIVE_ENCODER_DONE)
            await channels.set_run(conn, ch.id, job_id, asset_id)
        relay.event_no = ch.event_no
    except BaseException:
        await relay.close("refused")
        raise
    log.info("live %s: %s publisher accepted (event %d, %s)", ch.id, protocol,
             ch.event_no, "new event" if new_event else "reconnect")
    if new_event and ch.event_no > 1:
        task = asyncio.create_task(_drop_event_media(app, ch.id, ch.event_no - 1))
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)
    return relay


async def _drop_event_media(app: web.Application, channel_id: str, event_no: int) -> None:
    """A new event replaces the channel's playlists: the previous unrecorded event's segments (its DVR tail) are
    unreachable now. A recorded event's segments live in its asset and stay."""
    try:
        await app[STORE].delete_prefix(f"{channels.live_prefix(channel_id)}e{event_no}/")
    except Exception:
        log.warning("live %s: could not delete event %d's segments", channel_id, event_no, exc_info=True)


def state_key(channel_id: str, event_no: int) -> str:
    """The event timeline, outside the public prefixes (the origin never serves it)."""
    return f"live-state/{channel_id}/e{event_no}.json"


def _payload(app: web.Application, ch: channels.Channel, asset_id: str | None, protocol: str,
             port: int, relay: Relay) -> dict[str, Any]:
    settings = app[SETTINGS]
    if asset_id:  # recorded: segments go straight into the recording asset, so it needs no copy at the end
        media_prefix, media_url = catalog.media_prefix(asset_id), f"/media/{asset_id}/"
    else:
        media_prefix, media_url = f"{channels.live_prefix(ch.id)}e{ch.event_no}/", f"../e{ch.event_no}/"
    return {"channel_id": ch.id, "event": ch.event_no, "relay_host": relay.host, "relay_port": port,
            "relay_token": relay.token,
            "format": "flv" if protocol == "rtmp" else "mpegts", "media_prefix": media_prefix,
            "media_url": media_url, "live_prefix": channels.live_prefix(ch.id),
            "state_key": state_key(ch.id, ch.event_no), "segment_seconds": settings.live_segment_seconds,
            "dvr_seconds": ch.dvr_seconds, "max_height": settings.live_max_height, "preset": settings.live_preset,
            "poster_seconds": settings.live_poster_seconds,
            "utc_timing": f"{settings.base_url}/api/v1/time", "asset_id": asset_id,
            "latency": ch.latency, "part_seconds": settings.live_part_seconds}
