"""Pairing codes: a TV shows a short code (and a QR code of the show page's URL carrying it); the first phone
to claim it before it expires takes on the TV's device id. The one writer of the `pairings` table.

Codes are single-use (the claim is one conditional UPDATE), expire after minutes, and a device may hold only
a few at a time. Six characters from a 31-letter alphabet give ~887 million codes; with claims rate-limited
per network, guessing a live one is impractical.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import segno

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ2345679"   # no 0/O, 1/I, 8/B look-alikes: read off a TV across the room
CODE_LEN = 6
LIFETIME = timedelta(minutes=10)
# A claimed code stays the record of the pairing until either screen unpairs (or a season passes): the phone asks
# it whether it is still paired, so an unpair from the TV reaches it.
PAIRED_LIFETIME = timedelta(days=120)
MAX_LIVE_PER_DEVICE = 3


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LEN))


def normalise(code: str) -> str | None:
    """What a viewer typed (any case, spaces) as a code, or None when it cannot be one."""
    out = "".join(code.split()).upper()
    return out if len(out) == CODE_LEN and all(c in ALPHABET for c in out) else None


@dataclass(frozen=True)
class Pairing:
    code: str
    device_id: str
    show_slug: str | None
    expires_at: datetime


async def create(db: asyncpg.Pool, device_id: str, show_slug: str | None, now: datetime) -> Pairing | None:
    """A fresh code for the TV, or None when it already holds MAX_LIVE_PER_DEVICE live ones."""
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM pairings WHERE expires_at < $1", now - timedelta(days=1))  # housekeeping
        live = await conn.fetchval("SELECT count(*) FROM pairings WHERE device_id = $1 AND expires_at > $2 "
                                   "AND claimed_at IS NULL", device_id, now)
        if live >= MAX_LIVE_PER_DEVICE:
            return None
        while True:  # a clash among live codes is rare; draw again
            code = new_code()
            row = await conn.fetchrow(
                """INSERT INTO pairings (code, device_id, show_slug, created_at, expires_at)
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (code) DO NOTHING RETURNING code""",
                code, device_id, show_slug, now, now + LIFETIME)
            if row:
                return Pairing(code, device_id, show_slug, now + LIFETIME)


async def live(db: asyncpg.Pool, code: str, now: datetime) -> Pairing | None:
    row = await db.fetchrow("SELECT code, device_id, show_slug, expires_at FROM pairings WHERE code = $1 "
                            "AND expires_at > $2 AND claimed_at IS NULL", code, now)
    return Pairing(**dict(row)) if row else None


async def claim(db: asyncpg.Pool, code: str, now: datetime) -> Pairing | None:
    """Use the code up; None when it is unknown, expired or already used."""
    row = await db.fetchrow(
        """UPDATE pairings SET claimed_at = $2, expires_at = $3
           WHERE code = $1 AND expires_at > $2 AND claimed_at IS NULL
           RETURNING code, device_id, show_slug, expires_at""", code, now, now + PAIRED_LIFETIME)
    return Pairing(**dict(row)) if row else None


async def cancel(db: asyncpg.Pool, device_id: str, now: datetime) -> tuple[int, int]:
    """The TV unpairs: its unclaimed codes stop working and its paired phones are unpaired.
    Returns (codes cancelled, phones unpaired)."""
    rows = await db.fetch("UPDATE pairings SET expires_at = $2 WHERE device_id = $1 AND expires_at > $2 "
                          "RETURNING claimed_at IS NOT NULL AS claimed", device_id, now)
    phones = sum(1 for r in rows if r["claimed"])
    return len(rows) - phones, phones


async def unpair(db: asyncpg.Pool, code: str, now: datetime) -> bool:
    """The phone unpairs itself (it holds the code it claimed)."""
    result = await db.execute("UPDATE pairings SET expires_at = $2 WHERE code = $1 AND claimed_at IS NOT NULL "
                              "AND expires_at > $2", code, now)
    return result != "UPDATE 0"


async def paired(db: asyncpg.Pool, code: str, now: datetime) -> bool:
    """Whether the phone that claimed `code` is still paired (neither screen unpaired)."""
    return bool(await db.fetchval("SELECT 1 FROM pairings WHERE code = $1 AND claimed_at IS NOT NULL "
                                  "AND expires_at > $2", code, now))


def qr_svg(url: str) -> bytes:
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=6, border=2, dark="#000", light="#fff")
    return out.getvalue()


def qr_png(url: str) -> bytes:
    """The same code as a PNG (segno writes it itself, no imaging library): for terminals whose browser shows
    no SVG in an <img>, and for printing."""
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="png", scale=6, border=2, dark="#000", light="#fff")
    return out.getvalue()
