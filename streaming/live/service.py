"""The ingest listeners (RTMP; SRT in srt.py), started in the process once a channel exists, so an instance
without channels opens no ports."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from onair.core.db.pool import POOL
from onair.core.settings import SETTINGS
from streaming.live import channels, rtmp, sessions, srt

log = logging.getLogger("onair.live")


class LiveIngest:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.rtmp: asyncio.Server | None = None
        self.srt: srt.SrtGatekeeper | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.lock = asyncio.Lock()

    async def ensure_started(self) -> None:
        async with self.lock:
            settings = self.app[SETTINGS]
            if self.rtmp is not None or settings.live_ingest == "off":
                return
            host = settings.live_ingest_host or settings.host
            try:
                self.rtmp = await asyncio.start_server(self._rtmp_client, host, settings.live_rtmp_port)
                log.info("live: RTMP ingest on rtmp://%s:%d/live/<key>", host, settings.live_rtmp_port)
            except OSError as exc:
                log.warning("live: RTMP port %d unavailable (%s); another process serves ingest",
                            settings.live_rtmp_port, exc)
                return
            self.srt = srt.SrtGatekeeper(self.app, host, settings.live_srt_port)
            self.srt.start()

    async def _rtmp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            await rtmp.serve(reader, writer, lambda app_name, key: sessions.accept(self.app, "rtmp", app_name, key),
                             self.app[SETTINGS].live_stall_seconds)
        finally:
            self.tasks.discard(task)

    async def stop(self) -> None:
        if self.rtmp is not None:
            self.rtmp.close()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.srt is not None:
            await self.srt.stop()


LIVE_INGEST = web.AppKey("live_ingest", LiveIngest)


async def _startup(app: web.Application) -> None:
    ingest = app[LIVE_INGEST]
    mode = app[SETTINGS].live_ingest
    with contextlib.suppress(Exception):  # no database yet is not our problem to report here
        if mode == "on" or (mode == "auto" and await channels.any_channel(app[POOL])):
            await ingest.ensure_started()


async def _cleanup(app: web.Application) -> None:
    await app[LIVE_INGEST].stop()


def setup(app: web.Application) -> None:
    app[LIVE_INGEST] = LiveIngest(app)
    app.on_startup.append(_startup)
    app.on_cleanup.append(_cleanup)
