"""Rights windows (embargo, expiry, geography) as a pure decision.

Lives in `streaming` because the origin must enforce it and may not import `syndication`;
feeds, the partner API and the embed page read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Annotated

from pydantic import AfterValidator


class Availability(Enum):
    AVAILABLE = "available"
    EMBARGOED = "embargoed"   # before available_from
    EXPIRED = "expired"       # at or after available_until
    GEO_BLOCKED = "geo-blocked"
    GEO_UNKNOWN = "geo-unknown"  # geo rules apply but nobody we trust told us the viewer's country


@dataclass(frozen=True)
class Rights:
    available_from: datetime | None = None
    available_until: datetime | None = None
    geo_allow: tuple[str, ...] = ()
    geo_deny: tuple[str, ...] = ()

    @property
    def restricted(self) -> bool:
        return bool(self.available_from or self.available_until or self.geo_allow or self.geo_deny)


def availability(rights: Rights, now: datetime, country: str | None = None) -> Availability:
    """Decide for one viewer. An unknown country (no header from a trusted proxy) never passes a geo rule:
    neither an allow list nor a deny list can be enforced without it."""
    if rights.available_from is not None and now < rights.available_from:
        return Availability.EMBARGOED
    if rights.available_until is not None and now >= rights.available_until:
        return Availability.EXPIRED
    code = country.upper() if country else None
    if code is None and (rights.geo_allow or rights.geo_deny):
        return Availability.GEO_UNKNOWN
    if rights.geo_allow and code not in rights.geo_allow:
        return Availability.GEO_BLOCKED
    if code is not None and code in rights.geo_deny:
        return Availability.GEO_BLOCKED
    return Availability.AVAILABLE


def in_window(rights: Rights, now: datetime) -> bool:
    """Time window only (feeds list items regardless of the reader's country)."""
    return availability(Rights(rights.available_from, rights.available_until), now) is Availability.AVAILABLE


def _country(code: str) -> str:
    code = code.strip().upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        raise ValueError("countries are ISO 3166-1 alpha-2 codes, e.g. 'GB'")
    return code


# For request models that set rights (assets PATCH, partner publish): normalised to upper case.
CountryCode = Annotated[str, AfterValidator(_country)]
