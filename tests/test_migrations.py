"""Migrations and the expected schema agree; migrating is repeatable and recorded."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from onair.core.db.migrate import available, migrate
from onair.core.db.snapshot import describe

SNAPSHOT = Path(__file__).resolve().parent.parent / "onair" / "core" / "db" / "schema.txt"


async def test_fresh_migrate_gives_the_expected_schema(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        actual = await describe(conn)
    finally:
        await conn.close()
    assert actual == SNAPSHOT.read_text(), (
        "schema differs from onair/core/db/schema.txt; if the change is intended regenerate it with "
        "`python -m onair.core.db.snapshot <dsn of an empty db> > onair/core/db/schema.txt`")


async def test_migrate_again_is_a_no_op_and_every_file_is_recorded(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        assert await migrate(conn) == []
        recorded = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
    finally:
        await conn.close()
    assert recorded == [m.version for m in available()]


def test_migration_files_are_uniquely_numbered() -> None:
    versions = [m.version for m in available()]
    assert len(versions) == len(set(versions)) and all(v.isdigit() and len(v) == 4 for v in versions)
