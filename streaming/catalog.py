"""The assets catalogue: reading and writing asset rows. Public module (syndication/hbbtv read it)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from streaming.rights import Rights

_ALPHABET = "abcdefghijkmnopqrstuvwxyz23456789"  # no l/0/1: ids get read aloud and typed


def new_asset_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(12))


def media_prefix(asset_id: str) -> str:
    """Object-store prefix of every object of an asset; served at /media/<id>/..."""
    return f"assets/{asset_id}/"


@dataclass(frozen=True)
class Asset:
    id: str
    title: str
    description: str
    tags: tuple[str, ...]
    show: str | None
    status: str
    progress: float
    error: str | None
    facts: dict[str, Any] | None
    outputs: dict[str, Any] | None
    duration: float | None
    visibility: str
    rights: Rights
    credit: str | None
    copyright: str | None
    rating: str | None
    embed_origins: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    ready_at: datetime | None
    job_id: int | None = None
    source_key: str | None = None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Asset:
        return cls(
            id=row["id"], title=row["title"], description=row["description"], tags=tuple(row["tags"]),
            show=row["show"], status=row["status"], progress=row["progress"], error=row["error"],
            facts=row["facts"], outputs=row["outputs"], duration=row["duration"], visibility=row["visibility"],
            rights=Rights(row["available_from"], row["available_until"], tuple(row["geo_allow"]),
                          tuple(row["geo_deny"])),
            credit=row["credit"], copyright=row["copyright"], rating=row["rating"],
            embed_origins=tuple(row["embed_origins"]), created_at=row["created_at"], updated_at=row["updated_at"],
            ready_at=row["ready_at"], job_id=row["job_id"], source_key=row["source_key"])

    @property
    def ready(self) -> bool:
        return self.status == "ready" and self.outputs is not None


async def get_asset(db: asyncpg.Pool | asyncpg.Connection, asset_id: str) -> Asset | None:
    row = await db.fetchrow("SELECT * FROM assets WHERE id = $1", asset_id)
    return Asset.from_row(row) if row else None
