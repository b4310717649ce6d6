"""A frozen database (SIGSTOP) must not make requests hang: they answer 503 + Retry-After within the bounded
waits, /readyz says the database is failing, and service resumes by itself when the database thaws.

Fault: every process of a private embedded PostgreSQL (postmaster and backends) is SIGSTOPped for DB_STALL
seconds. Stated bounds: each request answers within db_statement_timeout + db_acquire_timeout + 1 s; reads
succeed again <= 5 s after SIGCONT."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.db.embedded import EmbeddedPostgres
from onair.core.db.migrate import migrate
from onair.core.settings import Settings
from tests.conftest import ADMIN
from tests.faults.params import DB_STALL

RECOVERY_SECONDS = 5.0
ACQUIRE, STATEMENT = 1.0, 2.0


@pytest.fixture(scope="module")
def private_pg() -> Iterator[EmbeddedPostgres]:
    """An embedded PostgreSQL of our own: freezing the shared one would stall the other tests."""
    with tempfile.TemporaryDirectory(prefix="onair-fault-pg-") as tmp:
        os.chmod(tmp, 0o755)  # as root the server runs as `nobody`, which must reach its data dir
        pg = EmbeddedPostgres(Path(tmp) / "pg", database="postgres")
        pg.start()
        yield pg
        pg.stop()


def _tree(pid: int) -> list[int]:
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return pids
    for child in children:
        pids += _tree(int(child))
    return pids


def signal_server(pg: EmbeddedPostgres, sig: signal.Signals) -> None:
    assert pg._proc is not None
    for pid in _tree(pg._proc.pid):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


async def _timed_get(client: TestClient, path: str) -> tuple[int, float, dict[str, str]]:
    start = time.monotonic()
    resp = await client.get(path, headers=ADMIN)
    await resp.read()
    return resp.status, time.monotonic() - start, dict(resp.headers)


async def test_frozen_database_answers_503_fast_and_recovers(private_pg: EmbeddedPostgres, tmp_path: Path,
                                                              fault_report) -> None:
    dsn = private_pg.dsn.rpartition("/")[0] + "/onair_stall"
    admin = await asyncpg.connect(private_pg.dsn)
    await admin.execute("DROP DATABASE IF EXISTS onair_stall")
    await admin.execute("CREATE DATABASE onair_stall")
    await admin.close()
    conn = await asyncpg.connect(dsn)
    await migrate(conn)
    await conn.close()
    settings = Settings(data_dir=tmp_path / "data", database_url=dsn, admin_token=ADMIN["Authorization"][7:],
                        signing_key="k", log_format="text", db_pool_size=3, db_acquire_timeout=ACQUIRE,
                        db_statement_timeout=STATEMENT)
    async with TestClient(TestServer(create_app(settings, dsn, run_worker=False))) as c:
        assert (await _timed_get(c, "/api/v1/assets"))[0] == 200
        signal_server(private_pg, signal.SIGSTOP)
        thaw_at = time.monotonic() + DB_STALL
        try:
            # More requests than pool connections: some wait on a stuck statement, others for a connection.
            results = await asyncio.gather(*(_timed_get(c, "/api/v1/assets") for _ in range(6)),
                                           _timed_get(c, "/readyz"))
            bound = STATEMENT + ACQUIRE + 1.0
            for status, took, headers in results:
                assert status == 503, (status, took)
                assert took <= bound, f"answered after {took:.1f}s; bound {bound}s"
                assert "Retry-After" in headers or headers.get("Content-Type", "").startswith("application/")
            assert all(int(h["Retry-After"]) > 0 for s, _, h in results[:-1])
            print(f"frozen db: {len(results)} requests answered 503 in <= {max(t for _, t, _ in results):.2f}s")
            await asyncio.sleep(max(0.0, thaw_at - time.monotonic()))
        finally:
            signal_server(private_pg, signal.SIGCONT)
        thawed = time.monotonic()
        while True:
            status, _, _ = await _timed_get(c, "/api/v1/assets")
            if status == 200:
                break
            assert status == 503
            assert time.monotonic() - thawed < RECOVERY_SECONDS, "reads did not recover after the thaw"
            await asyncio.sleep(0.1)
        recovered = time.monotonic() - thawed
        print(f"frozen db {DB_STALL:.0f}s: reads OK {recovered:.2f}s after SIGCONT")
        fault_report(f"postgres SIGSTOP {DB_STALL:.0f}s", "6 API reads + /readyz during the stall",
                     statuses={503: len(results)}, recovery_seconds=recovered, bound_seconds=RECOVERY_SECONDS)
        assert (await _timed_get(c, "/readyz"))[0] == 200
