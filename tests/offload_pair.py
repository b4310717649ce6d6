"""The three parties of every offload test: onair answering directly, onair in offload mode, and the deploy/nginx
offload site in front of the latter, so each request can be asked of both and the answers compared."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.settings import Settings
from tests.nginx_cdn import nginx_binary, running_nginx
from tests.tools import missing


@asynccontextmanager
async def offload_pair(settings: Settings, nginx_dir: Path, seed: Callable[[web.Application], Awaitable[None]], *,
                       site: str, offload: dict[str, Any] | None = None, objects: Path | None = None,
                       edit: Callable[[str, str], str] | None = None
                       ) -> AsyncIterator[tuple[TestClient, TestClient, str]]:
    """(onair direct, onair offload, nginx's base URL); `seed` publishes the assets through the direct app,
    `offload` holds the offload app's extra settings."""
    binary = nginx_binary()
    if binary is None:
        missing("nginx", "apt-get install nginx-light  (or nginx)")
    direct_app = create_app(settings, settings.database_url or "", run_worker=False)
    offload_app = create_app(dataclasses.replace(settings, origin_offload="nginx", **(offload or {})),
                             settings.database_url or "", run_worker=False)
    async with TestClient(TestServer(direct_app, host="127.0.0.1")) as direct, \
            TestClient(TestServer(offload_app, host="127.0.0.1")) as offloaded:
        await seed(direct_app)
        origin = str(offloaded.make_url("")).rstrip("/").removeprefix("http://")
        with running_nginx(binary, nginx_dir, origin, site=site, objects=objects, edit=edit) as edge:
            yield direct, offloaded, edge
