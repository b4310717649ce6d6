"""Shared test helpers: one asset factory (through the catalogue's own functions), one way to start
`onair serve` in a child process, and (re-exported) one free-port helper."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from streaming import catalog
from streaming.catalog.repository import CREATABLE, PATCHABLE
from tests.tools import free_port

ROOT = Path(__file__).resolve().parent.parent

# What the transcoder leaves in `outputs` for a small two-rung ladder.
OUTPUTS: dict[str, Any] = {
    "hls": "hls/master.m3u8", "dash": "dash/manifest.mpd",
    "video": [{"name": "360p", "width": 640, "height": 360, "bitrate": 800000, "codecs": "avc1.64001e",
               "frame_rate": 25.0},
              {"name": "720p", "width": 1280, "height": 720, "bitrate": 2400000, "codecs": "avc1.64001f",
               "frame_rate": 25.0}],
    "audio": {"codecs": "mp4a.40.2", "bitrate": 128000, "channels": 2, "sample_rate": 48000},
    "poster": "images/poster.jpg",
    "thumbnails": [{"width": 320, "height": 180, "key": "images/thumb-320.jpg"},
                   {"width": 640, "height": 360, "key": "images/thumb-640.jpg"}],
    "storyboard": {"vtt": "images/storyboard.vtt", "image": "images/storyboard.jpg"},
    "captions": [{"lang": "en", "label": "English", "key": "captions/en.vtt"}],
}


async def make_asset(db: asyncpg.Pool | asyncpg.Connection, asset_id: str | None = None, *,
                     title: str = "Harbour fire", status: str = "ready", outputs: dict[str, Any] | None = None,
                     duration: float | None = 3.0, error: str = "transcode failed", created: datetime | None = None,
                     progress: float = 0.0, **fields: Any) -> str:
    """An asset as the pipeline would leave it, written by the catalogue (the table's only writer).

    `status` is queued, a stage of a running job (with `progress`), ready or failed; `fields` are any creatable
    or patchable column (rights, visibility, embed_origins, tags, credit, ...); `created` backdates it.
    """
    asset_id = asset_id or catalog.new_asset_id()
    create = {k: v for k, v in fields.items() if k in CREATABLE}
    patch = {k: v for k, v in fields.items() if k not in create}
    unknown = patch.keys() - set(PATCHABLE)
    if unknown:
        raise TypeError(f"make_asset: unknown fields {sorted(unknown)}")
    await catalog.create_asset(db, asset_id, title=title, description=patch.pop("description", ""),
                               tags=patch.pop("tags", ()), **create)
    if status == "ready":
        await catalog.mark_ready(db, asset_id, {}, OUTPUTS if outputs is None else outputs, duration)
    elif status == "failed":
        await catalog.mark_failed(db, asset_id, error)
    elif status in catalog.ACTIVE_STAGES:
        await _running(db, asset_id, status, progress)
    elif status != "queued":
        raise ValueError(f"make_asset: status {status!r} is not queued, a running stage, ready or failed")
    if patch:
        await catalog.update_asset(db, asset_id, patch)
    if created is not None:
        await _backdate(db, asset_id, created)
    return asset_id


async def _running(db: asyncpg.Pool | asyncpg.Connection, asset_id: str, stage: str, progress: float) -> None:
    # In the system only the asset's own transcode job moves it to a stage (catalog.record_progress); a test that
    # needs "transcoding 40%" without running ffmpeg sets it here, like _backdate below.
    await db.execute("UPDATE assets SET status = $2, progress = $3 WHERE id = $1", asset_id, stage, progress)


async def _backdate(db: asyncpg.Pool | asyncpg.Connection, asset_id: str, when: datetime) -> None:
    # The catalogue stamps now(); paging and feed tests need a known past. Tests write `assets` only here and above.
    await db.execute("""UPDATE assets SET created_at = $2::timestamptz, updated_at = $2,
                               ready_at = CASE WHEN ready_at IS NULL THEN NULL ELSE $2::timestamptz END
                         WHERE id = $1""", asset_id, when)


_SERVERS = itertools.count(1)   # one log file per server object, even on the same port and data dir


class OnairServer:
    """One `onair serve` child process: its own port, data dir and log file (stdout and stderr together).

    The environment is the test's minus every ONAIR_* variable, plus `env`; the child leads its own process
    group, so `stop()` can reap the web processes a supervisor forked even when the supervisor died first.
    """

    def __init__(self, data_dir: Path, env: Mapping[str, str] | None = None, *,
                 args: tuple[str, ...] = ("--no-sample",), port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.args = args
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ONAIR_")}
        # Tests play many viewers from 127.0.0.1: the per-address minting and chat limits are off unless a test
        # sets them (tests/test_devices.py does), as in conftest's `settings`.
        self.env.update({"PYTHONPATH": str(ROOT), "ONAIR_DATA_DIR": str(data_dir), "ONAIR_HOST": "127.0.0.1",
                         "ONAIR_PORT": str(self.port), "ONAIR_LOG_FORMAT": "text", "ONAIR_DEVICE_MINT_PER_IP": "0",
                         "ONAIR_DEVICE_MINT_PER_SUBNET": "0", "ONAIR_CHAT_IP_MESSAGES": "0", **(env or {})})
        self.log = data_dir.parent / f"{data_dir.name}-serve-{self.port}-{next(_SERVERS)}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self) -> OnairServer:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:   # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen([sys.executable, "-m", "onair.cli", "serve", *self.args], cwd=ROOT,
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def _check_running(self) -> None:
        assert self.proc is not None, "start() first"
        if self.proc.poll() is not None:
            raise AssertionError(f"onair serve exited with {self.proc.returncode}:\n{self.output()[-4000:]}")

    def wait_ready(self, timeout: float = 60.0) -> OnairServer:
        """Poll /readyz (database, storage and bus answer) until 200."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_running()
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop(signal.SIGKILL, 10)   # a test that fails here must not leave a server behind
                raise AssertionError(f"onair serve not ready after {timeout}s:\n{self.output()[-4000:]}")
            time.sleep(0.1)

    async def ready(self, timeout: float = 60.0) -> OnairServer:
        return await asyncio.to_thread(self.wait_ready, timeout)

    def wait_for_output(self, text: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            self._check_running()
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the server log after {timeout}s:\n{self.output()[-4000:]}")
            time.sleep(0.1)

    def kill9(self) -> None:
        """SIGKILL the supervisor only (a crash), as the OOM killer would."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 40.0) -> int | None:
        """Send `sig` and wait for the exit code; past `timeout`, SIGKILL the server's process group."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        if self.proc.poll() is None or self.proc.returncode < 0:
            # hung, or killed earlier (kill9): reap what it forked. A clean exit is left alone, so a test
            # can still see what a clean stop leaves behind.
            with contextlib.suppress(ProcessLookupError):   # only this server's own group, nothing else
                os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(10)

    def __enter__(self) -> OnairServer:
        return self.start().wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def spawn_server(data_dir: Path, env: Mapping[str, str] | None = None, *, args: tuple[str, ...] = ("--no-sample",),
                 port: int | None = None, timeout: float = 60.0) -> Iterator[OnairServer]:
    """A ready `onair serve` for the length of the block; stopped with SIGTERM after."""
    server = OnairServer(data_dir, env, args=args, port=port)
    server.start()
    try:
        server.wait_ready(timeout)
        yield server
    finally:
        server.stop()
