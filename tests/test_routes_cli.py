"""`onair routes`: the whole route table, one line per method and path, sorted, with who may call each."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app, route_table
from onair.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_routes_command_prints_the_sorted_table_without_touching_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    out = subprocess.run([sys.executable, "-m", "onair.cli", "routes"], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                                        "ONAIR_DATA_DIR": str(data_dir)}, timeout=60).stdout
    rows = [line.split() for line in out.splitlines()]
    assert all(len(r) == 4 for r in rows), out
    assert [(r[1], r[0]) for r in rows] == sorted((r[1], r[0]) for r in rows)
    assert ["POST", "/api/v1/assets", "assets:write", "streaming.ingest.routes.create"] in rows
    assert ["GET", "/api/v1/partner/assets", "partner:assets:read", "syndication.feeds.routes.api_search"] in rows
    assert ["GET", "/oembed", "public", "syndication.embed.routes.oembed_view"] in rows
    assert ["GET", "/media/{asset_id}/tok/{token}/{key}", "token", "streaming.delivery.routes.signed_media"] in rows
    assert not data_dir.exists(), "listing routes must not create secrets or a database"


SAMPLES = {"file": "atom.xml"}   # parameters whose pattern a placeholder would not match


def _fill(path: str) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: SAMPLES.get(m.group(1), "x1"), path)


async def test_the_permission_column_is_what_the_server_enforces(settings: Settings) -> None:
    """Every route that names a permission (a role's, a partner scope, a signed-in user's own) refuses a caller
    without credentials (401); only "public", "token" (a signed URL in the path) and "public|..." routes answer."""
    open_to_all = ("public", "token")
    guarded = [r for r in route_table(settings)
               if r.permission not in open_to_all and not r.permission.startswith("public|")]
    assert len(guarded) > 30
    async with TestClient(TestServer(create_app(settings, settings.database_url or "", run_worker=False))) as c:
        for route in guarded:
            resp = await c.request(route.method, _fill(route.path))
            assert resp.status == 401, (route, resp.status)
