"""Server-side sessions and login throttling: the only writer of `sessions` and `login_throttle`.

The browser holds a random session id; the table holds its SHA-256, the user and a CSRF token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

DB = asyncpg.Pool | asyncpg.Connection

LIFETIME = timedelta(hours=12)
# Failed logins allowed per window before further attempts are refused (429 with Retry-After).
WINDOW = timedelta(minutes=15)
ACCOUNT_LIMIT = 5
IP_LIMIT = 30


@dataclass(frozen=True)
class Session:
    id_hash: bytes
    user_id: int
    name: str
    role: str
    csrf_token: str
    must_change_password: bool


def digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


async def start(db: DB, user_id: int, ip: str | None, user_agent: str | None) -> tuple[str, str]:
    """A new session; returns (session id for the cookie, CSRF token for the page)."""
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    await db.execute(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, expires_at, ip, user_agent) "
        "VALUES ($1, $2, $3, now() + $4::interval, $5, $6)",
        digest(session_id), user_id, csrf, LIFETIME, ip, (user_agent or "")[:300])
    return session_id, csrf


async def lookup(db: DB, session_id: str) -> Session | None:
    """The live session for a cookie value: not expired, not logged out, its user not disabled."""
    if not session_id or len(session_id) > 100:
        return None
    row = await db.fetchrow(
        "SELECT s.id_hash, s.user_id, u.name, u.role, s.csrf_token, u.must_change_password FROM sessions s "
        "JOIN users u ON u.id = s.user_id "
        "WHERE s.id_hash = $1 AND s.expires_at > now() AND u.disabled_at IS NULL", digest(session_id))
    return Session(**dict(row)) if row else None


async def end(db: DB, id_hash: bytes) -> None:
    await db.execute("DELETE FROM sessions WHERE id_hash = $1 OR expires_at < now()", id_hash)


async def end_all(db: DB, user_id: int, *, keep: bytes | None = None) -> None:
    await db.execute("DELETE FROM sessions WHERE user_id = $1 AND id_hash IS DISTINCT FROM $2", user_id, keep)


def throttle_keys(name: str, ip: str | None) -> list[str]:
    return [f"user:{name.lower()[:100]}"] + ([f"ip:{ip}"] if ip else [])


async def retry_after(db: DB, keys: list[str]) -> int | None:
    """Seconds until a login may be tried again, when the account or the address is over its limit."""
    rows = await db.fetch(
        "SELECT key, ceil(extract(epoch FROM window_start + $2::interval - now()))::int AS wait "
        "FROM login_throttle WHERE key = ANY($1) AND window_start > now() - $2::interval "
        "AND failures >= CASE WHEN key LIKE 'user:%' THEN $3::int ELSE $4::int END",
        keys, WINDOW, ACCOUNT_LIMIT, IP_LIMIT)
    return max((max(1, r["wait"]) for r in rows), default=None)


async def failed(db: DB, keys: list[str]) -> None:
    await db.execute(
        "INSERT INTO login_throttle (key, failures, window_start) SELECT k, 1, now() FROM unnest($1::text[]) k "
        "ON CONFLICT (key) DO UPDATE SET "
        "failures = CASE WHEN login_throttle.window_start <= now() - $2::interval THEN 1 "
        "                ELSE login_throttle.failures + 1 END, "
        "window_start = CASE WHEN login_throttle.window_start <= now() - $2::interval THEN now() "
        "                    ELSE login_throttle.window_start END", keys, WINDOW)


async def succeeded(db: DB, name: str) -> None:
    await db.execute("DELETE FROM login_throttle WHERE key = $1 OR window_start < now() - $2::interval",
                     throttle_keys(name, None)[0], WINDOW)
