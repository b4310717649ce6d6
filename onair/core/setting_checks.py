"""Checks for values in the settings table: each returns None for a usable value, else what is wrong with it."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a TCP port between 0 and 65535"


def positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than zero"


def pow_bits(value: int) -> str | None:
    return None if 0 <= value <= 28 else "must be between 0 (off) and 28 leading zero bits"


def not_negative(value: float) -> str | None:
    return None if value >= 0 else "must be zero (off) or more"


def postgres_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("postgres", "postgresql") or not (parts.hostname or "host=" in parts.query):
        return "must look like postgresql://user:password@host:5432/dbname"
    return None


def redis_url(value: str | None) -> str | None:
    if value is None:
        return None
    if urlsplit(value).scheme not in ("redis", "rediss", "unix"):
        return "must look like redis://host:6379/0"
    return None


def http_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "must be an absolute http(s) URL"
    return None


def schedule(value: str) -> str | None:
    try:
        delays = [float(v) for v in value.split(",")]
    except ValueError:
        return "must be comma-separated numbers of seconds"
    return None if delays and all(d >= 0 for d in delays) else "must list one or more non-negative delays"


def whsec(value: str | None) -> str | None:
    return None if value is None or value.startswith("whsec_") else "must be a Standard Webhooks secret (whsec_...)"


def cidrs(value: str) -> str | None:
    try:
        networks(value)
    except ValueError as exc:
        return f"is not a comma-separated list of CIDRs ({exc})"
    return None


def networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in value.split(",") if c.strip())
