"""Logging in: throttle, verify, start a session, audit. The studio form and any future JSON login call it."""

from __future__ import annotations

from onair.core.accounts import audit, passwords, sessions, users
from onair.core.accounts.users import User
from onair.core.errors import TooManyRequests, Unauthorized

DB = users.DB


async def log_in(db: DB, name: str, password: str, *, ip: str | None,
                 user_agent: str | None) -> tuple[str, str, User]:
    """Returns (session id, CSRF token, user). Raises 429 when the account or address is throttled and
    401 for a wrong name, a wrong password or a disabled account alike (nothing tells them apart)."""
    name = name.strip().lower()[:100]
    keys = sessions.throttle_keys(name, ip)
    wait = await sessions.retry_after(db, keys)
    if wait is not None:
        raise TooManyRequests(f"Too many failed logins; try again in {wait} s", code="login-throttled",
                              headers={"Retry-After": str(wait)})
    found = await users.find(db, name)
    ok = await passwords.verify_password(found[1] if found else None, password[:passwords.MAX_LENGTH])
    if not ok or found is None or found[0].disabled_at is not None:
        await sessions.failed(db, keys)
        await audit.record(db, name or "?", "login.failed", ip=ip)
        raise Unauthorized("Wrong name or password", code="bad-credentials")
    user, stored = found
    upgraded = await passwords.hash_password(password) if passwords.needs_rehash(stored) else None
    await users.logged_in(db, user.id, upgraded)
    await sessions.succeeded(db, user.name)
    session_id, csrf = await sessions.start(db, user.id, ip, user_agent)
    await audit.record(db, user.name, "login", user_id=user.id, ip=ip)
    return session_id, csrf, user
