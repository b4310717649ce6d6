from __future__ import annotations

import os
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.auth import admin_required, admin_token
from onair.core.settings import Settings
from tests.conftest import ADMIN


def test_generated_admin_token_is_private_and_stable(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d")
    token, created = admin_token(settings)
    assert created and len(token) >= 32
    assert os.stat(tmp_path / "d" / "admin_token").st_mode & 0o777 == 0o600
    assert admin_token(settings) == (token, False)


async def test_admin_routes_need_the_token(settings: Settings) -> None:
    app = create_app(settings, settings.database_url or "", run_worker=False)

    @admin_required
    async def secret(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app.router.add_post("/api/v1/admin-only", secret)
    async with TestClient(TestServer(app)) as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
            resp = await c.post("/api/v1/admin-only", headers=headers)
            assert resp.status == 401 and resp.content_type == "application/problem+json"
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        ok = await c.post("/api/v1/admin-only", headers=ADMIN)
        assert ok.status == 200


def test_processes_racing_to_create_a_secret_all_read_the_same_one(tmp_path: Path) -> None:
    """N web processes start at once: none may read a half-written (empty) secret."""
    import multiprocessing

    from onair.core.auth import signing_key

    settings = Settings(data_dir=tmp_path / "race")
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(8) as pool:
        keys = pool.map(signing_key, [settings] * 64)
    assert len(set(keys)) == 1 and len(keys[0]) >= 32
    assert (tmp_path / "race" / "signing_key").read_bytes().strip() == keys[0]
    assert [p.name for p in (tmp_path / "race").iterdir()] == ["signing_key"]  # no temp files left
