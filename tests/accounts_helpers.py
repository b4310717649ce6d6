"""Users for tests: created through the owning module, with a known password (not one-time)."""

from __future__ import annotations

import re

import asyncpg
from aiohttp.test_utils import TestClient

from onair.core.accounts import users

PASSWORD = "correct horse battery"


async def make_user(db: asyncpg.Pool, name: str, role: str) -> None:
    await users.create(db, name, role)
    await users.set_password(db, name, PASSWORD)


async def login(client: TestClient, name: str, password: str = PASSWORD, **headers: str) -> str:
    """Log in through the studio form like a browser; returns the session's CSRF token (the client keeps
    the cookie)."""
    resp = await client.post("/studio/login", data={"name": name, "password": password},
                             allow_redirects=False, headers=headers)
    assert resp.status == 303, await resp.text()
    page = await (await client.get("/studio/")).text()
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert found, page
    return found.group(1)
