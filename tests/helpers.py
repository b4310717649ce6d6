"""Shared test helpers: one asset factory (through the catalogue's own functions), one way to start
`onair serve` in a child process, and (re-exported) one free-port helper."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
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
                     duration: float | None = 3.0, error: str = "transcode failed", **fields: Any) -> str:
    """An asset as the pipeline would leave it, written by the catalogue (the table's only writer).

    `status` is queued, ready or failed; `fields` are any creatable or patchable column (rights, visibility,
    embed_origins, tags, credit, ...).
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
    elif status != "queued":
        raise ValueError(f"make_asset: status {status!r} is not queued, ready or failed")
    if patch:
        await catalog.update_asset(db, asset_id, patch)
    return asset_id


@dataclass
class Served:
    """A running `onair serve` child: its base URL, process and log file."""

    base: str
    port: int
    proc: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@contextmanager
def spawn_server(data_dir: Path, env: Mapping[str, str] | None = None, *, args: tuple[str, ...] = (),
                 port: int | None = None, timeout: float = 60.0) -> Iterator[Served]:
    """Start `python -m onair.cli serve` on a free port, wait until /healthz answers, stop it (SIGTERM) after."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "ONAIR_DATA_DIR": str(data_dir), "ONAIR_HOST": "127.0.0.1",
                "ONAIR_PORT": str(port), "ONAIR_LOG_FORMAT": "text", **(env or {})}
    log = data_dir / f"serve-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "onair.cli", "serve", *args], env=full_env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    served = Served(f"http://127.0.0.1:{port}", port, proc, log)
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(served.base):
            if proc.poll() is not None:
                raise RuntimeError(f"onair serve exited with {proc.returncode}:\n{served.output()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"onair serve did not answer /healthz in {timeout}s:\n{served.output()}")
            time.sleep(0.1)
        yield served
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
