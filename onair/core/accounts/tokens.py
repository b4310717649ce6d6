"""Personal API tokens: the only writer of `api_tokens`.

A token is `onair_pat_` + 32 random bytes (url-safe); the table keeps its SHA-256 (a random secret needs no slow
hash), so a copy of the table authenticates nobody. A token acts as its user, limited to its scopes; disabling
the user or revoking the token stops it at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

DB = asyncpg.Pool | asyncpg.Connection
PREFIX = "onair_pat_"


@dataclass(frozen=True)
class TokenOwner:
    user_id: int
    name: str
    role: str
    scopes: frozenset[str]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def looks_like(token: str) -> bool:
    return token.startswith(PREFIX) and len(token) < 200


async def create(db: DB, user_id: int, name: str, scopes: list[str]) -> tuple[str, dict[str, Any]]:
    """A new token; returns (the token, shown once; its public description)."""
    token = PREFIX + secrets.token_urlsafe(32)
    row = await db.fetchrow(
        "INSERT INTO api_tokens (user_id, name, token_hash, prefix, scopes) VALUES ($1, $2, $3, $4, $5) "
        "RETURNING *", user_id, name, _digest(token), token[: len(PREFIX) + 6], sorted(set(scopes)))
    return token, _public(row)


async def lookup(db: DB, token: str) -> TokenOwner | None:
    """The live token's owner (not revoked, user not disabled); notes when it was last used."""
    row = await db.fetchrow(
        "UPDATE api_tokens t SET last_used_at = now() FROM users u "
        "WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.id = t.user_id AND u.disabled_at IS NULL "
        "RETURNING t.user_id, u.name, u.role, t.scopes", _digest(token))
    if row is None:
        return None
    return TokenOwner(row["user_id"], row["name"], row["role"], frozenset(row["scopes"]))


async def list_for(db: DB, user_id: int) -> list[dict[str, Any]]:
    rows = await db.fetch("SELECT * FROM api_tokens WHERE user_id = $1 ORDER BY id DESC", user_id)
    return [_public(r) for r in rows]


async def revoke(db: DB, user_id: int, token_id: int) -> bool:
    done = await db.execute("UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) "
                            "WHERE id = $1 AND user_id = $2", token_id, user_id)
    return done.endswith(" 1")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _public(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "prefix": row["prefix"], "scopes": list(row["scopes"]),
            "created_at": _iso(row["created_at"]), "last_used_at": _iso(row["last_used_at"]),
            "revoked_at": _iso(row["revoked_at"])}
