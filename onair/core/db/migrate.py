"""Ordered plain-SQL migrations, each applied once in its own transaction and recorded."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources

import asyncpg

log = logging.getLogger("onair.core.db")

# Any fixed number works; it only has to be the same for every process running migrations.
_LOCK_ID = 0x0A1A


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available() -> list[Migration]:
    folder = resources.files("onair.core.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version, _, slug = entry.name[:-4].partition("_")
            found.append(Migration(version, slug, entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def fingerprint() -> str:
    """Changes whenever any migration changes; tests key their template database on it."""
    digest = hashlib.sha256()
    for m in available():
        digest.update(m.version.encode() + m.checksum.encode())
    return digest.hexdigest()[:12]


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply pending migrations; safe to call from many processes at once (advisory lock)."""
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())""")
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        done = {r["version"]: r["checksum"] for r in rows}
        applied = []
        for m in available():
            if m.version in done:
                if done[m.version] != m.checksum:
                    log.warning("migration %s_%s changed after it was applied", m.version, m.name)
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                                   m.version, m.name, m.checksum)
            log.info("applied migration %s_%s", m.version, m.name)
            applied.append(f"{m.version}_{m.name}")
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)


async def migrate_url(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()
