"""A wrong S3 secret: `onair serve` starts, says clearly at start-up what is wrong, and stays not ready
(load balancers and Kubernetes keep traffic away) until the configuration is fixed."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import ADMIN_TOKEN
from tests.helpers import OnairServer
from tests.s3_server import ACCESS_KEY


def test_wrong_secret_logs_clearly_and_is_not_ready(tmp_path: Path, database_url: str, s3_endpoint: str) -> None:
    env = {"ONAIR_DATABASE_URL": database_url, "ONAIR_ADMIN_TOKEN": ADMIN_TOKEN, "ONAIR_STORAGE": "s3",
           "ONAIR_S3_ENDPOINT": s3_endpoint, "ONAIR_S3_BUCKET": "refused", "ONAIR_S3_ACCESS_KEY_ID": ACCESS_KEY,
           "ONAIR_S3_SECRET_ACCESS_KEY": "not-the-secret"}
    server = OnairServer(tmp_path / "data", env, args=("--no-sample",))
    server.start()
    try:
        server.wait_for_output("object storage refuses our requests", timeout=60)
        line = next(ln for ln in server.output().splitlines() if "object storage refuses" in ln)
        assert "SignatureDoesNotMatch" in line and "ONAIR_S3_SECRET_ACCESS_KEY" in line and ACCESS_KEY in line
        assert "not-the-secret" not in server.output(), "the secret itself is never logged"
        deadline, status, body = time.monotonic() + 30, 0, {}
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(server.url + "/readyz", timeout=5) as resp:
                    status, body = resp.status, json.loads(resp.read())
            except urllib.error.HTTPError as err:
                status, body = err.code, json.loads(err.read())
                break
            except OSError:
                time.sleep(0.1)  # not listening yet
        assert status == 503 and body["type"] == "/problems/not-ready", body
        assert body["checks"]["storage"] == "failing: StorageRefused" and body["checks"]["database"] == "ok"
        with urllib.request.urlopen(server.url + "/healthz", timeout=5) as resp:
            assert resp.status == 200  # alive (no restart loop), just not ready
    finally:
        server.stop()
