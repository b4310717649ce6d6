"""Password hashing with argon2id (argon2-cffi, RFC 9106 parameters) and one-time password generation."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
# Verified when the user does not exist, so a wrong name costs the same time as a wrong password.
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))

MIN_LENGTH = 10
MAX_LENGTH = 1024


def one_time() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, ~120 bits


def weakness(password: str) -> str | None:
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"a password has at most {MAX_LENGTH} characters"
    return None


async def hash_password(password: str) -> str:
    # ~64 MiB and tens of milliseconds of CPU: off the event loop.
    return await asyncio.to_thread(_HASHER.hash, password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    return await asyncio.to_thread(_verify, stored, password)


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)
