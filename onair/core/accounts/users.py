"""The `users` table (its only writer): create, list, password, role, disable; the first admin."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from onair.core.accounts import passwords, sessions
from onair.core.accounts.roles import ROLES
from onair.core.errors import BadRequest, Conflict, NotFound

DB = asyncpg.Pool | asyncpg.Connection
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
BOOTSTRAP_NAME = "admin"
_COLUMNS = "id, name, role, must_change_password, disabled_at, created_at, last_login_at"


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    must_change_password: bool
    disabled_at: datetime | None
    created_at: datetime
    last_login_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "must_change_password": self.must_change_password,
                "disabled": self.disabled_at is not None,
                "disabled_at": self.disabled_at.isoformat() if self.disabled_at else None,
                "created_at": self.created_at.isoformat(),
                "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None}


def _user(row: asyncpg.Record) -> User:
    return User(**{k: row[k] for k in User.__dataclass_fields__})


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise BadRequest("name: 1-63 characters among a-z, 0-9, '.', '_', '-', starting with a letter or digit",
                         code="invalid-name")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise BadRequest(f"role: one of {', '.join(ROLES)}", code="invalid-role")
    return role


async def create(db: DB, name: str, role: str) -> tuple[User, str]:
    """A new user with a one-time password (returned once, to be changed at first login)."""
    check_name(name)
    check_role(role)
    password = passwords.one_time()
    digest = await passwords.hash_password(password)
    try:
        row = await db.fetchrow(f"INSERT INTO users (name, role, password_hash) VALUES ($1, $2, $3) "
                                f"RETURNING {_COLUMNS}", name, role, digest)
    except asyncpg.UniqueViolationError:
        raise Conflict(f"name: a user named {name!r} exists", code="user-exists") from None
    return _user(row), password


async def bootstrap_admin(db: DB) -> str | None:
    """First run: when there is no user at all, create 'admin' and return its one-time password."""
    password = passwords.one_time()
    digest = await passwords.hash_password(password)
    row = await db.fetchrow(
        "INSERT INTO users (name, role, password_hash) SELECT $1, 'admin', $2 "
        "WHERE NOT EXISTS (SELECT 1 FROM users) ON CONFLICT (name) DO NOTHING RETURNING id",
        BOOTSTRAP_NAME, digest)
    return password if row else None


async def find(db: DB, name: str) -> tuple[User, str] | None:
    row = await db.fetchrow(f"SELECT {_COLUMNS}, password_hash FROM users WHERE name = $1", name)
    return (_user(row), row["password_hash"]) if row else None


async def get(db: DB, name: str) -> User:
    found = await find(db, name)
    if found is None:
        raise NotFound(f"No user named {name!r}", code="user-not-found")
    return found[0]


async def list_all(db: DB) -> list[User]:
    return [_user(r) for r in await db.fetch(f"SELECT {_COLUMNS} FROM users ORDER BY name")]


async def _update(db: DB, name: str, assignments: str, *args: object) -> User:
    row = await db.fetchrow(f"UPDATE users SET {assignments}, updated_at = now() WHERE name = $1 "
                            f"RETURNING {_COLUMNS}", name, *args)
    if row is None:
        raise NotFound(f"No user named {name!r}", code="user-not-found")
    return _user(row)


async def set_password(db: DB, name: str, password: str, *, keep_session: bytes | None = None) -> User:
    """A password the user chose: no longer one-time. Every session of the user but `keep_session` ends."""
    problem = passwords.weakness(password)
    if problem:
        raise BadRequest(f"password: {problem}", code="weak-password")
    user = await _update(db, name, "password_hash = $2, must_change_password = false",
                         await passwords.hash_password(password))
    await sessions.end_all(db, user.id, keep=keep_session)
    return user


async def reset(db: DB, name: str) -> tuple[User, str]:
    """Admin-issued reset (there is no mail): a new one-time password; every session of the user ends."""
    password = passwords.one_time()
    user = await _update(db, name, "password_hash = $2, must_change_password = true",
                         await passwords.hash_password(password))
    await sessions.end_all(db, user.id)
    return user, password


async def set_role(db: DB, name: str, role: str) -> User:
    return await _update(db, name, "role = $2", check_role(role))


async def set_disabled(db: DB, name: str, disabled: bool) -> User:
    user = await _update(db, name, "disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END", disabled)
    if disabled:
        await sessions.end_all(db, user.id)
    return user


async def logged_in(db: DB, user_id: int, new_hash: str | None) -> None:
    """Record a login; `new_hash` upgrades a hash made with older parameters."""
    await db.execute("UPDATE users SET last_login_at = now(), password_hash = coalesce($2, password_hash) "
                     "WHERE id = $1", user_id, new_hash)
