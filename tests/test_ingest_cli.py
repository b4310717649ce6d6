"""A real `onair serve` (which ingests its sample clip on first start) and `onair ingest PATH` against it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import ADMIN
from tests.helpers import OnairServer
from tests.ingest_tools import make_clip

ROOT = Path(__file__).resolve().parent.parent


def get(url: str) -> dict:
    req = urllib.request.Request(url, headers=ADMIN)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_serve_ingests_a_sample_and_cli_ingest_reports_ready(settings, tmp_path):
    server = OnairServer(settings.data_dir, {"ONAIR_DATABASE_URL": settings.database_url,
                                             "ONAIR_ADMIN_TOKEN": settings.admin_token,
                                             "ONAIR_SIGNING_KEY": settings.signing_key}, args=())
    env, port = server.env, server.port
    clip = make_clip(tmp_path / "My clip.mp4", size="320x180", seconds=2)
    server.start()
    try:
        # the banner comes after the first-start hooks (the sample clip is queued by then)
        server.wait_for_output("onair is serving")
        done = subprocess.run([sys.executable, "-m", "onair.cli", "ingest", str(clip), "--title", "From the CLI"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
        assert "ready" in done.stdout and f"http://127.0.0.1:{port}/media/" in done.stdout
        asset_id = done.stdout.split()[1]
        assert get(f"http://127.0.0.1:{port}/api/v1/assets/{asset_id}")["title"] == "From the CLI"
        # the sample clip was queued on first start (empty library) and is tagged as such
        items = get(f"http://127.0.0.1:{port}/api/v1/assets?tag=sample")["items"]
        assert len(items) == 1 and items[0]["status"] in ("queued", "probing", "transcoding", "packaging", "ready")
        assert "sample clip" in server.output()
        bad = subprocess.run([sys.executable, "-m", "onair.cli", "ingest", str(tmp_path / "missing.mp4")],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and "not a file" in bad.stderr
    finally:
        server.stop()
