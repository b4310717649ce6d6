"""What the embed and watch pages show: a pure decision from an asset, the time and the viewer's query.

The route module turns a `PlayerPage` into HTML; nothing here touches HTTP, the database or the store,
so every branch (processing, embargoed, private with a signed URL) is cheap to test.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any

import langcodes

from onair.core.web import cap_ttl
from streaming.catalog import Asset
from streaming.catalog.rights import Availability, availability
from streaming.delivery.signing import signed_media_path

DEFAULT_WIDTH = 640
_HOST_SOURCE = re.compile(r"(https?://)?(\*\.)?[A-Za-z0-9.-]+(:(\d{1,5}|\*))?")


# `?engine=` values -> the player's engine names (anything else: the player chooses).
ENGINES = {"native": "native", "hlsjs": "hlsjs", "hls": "hlsjs", "dash": "dashjs", "dashjs": "dashjs"}


@dataclass(frozen=True)
class PlayerOptions:
    """Query options of /embed/{id}: `autoplay` (always muted: browsers block sound), `start=` seconds, `loop`."""

    autoplay: bool = False
    start: float = 0.0
    loop: bool = False
    engine: str | None = None   # "native" | "hlsjs" | "dashjs" (`?engine=dash`): force a playback engine
    debug: bool = False         # ?debug=1: the player shows its engine and latency behind real time

    @classmethod
    def from_query(cls, query: dict[str, str]) -> PlayerOptions:
        engine = ENGINES.get(query.get("engine") or "")
        return cls(autoplay=_flag(query.get("autoplay")), start=_seconds(query.get("start") or query.get("t")),
                   loop=_flag(query.get("loop")), engine=engine,
                   debug=_flag(query.get("debug")))


def _flag(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("", "1", "true", "yes", "on")


def _seconds(value: str | None) -> float:
    """`start=90`, `start=1:30` or `start=1m30s`; anything unreadable means the beginning (a player never 400s).

    nan and inf (`1:inf`, `1e400`) are unreadable too: they would reach the page's JSON as `Infinity`,
    which no JSON parser accepts, and the player would never load."""
    seconds = _parse_seconds(value)
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


def _parse_seconds(value: str | None) -> float:
    if not value:
        return 0.0
    text = value.strip().lower()
    try:
        if ":" in text:
            total = 0.0
            for part in text.split(":"):
                total = total * 60 + float(part)
            return total
        if text[-1:] in ("s", "m", "h") and not text.replace(".", "").isdigit():
            total, number = 0.0, ""
            for ch in text:
                if ch.isdigit() or ch == ".":
                    number += ch
                elif ch in "hms" and number:
                    total += float(number) * {"h": 3600, "m": 60, "s": 1}[ch]
                    number = ""
                else:
                    return 0.0
            return total
        return float(text)
    except ValueError:
        return 0.0


@dataclass(frozen=True)
class PlayerPage:
    """Either a playable page (`config` set) or a message page (`message` set) with its HTTP status."""

    status: int
    asset_id: str
    title: str
    message: str | None = None
    retry_seconds: int | None = None     # the "processing" page reloads itself
    poster: str | None = None
    config: dict[str, Any] | None = None
    captions: list[dict[str, str]] = field(default_factory=list)
    discoverable: bool = True            # oEmbed discovery link (not for private assets)
    robots: str = "noindex"

    @property
    def playable(self) -> bool:
        return self.config is not None

    def config_json(self) -> str:
        """JSON safe inside <script type="application/json">: '<', '>' and '&' become escapes."""
        text = json.dumps(self.config, separators=(",", ":"))
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def media_url(asset_id: str, key: str) -> str:
    return f"/media/{asset_id}/{key.lstrip('/')}"


def aspect(asset: Asset) -> tuple[int, int]:
    """Display size of the top rung (width, height); 16:9 when unknown."""
    rungs = (asset.outputs or {}).get("video") or []
    best = max(rungs, key=lambda r: (r.get("width") or 0) * (r.get("height") or 0), default=None)
    if best and best.get("width") and best.get("height"):
        return int(best["width"]), int(best["height"])
    return 1280, 720


def _caption(base: str, c: dict[str, Any]) -> dict[str, str]:
    """A <track> of the page from an outputs caption entry (uploaded: language/kind/vtt; older: lang/label/key)."""
    lang = str(c.get("language") or c.get("lang") or "und")
    label = c.get("label") or (langcodes.Language.get(lang).autonym().capitalize() if lang != "und" else "Subtitles")
    caption = c.get("kind") == "caption"   # for the deaf and hard of hearing: sounds described too
    return {"src": base + str(c.get("vtt") or c.get("key")), "lang": lang,
            "kind": "captions" if caption else "subtitles",
            "label": f"{label} (CC)" if caption and not c.get("label") else str(label)}


# Outside its rights window (or country) a video's page names nothing about it: not even its title.
UNAVAILABLE = "Video unavailable"


def player_page(asset: Asset | None, asset_id: str, now: datetime, options: PlayerOptions, *,
                signing_key: bytes, token_seconds: int, country: str | None = None) -> PlayerPage:
    if asset is None:
        return PlayerPage(404, asset_id, "Video not found",
                          message="This video does not exist or has been removed.", discoverable=False)
    title = asset.title or "Untitled video"
    if asset.status == "failed":
        return PlayerPage(404, asset.id, title, message="This video could not be processed.", discoverable=False)
    if not asset.ready:
        return PlayerPage(200, asset.id, title, retry_seconds=10, discoverable=False,
                          message="This video is still being processed. The page will refresh when it is ready.")
    verdict = availability(asset.rights, now, country)
    if verdict is Availability.EMBARGOED:
        when = asset.rights.available_from.strftime("%d %B %Y, %H:%M UTC") if asset.rights.available_from else ""
        return PlayerPage(403, asset.id, UNAVAILABLE,
                          message=f"This video is not available yet. It will be from {when}.", discoverable=False)
    if verdict is Availability.EXPIRED:
        return PlayerPage(404, asset.id, UNAVAILABLE, message="This video is no longer available.",
                          discoverable=False)
    if verdict in (Availability.GEO_BLOCKED, Availability.GEO_UNKNOWN):
        return PlayerPage(403, asset.id, UNAVAILABLE, message="This video is not available in your country.",
                          discoverable=False)

    outputs = asset.outputs or {}
    hls_key = outputs.get("hls") or "hls/master.m3u8"
    dash_key = outputs.get("dash") or "dash/manifest.mpd"
    private = asset.visibility == "private"
    if private:
        # Short-lived and bound to this asset's prefix; the token sits in the path so relative segment
        # URLs inside the playlists inherit it. Never longer than the rights window.
        expires = int(now.timestamp()) + cap_ttl(token_seconds, asset.rights.available_until, now)
        src = signed_media_path(signing_key, asset.id, hls_key, expires)
        base = src[: -len(hls_key)]
    else:
        src = media_url(asset.id, hls_key)
        base = f"/media/{asset.id}/"
    poster = base + outputs["poster"] if outputs.get("poster") else None
    storyboard = (outputs.get("storyboard") or {}).get("vtt")
    captions = [_caption(base, c) for c in outputs.get("captions") or [] if c.get("vtt") or c.get("key")]
    config = {"asset_id": asset.id, "src": src, "dash": base + dash_key, "title": title,
              "duration": asset.duration or 0,
              "storyboard": base + storyboard if storyboard else None,
              "autoplay": options.autoplay, "start": options.start, "loop": options.loop, "engine": options.engine,
              "debug": options.debug, "events_url": "/api/v1/player/events"}
    return PlayerPage(200, asset.id, title, poster=poster, config=config, captions=captions,
                      discoverable=not private, robots="noindex" if private else "index")


def frame_ancestors(asset: Asset | None, default_origins: tuple[str, ...]) -> str:
    """CSP `frame-ancestors`: the asset's own allowlist, else the deployment default ('*' = anyone).

    Only well-formed host sources reach the header (a stray ';' must not inject a directive); a list
    with nothing valid left fails closed to our own origin.
    """
    origins = asset.embed_origins if asset is not None and asset.embed_origins else default_origins
    if "*" in origins:
        return "frame-ancestors *"
    valid = [o for o in origins if _HOST_SOURCE.fullmatch(o)]
    return " ".join(["frame-ancestors", "'self'", *valid])


def iframe_snippet(embed_url: str, title: str, width: int, height: int) -> str:
    """The one line a newsroom pastes. Every attribute value is escaped."""
    return (f'<iframe src="{escape(embed_url)}" width="{int(width)}" height="{int(height)}" '
            f'title="{escape(title)}" frameborder="0" '
            f'allow="autoplay; fullscreen; picture-in-picture" allowfullscreen></iframe>')
