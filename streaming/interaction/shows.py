"""Shows: a programme's page and what is attached to it (live channel, chat room, HbbTV app, polls).

The one writer of the `shows` table. Polls point at their show (`polls.show_slug`, written by polls.py);
the channel, room and app are named by id, so this module needs none of their internals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
ATTACHABLE = ("title", "description", "schedule", "live_channel", "chat_room", "hbbtv_app")


@dataclass(frozen=True)
class Show:
    slug: str
    title: str
    description: str
    schedule: str
    live_channel: str | None
    chat_room: str | None
    hbbtv_app: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Show:
        return cls(**dict(row))

    @property
    def room(self) -> str:
        """The show's chat room: the attached one, else one named after the show."""
        return self.chat_room or f"show-{self.slug}"

    def to_json(self) -> dict[str, Any]:
        return {"slug": self.slug, "title": self.title, "description": self.description,
                "schedule": self.schedule, "live_channel": self.live_channel, "chat_room": self.room,
                "hbbtv_app": self.hbbtv_app, "page": f"/s/{self.slug}", "created_at": self.created_at.isoformat()}


_COLUMNS = "slug, title, description, schedule, live_channel, chat_room, hbbtv_app, created_at"


async def create(db: asyncpg.Pool, *, slug: str, title: str, description: str = "", schedule: str = "",
                 live_channel: str | None = None, chat_room: str | None = None,
                 hbbtv_app: str | None = None) -> Show | None:
    """The new show, or None when the slug is taken."""
    row = await db.fetchrow(
        f"""INSERT INTO shows (slug, title, description, schedule, live_channel, chat_room, hbbtv_app)
            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (slug) DO NOTHING RETURNING {_COLUMNS}""",
        slug, title, description, schedule, live_channel, chat_room, hbbtv_app)
    return Show.from_row(row) if row else None


async def get(db: asyncpg.Pool | asyncpg.Connection, slug: str) -> Show | None:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM shows WHERE slug = $1", slug)
    return Show.from_row(row) if row else None


async def for_hbbtv_app(db: asyncpg.Pool, app_slug: str) -> Show | None:
    row = await db.fetchrow(f"SELECT {_COLUMNS} FROM shows WHERE hbbtv_app = $1 ORDER BY created_at LIMIT 1",
                            app_slug)
    return Show.from_row(row) if row else None


async def list_all(db: asyncpg.Pool, limit: int = 200) -> list[Show]:
    rows = await db.fetch(f"SELECT {_COLUMNS} FROM shows ORDER BY created_at DESC, slug LIMIT $1", limit)
    return [Show.from_row(r) for r in rows]


async def update(db: asyncpg.Pool, slug: str, changes: dict[str, Any]) -> Show | None:
    """Set the given fields (an explicit null detaches a channel, room or app)."""
    sets = [(k, v) for k, v in changes.items() if k in ATTACHABLE]
    if not sets:
        return await get(db, slug)
    assignments = ", ".join(f"{k} = ${i}" for i, (k, _) in enumerate(sets, start=2))
    row = await db.fetchrow(f"UPDATE shows SET {assignments} WHERE slug = $1 RETURNING {_COLUMNS}",
                            slug, *(v for _, v in sets))
    return Show.from_row(row) if row else None


async def delete(db: asyncpg.Pool, slug: str) -> bool:
    return await db.fetchval("DELETE FROM shows WHERE slug = $1 RETURNING 1", slug) is not None
