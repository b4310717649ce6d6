"""SRT ingest through the bundled ffmpeg: a gatekeeper process listens in SRT listener mode and only remuxes
(`-c copy` to MPEG-TS, no encode). ffmpeg logs the caller's stream id when it accepts; we check the key from that
line and, when it is wrong, kill the gatekeeper within milliseconds (no encoder ever starts) and listen again.

Limitation: ffmpeg's listener takes one caller at a time, so one SRT publisher per SRT port; RTMP has no such
limit. A libsrt listener callback (or a Python SRT front end) would lift it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

import imageio_ffmpeg
from aiohttp import web

from onair.core.settings import SETTINGS
from streaming.live import sessions
from transcode.ffmpeg import die_with_parent

log = logging.getLogger("onair.live.srt")

STREAM_ID = re.compile(rb"accept streamid \[(.*?)\]")
RESTART_SECONDS = 0.5
FIRST_DATA_SECONDS = 15.0   # the gatekeeper probes its input (a few seconds) before its first output byte


def key_from_stream_id(stream_id: str) -> str:
    """`publish:<key>` (our URL form) or the SRT access-control form `#!::r=<key>,m=publish`."""
    if stream_id.startswith("#!::"):
        fields = dict(p.split("=", 1) for p in stream_id[4:].split(",") if "=" in p)
        return fields.get("r", "")
    return stream_id.removeprefix("publish:")


class SrtGatekeeper:
    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self.app, self.host, self.port = app, host, port
        self.task: asyncio.Task[None] | None = None
        self.proc: asyncio.subprocess.Process | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop(), name="live-srt")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task
        await self._kill()

    async def _kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()

    async def _loop(self) -> None:
        while True:
            try:
                await self._one_caller()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live: SRT gatekeeper failed")
            await self._kill()
            await asyncio.sleep(RESTART_SECONDS)

    async def _one_caller(self) -> None:
        ffmpeg = _ffmpeg(self.app)
        url = f"srt://{self.host}:{self.port}?mode=listener&latency=200000"
        self.proc = await asyncio.create_subprocess_exec(
            ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "verbose", "-i", url, "-map", "0",
            "-c", "copy", "-f", "mpegts", "pipe:1", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            # dies with the serving process, even a SIGKILLed one: no listener may outlive it and keep the port
            preexec_fn=die_with_parent)
        assert self.proc.stderr is not None and self.proc.stdout is not None
        stream_id = None
        while line := await self.proc.stderr.readline():
            if m := STREAM_ID.search(line):
                stream_id = m.group(1).decode(errors="replace")
                break
        if stream_id is None:
            return
        outcome = await sessions.accept(self.app, "srt", "live", key_from_stream_id(stream_id))
        if isinstance(outcome, str):
            log.warning("live: SRT caller refused: %s", outcome)
            return
        drain = asyncio.create_task(self._drain_stderr())
        reason = "publisher finished"
        stall = self.app[SETTINGS].live_stall_seconds
        wait = max(stall, FIRST_DATA_SECONDS)
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(self.proc.stdout.read(65536), wait)
                except TimeoutError:
                    reason = f"publisher sent nothing for {wait:g} s"
                    break
                wait = stall
                if not chunk:
                    break
                if outcome.stopped.is_set():
                    reason = "the channel was ended"
                    break
                await outcome.write(chunk)
        except ConnectionError as exc:
            reason = str(exc)
        finally:
            await outcome.close(reason)
            drain.cancel()

    async def _drain_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while await self.proc.stderr.read(65536):
            pass


def _ffmpeg(app: web.Application) -> str:
    return app[SETTINGS].ffmpeg or _bundled()


def _bundled() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


