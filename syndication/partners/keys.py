"""Partner keys: creation (shown once, stored as sha256), listing, revocation, authentication with
scopes, a per-key rate limit shared by every process (a per-minute counter row in PostgreSQL) and
per-day usage counters."""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from onair.core import events
from onair.core.errors import BadRequest, Conflict, Forbidden, TooManyRequests, Unauthorized

SCOPES = ("feeds:read", "assets:read", "assets:write")
KEY_PREFIX = "onp_"
_AUTH_HEADERS = {"WWW-Authenticate": 'Bearer realm="onair-partner"'}


@dataclass(frozen=True)
class Partner:
    id: int
    name: str
    key_prefix: str
    scopes: tuple[str, ...]
    allowed_tags: tuple[str, ...]
    allowed_shows: tuple[str, ...]
    rate_per_minute: int
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Partner:
        return cls(row["id"], row["name"], row["key_prefix"], tuple(row["scopes"]), tuple(row["allowed_tags"]),
                   tuple(row["allowed_shows"]), row["rate_per_minute"], row["created_at"], row["revoked_at"])

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "key_prefix": self.key_prefix, "scopes": list(self.scopes),
                "allowed_tags": list(self.allowed_tags), "allowed_shows": list(self.allowed_shows),
                "rate_per_minute": self.rate_per_minute, "created_at": self.created_at.isoformat(),
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None}

    def may_see(self, tags: Iterable[str], show: str | None) -> bool:
        """Per-key content filter: an asset must carry an allowed tag (if any are set) and an allowed show."""
        if self.allowed_tags and not set(self.allowed_tags) & set(tags):
            return False
        return not (self.allowed_shows and show not in self.allowed_shows)


def hash_key(key: str) -> bytes:
    # A 256-bit random key needs no slow KDF: sha256 is preimage resistant and lets us look it up by hash.
    return hashlib.sha256(key.encode()).digest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def parse_scopes(raw: Iterable[str]) -> tuple[str, ...]:
    scopes = tuple(dict.fromkeys(s.strip() for s in raw if s.strip()))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise BadRequest(f"Scopes must be among {', '.join(SCOPES)}; got {', '.join(unknown) or 'none'}",
                         code="invalid-scopes")
    return scopes


async def create(db: asyncpg.Pool | asyncpg.Connection, name: str, scopes: Iterable[str], *,
                 tags: Iterable[str] = (), shows: Iterable[str] = (), rate_per_minute: int = 600,
                 ) -> tuple[Partner, str]:
    """Returns the partner and its key; the key is never stored and cannot be shown again."""
    scopes = parse_scopes(scopes)
    key = new_key()
    try:
        row = await db.fetchrow(
            """INSERT INTO partners (name, key_hash, key_prefix, scopes, allowed_tags, allowed_shows, rate_per_minute)
               VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *""",
            name, hash_key(key), key[: len(KEY_PREFIX) + 6], list(scopes),
            [t for t in tags if t], [s for s in shows if s], rate_per_minute)
    except asyncpg.UniqueViolationError:
        raise Conflict(f"A partner named {name!r} exists already", code="partner-exists") from None
    except asyncpg.CheckViolationError:
        raise BadRequest("Partner names are 1-63 characters of a-z, 0-9, '-' and '_'; the rate limit must be "
                         "positive", code="invalid-partner") from None
    return Partner.from_row(row), key


async def list_all(db: asyncpg.Pool | asyncpg.Connection) -> list[Partner]:
    return [Partner.from_row(r) for r in await db.fetch("SELECT * FROM partners ORDER BY name")]


async def revoke(db: asyncpg.Pool | asyncpg.Connection, name: str, when: datetime) -> Partner | None:
    row = await db.fetchrow(
        "UPDATE partners SET revoked_at = coalesce(revoked_at, $2) WHERE name = $1 RETURNING *", name, when)
    return Partner.from_row(row) if row else None


async def authenticate(db: asyncpg.Pool | asyncpg.Connection, key: str | None) -> Partner:
    """One answer for missing, unknown and revoked keys, so a caller learns nothing about which keys exist."""
    if key:
        row = await db.fetchrow("SELECT * FROM partners WHERE key_hash = $1 AND revoked_at IS NULL",
                                hash_key(key))
        if row:
            return Partner.from_row(row)
    raise Unauthorized("A valid partner key is required ('Authorization: Bearer <key>')",
                       code="invalid-partner-key", headers=_AUTH_HEADERS)


def require_scope(partner: Partner, scope: str) -> None:
    if scope not in partner.scopes:
        raise Forbidden(f"This key lacks the {scope!r} scope", code="missing-scope")


async def count_request(db: asyncpg.Pool | asyncpg.Connection, partner: Partner, now: datetime, *,
                        feed: bool, usage_threshold: int = 0) -> None:
    """Rate-limit then count one request (fixed one-minute windows in the database clock of `now`)."""
    window = now.replace(second=0, microsecond=0)
    hits = await db.fetchval(
        """INSERT INTO partner_rate (partner_id, window_start, hits) VALUES ($1, $2, 1)
           ON CONFLICT (partner_id, window_start) DO UPDATE SET hits = partner_rate.hits + 1
           RETURNING hits""", partner.id, window)
    if hits > partner.rate_per_minute:
        retry = max(1, math.ceil((window + timedelta(minutes=1) - now).total_seconds()))
        raise TooManyRequests(f"Rate limit of {partner.rate_per_minute} requests a minute reached",
                              headers={"Retry-After": str(retry)}, retry_after=retry)
    used = await db.fetchval(
        """INSERT INTO partner_usage (partner_id, day, feed_pulls, api_calls) VALUES ($1, $2, $3, $4)
           ON CONFLICT (partner_id, day) DO UPDATE SET feed_pulls = partner_usage.feed_pulls + $3,
                                                       api_calls = partner_usage.api_calls + $4
           RETURNING feed_pulls + api_calls""",
        partner.id, now.date(), int(feed), int(not feed))
    if usage_threshold and used == usage_threshold:  # exactly once a day: the request that crosses it
        await events.publish(db, "partner.usage.threshold", {
            "partner": partner.name, "day": now.date().isoformat(), "requests": used,
            "threshold": usage_threshold}, at=now)
    # Old rate windows are useless; drop this partner's now and then (cheap, indexed by the primary key).
    if hits == 1:
        await db.execute("DELETE FROM partner_rate WHERE partner_id = $1 AND window_start < $2",
                         partner.id, window - timedelta(minutes=5))


async def usage(db: asyncpg.Pool | asyncpg.Connection, partner_id: int, since: date) -> list[dict[str, Any]]:
    rows = await db.fetch(
        """SELECT day, feed_pulls, api_calls FROM partner_usage WHERE partner_id = $1 AND day >= $2
           ORDER BY day DESC""", partner_id, since)
    return [{"day": r["day"].isoformat(), "feed_pulls": r["feed_pulls"], "api_calls": r["api_calls"]}
            for r in rows]
