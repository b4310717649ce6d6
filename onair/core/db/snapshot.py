"""A plain-text picture of the schema (tables, columns, indexes, constraints) for the migrations test.

Regenerate after adding a migration: `python -m onair.core.db.snapshot DSN > onair/core/db/schema.txt`
(the DSN of an empty database; it is migrated first).
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg

from onair.core.db.migrate import migrate


async def describe(conn: asyncpg.Connection) -> str:
    lines: list[str] = []
    for r in await conn.fetch(
            """SELECT table_name, column_name, data_type, is_nullable, column_default
               FROM information_schema.columns WHERE table_schema = 'public'
               ORDER BY table_name, ordinal_position"""):
        default = r["column_default"] or ""
        if "nextval(" in default:
            default = "serial"
        nullable = " null" if r["is_nullable"] == "YES" else " not null"
        suffix = f" default {default}" if default else ""
        lines.append(f"column {r['table_name']}.{r['column_name']} {r['data_type']}{nullable}{suffix}")
    for r in await conn.fetch(
            """SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
               ORDER BY tablename, indexname"""):
        lines.append(f"index {r['tablename']}.{r['indexname']}: {r['indexdef']}")
    for r in await conn.fetch(
            """SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def
               FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND contype <> 'n' ORDER BY 1, 2"""):
        lines.append(f"constraint {r['tbl']}.{r['conname']}: {r['def']}")
    return "\n".join(lines) + "\n"


async def _main(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        sys.stdout.write(await describe(conn))
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1]))
