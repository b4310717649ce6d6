"""Backup and restore on the embedded defaults: `onair backup` while `onair serve` runs, `onair restore` into a
fresh data dir, and the restored server has the same catalogue, tallies and playable media; a viewer's device
id from before still counts as the same voter (the signing key came along)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from onair.core.db.embedded import running
from onair.core.db.pool import create_pool
from streaming.catalog.repository import media_prefix
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.device_helpers import mint_device
from tests.helpers import ROOT, OnairServer, make_asset

PLAYLIST = b"#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-STREAM-INF:BANDWIDTH=800000\n360p.m3u8\n"


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Not under pytest's 0700 tmp dir: the embedded server runs as `nobody` when we are root.
    path = Path(tempfile.mkdtemp(prefix="onair-backup-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def onair(data_dir: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ONAIR_")}
    env.update(PYTHONPATH=str(ROOT), ONAIR_DATA_DIR=str(data_dir), ONAIR_LOG_FORMAT="text")
    done = subprocess.run([sys.executable, "-m", "onair.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def snapshot(s: aiohttp.ClientSession, server: OnairServer, asset_id: str, poll_id: str) -> dict[str, Any]:
    async with s.get(server.url + "/api/v1/assets", headers=ADMIN) as r:
        listing = await r.json()
    async with s.get(f"{server.url}/api/v1/assets/{asset_id}", headers=ADMIN) as r:
        asset = await r.json()
    async with s.get(f"{server.url}/api/v1/polls/{poll_id}/results") as r:
        results = await r.json()
    async with s.get(f"{server.url}/media/{asset_id}/hls/master.m3u8") as r:
        media = (r.status, await r.read())
    items = listing["items"] if isinstance(listing, dict) else listing
    return {"catalogue": sorted((a["id"], a["title"], a["status"]) for a in items),
            "asset": {k: asset[k] for k in ("id", "title", "status", "duration", "tags")},
            "results": results, "media": media}


async def test_backup_while_serving_then_restore_into_a_fresh_data_dir(workdir: Path) -> None:
    env = {"ONAIR_ADMIN_TOKEN": ADMIN_TOKEN, "ONAIR_LOG_LEVEL": "WARNING"}
    source = OnairServer(workdir / "a", env, args=("--no-sample", "--no-worker")).start()
    restored = None
    try:
        await source.ready(90)
        pool = await create_pool(running(workdir / "a" / "pg") or "", max_size=1)
        try:
            asset_id = await make_asset(pool, title="Harbour fire, evening bulletin", tags=("news",))
        finally:
            await pool.close()
        playlist = workdir / "a" / "objects" / media_prefix(asset_id) / "hls" / "master.m3u8"
        playlist.parent.mkdir(parents=True)
        playlist.write_bytes(PLAYLIST)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as s:
            async with s.post(source.url + "/api/v1/polls", headers=ADMIN,
                              json={"question": "Keep it?", "options": ["yes", "no"]}) as r:
                poll_id = (await r.json())["id"]
            async with s.post(f"{source.url}/api/v1/polls/{poll_id}/open", headers=ADMIN) as r:
                assert r.status == 200
            devices = []
            for i in range(7):
                devices.append(await mint_device(s, source.url))
                async with s.post(f"{source.url}/api/v1/polls/{poll_id}/votes",
                                  json={"device_id": devices[-1], "option_id": 1 + i % 2}) as r:
                    assert r.status == 201
            before = await snapshot(s, source, asset_id, poll_id)
            assert before["results"]["total"] == 7 and before["media"] == (200, PLAYLIST)

            onair(workdir / "a", "backup", str(workdir / "backup"))  # attaches to the running server
            assert (workdir / "backup" / "onair.dump").stat().st_size > 0
            assert source.proc is not None and source.proc.poll() is None, "the backup must not stop serving"
        assert source.stop() == 0

        onair(workdir / "b", "restore", str(workdir / "backup"))
        restored = OnairServer(workdir / "b", env, args=("--no-sample", "--no-worker")).start()
        await restored.ready(90)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as s:
            after = await snapshot(s, restored, asset_id, poll_id)
            assert after == before
            # The same viewer votes again: recognised (the signing key came along), counted once.
            async with s.post(f"{restored.url}/api/v1/polls/{poll_id}/votes",
                              json={"device_id": devices[0], "option_id": 2}) as r:
                assert r.status == 200 and (await r.json())["first"] is False, await r.text()
            async with s.get(f"{restored.url}/api/v1/polls/{poll_id}/results") as r:
                assert (await r.json())["total"] == 7
        # A restore never overwrites a data dir that has a database.
        env_b = {k: v for k, v in os.environ.items() if not k.startswith("ONAIR_")}
        env_b.update(PYTHONPATH=str(ROOT), ONAIR_DATA_DIR=str(workdir / "b"))
        again = subprocess.run([sys.executable, "-m", "onair.cli", "restore", str(workdir / "backup")], cwd=ROOT,
                               env=env_b, capture_output=True, text=True, timeout=60)
        assert again.returncode == 2 and "fresh data dir" in again.stderr
    finally:
        source.stop()
        if restored is not None:
            restored.stop()
