"""Which document variant a client gets, decided from its User-Agent alone (pure).

HbbTV terminals announce `HbbTV/1.x.1 (...)`: 1.1.1 is HbbTV 1.0, 1.2.1 is HbbTV 1.5 (both CE-HTML/XHTML
browsers), 1.3.1 and later are HbbTV 2.x (HTML5). Desktop browsers get the XHTML document as
`application/xhtml+xml` so producers preview exactly what a 1.x TV parses. Anything we cannot read gets
HTML5, the variant that tolerates the most.

Live: HbbTV 2.0.3 (`HbbTV/1.6.1`) is the first version whose DASH player must handle low-latency DVB-DASH
(DVB A168: chunked segments announced early with availabilityTimeOffset); earlier terminals get the standard
MPD of the same channel (same segments, announced when complete).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

XHTML_HBBTV = "application/vnd.hbbtv.xhtml+xml; charset=UTF-8"
XHTML_DESKTOP = "application/xhtml+xml; charset=UTF-8"
HTML5 = "text/html; charset=UTF-8"
LL_DASH_FROM = (1, 6, 1)     # HbbTV 2.0.3
LL_DASH_MPD = "dash/manifest.mpd"
STANDARD_MPD = "dash/standard.mpd"   # streaming/live/origin.py serves it for every channel

_HBBTV = re.compile(r"\bHbbTV/(\d{1,3})\.(\d{1,3})\.(\d{1,3})\b")
_HBBTV_ANY = re.compile(r"hbbtv", re.IGNORECASE)
_DESKTOP = re.compile(r"^Mozilla/5\.0 \([^)]*\).*\b(Chrome|Firefox|Safari|Edg|OPR)/\d")
_TV_HINTS = re.compile(r"SmartTV|SMART-TV|Tizen|Web0S|webOS|NetCast|CE-HTML|OIPF|Opera TV|Viera|BRAVIA|HybridTV",
                       re.IGNORECASE)


class Markup(Enum):
    XHTML = "xhtml"   # XHTML 1.0 Transitional with the HbbTV doctype, well-formed XML
    HTML5 = "html5"


@dataclass(frozen=True)
class Variant:
    markup: Markup
    content_type: str
    hbbtv_version: tuple[int, int, int] | None
    reason: str

    @property
    def is_xhtml(self) -> bool:
        return self.markup is Markup.XHTML


def hbbtv_version(user_agent: str) -> tuple[int, int, int] | None:
    match = _HBBTV.search(user_agent)
    if not match:
        return None
    return int(match[1]), int(match[2]), int(match[3])


def pick(user_agent: str | None) -> Variant:
    ua = (user_agent or "").strip()
    version = hbbtv_version(ua)
    if version is not None:
        if version[0] == 1 and version[1] in (1, 2):
            return Variant(Markup.XHTML, XHTML_HBBTV, version, "hbbtv-1.x")
        if version >= (1, 3, 0):
            return Variant(Markup.HTML5, HTML5, version, "hbbtv-2.x")
        return Variant(Markup.HTML5, HTML5, version, "hbbtv-unknown-version")
    if _HBBTV_ANY.search(ua) or _TV_HINTS.search(ua):
        return Variant(Markup.HTML5, HTML5, None, "malformed-hbbtv")
    if _DESKTOP.search(ua):
        return Variant(Markup.XHTML, XHTML_DESKTOP, None, "desktop-preview")
    return Variant(Markup.HTML5, HTML5, None, "unknown")


def live_mpd(version: tuple[int, int, int] | None) -> str:
    """Which of a live channel's MPDs the app plays: LL-DASH only where the terminal's HbbTV version promises
    a player for it; an unknown version (or a desktop preview) gets the one every DASH player handles."""
    return LL_DASH_MPD if version is not None and version >= LL_DASH_FROM else STANDARD_MPD
