"""A real `onair serve` (which ingests its sample clip on first start) and `onair ingest PATH` against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import ADMIN
from tests.ingest_tools import make_clip
from tests.tools import free_port

ROOT = Path(__file__).resolve().parent.parent


def get(url: str) -> dict:
    req = urllib.request.Request(url, headers=ADMIN)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_serve_ingests_a_sample_and_cli_ingest_reports_ready(settings, tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ONAIR_DATABASE_URL": settings.database_url,
           "ONAIR_DATA_DIR": str(settings.data_dir), "ONAIR_ADMIN_TOKEN": settings.admin_token,
           "ONAIR_SIGNING_KEY": settings.signing_key, "ONAIR_PORT": str(port), "ONAIR_LOG_FORMAT": "text"}
    clip = make_clip(tmp_path / "My clip.mp4", size="320x180", seconds=2)
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "onair.cli", "serve"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        # the banner comes after the first-start hooks (the sample clip is queued by then)
        while "onair is serving" not in (tmp_path / "serve.log").read_text():
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        done = subprocess.run([sys.executable, "-m", "onair.cli", "ingest", str(clip), "--title", "From the CLI"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        assert "ready" in done.stdout and f"http://127.0.0.1:{port}/media/" in done.stdout
        asset_id = done.stdout.split()[1]
        assert get(f"http://127.0.0.1:{port}/api/v1/assets/{asset_id}")["title"] == "From the CLI"
        # the sample clip was queued on first start (empty library) and is tagged as such
        items = get(f"http://127.0.0.1:{port}/api/v1/assets?tag=sample")["items"]
        assert len(items) == 1 and items[0]["status"] in ("queued", "probing", "transcoding", "packaging", "ready")
        assert "sample clip" in (tmp_path / "serve.log").read_text()
        bad = subprocess.run([sys.executable, "-m", "onair.cli", "ingest", str(tmp_path / "missing.mp4")],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and "not a file" in bad.stderr
    finally:
        server.terminate()
        server.wait(30)
        log.close()
