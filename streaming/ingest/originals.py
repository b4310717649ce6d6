"""Where every original ends: staged on local disk, stored at `sources/<id>/original` (never a client-chosen
name), and a transcode queued in the same transaction that points the asset at it.

The ways in (multipart, tus, URL pull, the sample clip) live beside this module and all end here.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import asyncpg

from onair.core.settings import Settings
from streaming import catalog

CHUNK = 256 * 1024


def staging_dir(settings: Settings) -> Path:
    path = settings.data_dir / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def safe_name(filename: str | None) -> str | None:
    """The client's file name as harmless metadata: basename only, printable, short."""
    if not filename:
        return None
    name = re.split(r"[\\/]", filename)[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if ch.isprintable())
    name = name.strip().lstrip(".")
    return name[:200] or None


def parse_tags(raw: Any) -> list[str]:
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else str(raw).split(",")
    tags = []
    for item in items:
        tag = str(item).strip()[:64]
        if tag and tag not in tags:
            tags.append(tag)
    return tags[:50]


async def store_and_queue(pool: asyncpg.Pool, store: Any, asset_id: str, staged: Path, size: int) -> int:
    """Store the original, then point the asset at it and queue the transcode in one transaction."""
    key = catalog.source_key(asset_id)
    await store.put_file(key, staged, "application/octet-stream")
    async with pool.acquire() as conn, conn.transaction():
        return await catalog.start_transcode(conn, asset_id, key, size)
