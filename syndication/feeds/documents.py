"""MRSS, Atom and JSON Feed 1.1 documents, built as pure functions from asset data to bytes.

Why a focused lxml builder rather than feedgen: feedgen's media extension only knows media:content
and media:thumbnail; everything else we must emit (media:group, media:player, media:restriction,
media:rating, media:credit, media:copyright, media:keywords, dcterms:valid, RFC 5005 paging links
in RSS) would be hand-added through its extension hooks anyway, and feedgen re-serialises the whole
document through its own object model (slower on 100-item pages). lxml escapes every text node and
attribute, so user text cannot break the XML.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

from streaming.catalog import Asset

MEDIA_NS = "http://search.yahoo.com/mrss/"
ATOM_NS = "http://www.w3.org/2005/Atom"
DCTERMS_NS = "http://purl.org/dc/terms/"
HLS_TYPE = "application/vnd.apple.mpegurl"
DASH_TYPE = "application/dash+xml"
JSONFEED_VERSION = "https://jsonfeed.org/version/1.1"

_M = f"{{{MEDIA_NS}}}"
_A = f"{{{ATOM_NS}}}"
_D = f"{{{DCTERMS_NS}}}"


@dataclass(frozen=True)
class FeedMeta:
    """Channel-level facts; URLs are absolute."""

    title: str
    base_url: str            # settings.base_url, no trailing slash
    self_url: str
    first_url: str
    next_url: str | None
    updated: datetime
    description: str = "Video from onair"


# --- per-asset facts shared by every format -----------------------------------------------------

def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def published(asset: Asset) -> datetime:
    """The item's date: when it became (or becomes) public. Stable across pulls."""
    return asset.rights.available_from or asset.ready_at or asset.created_at


def guid(asset: Asset, base_url: str) -> str:
    """RFC 4151 tag URI: stable for the asset's life, independent of paths that may move."""
    host = urlsplit(base_url).hostname or "localhost"
    return f"tag:{host},{asset.created_at.astimezone(UTC):%Y-%m-%d}:asset/{asset.id}"


def media_url(base_url: str, asset_id: str, key: str) -> str:
    return f"{base_url}/media/{asset_id}/{key.lstrip('/')}"


def embed_url(base_url: str, asset_id: str) -> str:
    return f"{base_url}/embed/{asset_id}"


def hls_url(base_url: str, asset: Asset) -> str:
    return media_url(base_url, asset.id, (asset.outputs or {}).get("hls") or "hls/master.m3u8")


def dash_url(base_url: str, asset: Asset) -> str:
    return media_url(base_url, asset.id, (asset.outputs or {}).get("dash") or "dash/manifest.mpd")


def _top_rendition(asset: Asset) -> dict[str, Any]:
    video = [v for v in (asset.outputs or {}).get("video") or [] if isinstance(v, dict)]
    return max(video, key=lambda v: (v.get("height") or 0, v.get("bitrate") or 0), default={})


def thumbnails(asset: Asset, base_url: str) -> list[dict[str, Any]]:
    """Poster first (the 'best' image for aggregators), then the sized thumbnails."""
    out = asset.outputs or {}
    found: list[dict[str, Any]] = []
    if out.get("poster"):
        # the poster file's own size (older assets did not record it: then no size rather than a wrong one)
        size = out.get("poster_size") or {}
        found.append({"url": media_url(base_url, asset.id, out["poster"]),
                      "width": size.get("width"), "height": size.get("height")})
    for t in out.get("thumbnails") or []:
        if isinstance(t, dict) and t.get("key"):
            found.append({"url": media_url(base_url, asset.id, t["key"]),
                          "width": t.get("width"), "height": t.get("height")})
    return found


def valid_text(asset: Asset) -> str | None:
    """DCMI Period for dcterms:valid, e.g. 'start=2026-01-01T00:00:00Z; end=...; scheme=W3C-DTF'."""
    r = asset.rights
    if not (r.available_from or r.available_until):
        return None
    parts = []
    if r.available_from:
        parts.append(f"start={rfc3339(r.available_from)}")
    if r.available_until:
        parts.append(f"end={rfc3339(r.available_until)}")
    parts.append("scheme=W3C-DTF")
    return "; ".join(parts)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    """Drop characters XML 1.0 cannot carry (control characters) instead of failing the whole feed."""
    return _NOT_XML.sub("", text)


# --- MRSS ---------------------------------------------------------------------------------------

def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: Any) -> etree._Element:
    el = etree.SubElement(parent, tag, {k.rstrip("_"): str(v) for k, v in attrs.items() if v is not None})
    if text is not None:
        el.text = _xml_safe(text)
    return el


def _media_elements(parent: etree._Element, asset: Asset, base_url: str) -> None:
    """The Media RSS elements of one item; shared by MRSS and Atom entries."""
    top = _top_rendition(asset)
    bitrate = top.get("bitrate")
    audio = (asset.outputs or {}).get("audio") or {}
    duration = round(asset.duration) if asset.duration else None
    group = _sub(parent, _M + "group")
    _sub(group, _M + "content", url=hls_url(base_url, asset), type=HLS_TYPE, medium="video", isDefault="true",
         expression="full", duration=duration, width=top.get("width"), height=top.get("height"),
         bitrate=round(bitrate / 1000) if bitrate else None, framerate=top.get("frame_rate"),
         samplingrate=(audio.get("sample_rate") / 1000) if audio.get("sample_rate") else None,
         channels=audio.get("channels"))
    _sub(group, _M + "content", url=dash_url(base_url, asset), type=DASH_TYPE, medium="video", isDefault="false",
         expression="full", duration=duration, width=top.get("width"), height=top.get("height"),
         bitrate=round(bitrate / 1000) if bitrate else None)
    _sub(parent, _M + "title", _clip(asset.title, 100), type="plain")
    if asset.description:
        _sub(parent, _M + "description", _clip(asset.description, 2048), type="plain")
    for thumb in thumbnails(asset, base_url):
        _sub(parent, _M + "thumbnail", url=thumb["url"], width=thumb["width"], height=thumb["height"])
    _sub(parent, _M + "player", url=embed_url(base_url, asset.id), width=top.get("width"),
         height=top.get("height"))
    for c in (asset.outputs or {}).get("captions") or []:   # the whole WebVTT file of each caption track
        if vtt := c.get("vtt") or c.get("key"):
            _sub(parent, _M + "subTitle", type="text/vtt", lang=c.get("language") or c.get("lang"),
                 href=media_url(base_url, asset.id, vtt))
    if asset.tags:
        _sub(parent, _M + "keywords", ", ".join(asset.tags))
    r = asset.rights
    if r.geo_allow:
        _sub(parent, _M + "restriction", " ".join(c.lower() for c in r.geo_allow), relationship="allow",
             type="country")
    if r.geo_deny:
        _sub(parent, _M + "restriction", " ".join(c.lower() for c in r.geo_deny), relationship="deny",
             type="country")
    _sub(parent, _M + "rating", asset.rating or "nonadult", scheme="urn:simple")
    if asset.credit:
        _sub(parent, _M + "credit", asset.credit, role="author", scheme="urn:ebu")
    if asset.copyright:
        _sub(parent, _M + "copyright", asset.copyright)
    if (valid := valid_text(asset)) is not None:
        _sub(parent, _D + "valid", valid)


def build_mrss(meta: FeedMeta, assets: Sequence[Asset]) -> bytes:
    rss = etree.Element("rss", {"version": "2.0"}, nsmap={"media": MEDIA_NS, "atom": ATOM_NS, "dcterms": DCTERMS_NS})
    channel = _sub(rss, "channel")
    _sub(channel, "title", meta.title)
    _sub(channel, "link", meta.base_url + "/")
    _sub(channel, "description", meta.description)
    _sub(channel, "lastBuildDate", format_datetime(meta.updated.astimezone(UTC), usegmt=True))
    _sub(channel, "generator", "onair")
    # RFC 5005 paged feed: self, first, next (absent on the last page).
    _sub(channel, _A + "link", rel="self", href=meta.self_url, type="application/rss+xml")
    _sub(channel, _A + "link", rel="first", href=meta.first_url, type="application/rss+xml")
    if meta.next_url:
        _sub(channel, _A + "link", rel="next", href=meta.next_url, type="application/rss+xml")
    for asset in assets:
        item = _sub(channel, "item")
        _sub(item, "title", asset.title)
        _sub(item, "link", embed_url(meta.base_url, asset.id))
        _sub(item, "guid", guid(asset, meta.base_url), isPermaLink="false")
        _sub(item, "pubDate", format_datetime(published(asset).astimezone(UTC), usegmt=True))
        if asset.description:
            _sub(item, "description", asset.description)
        for tag in asset.tags:
            _sub(item, "category", tag)
        _media_elements(item, asset, meta.base_url)
    return etree.tostring(rss, xml_declaration=True, encoding="UTF-8")


# --- Atom (RFC 4287) ----------------------------------------------------------------------------

def build_atom(meta: FeedMeta, assets: Sequence[Asset]) -> bytes:
    feed = etree.Element(_A + "feed", nsmap={None: ATOM_NS, "media": MEDIA_NS, "dcterms": DCTERMS_NS})
    host = urlsplit(meta.base_url).hostname or "localhost"
    first = urlsplit(meta.first_url)
    _sub(feed, _A + "id", f"tag:{host},2026:feed{first.path}" + (f"?{first.query}" if first.query else ""))
    _sub(feed, _A + "title", meta.title)
    _sub(feed, _A + "subtitle", meta.description)
    _sub(feed, _A + "updated", rfc3339(meta.updated))
    author = _sub(feed, _A + "author")
    _sub(author, _A + "name", "onair")
    _sub(feed, _A + "link", rel="self", href=meta.self_url, type="application/atom+xml")
    _sub(feed, _A + "link", rel="first", href=meta.first_url, type="application/atom+xml")
    if meta.next_url:
        _sub(feed, _A + "link", rel="next", href=meta.next_url, type="application/atom+xml")
    _sub(feed, _A + "link", rel="alternate", href=meta.base_url + "/", type="text/html")
    _sub(feed, _A + "generator", "onair")
    for asset in assets:
        entry = _sub(feed, _A + "entry")
        _sub(entry, _A + "id", guid(asset, meta.base_url))
        _sub(entry, _A + "title", asset.title, type="text")
        _sub(entry, _A + "published", rfc3339(published(asset)))
        _sub(entry, _A + "updated", rfc3339(max(asset.updated_at, published(asset))))
        _sub(entry, _A + "link", rel="alternate", href=embed_url(meta.base_url, asset.id), type="text/html")
        _sub(entry, _A + "link", rel="enclosure", href=hls_url(meta.base_url, asset), type=HLS_TYPE)
        _sub(entry, _A + "summary", asset.description or asset.title, type="text")
        if asset.credit:
            _sub(_sub(entry, _A + "author"), _A + "name", asset.credit)
        if asset.copyright:
            _sub(entry, _A + "rights", asset.copyright, type="text")
        for tag in asset.tags:
            _sub(entry, _A + "category", term=tag)
        _media_elements(entry, asset, meta.base_url)
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8")


# --- JSON Feed 1.1 ------------------------------------------------------------------------------

def build_json_feed(meta: FeedMeta, assets: Sequence[Asset]) -> bytes:
    items = []
    for asset in assets:
        thumbs = thumbnails(asset, meta.base_url)
        item: dict[str, Any] = {
            "id": guid(asset, meta.base_url),
            "url": embed_url(meta.base_url, asset.id),
            "title": asset.title,
            "content_text": asset.description or asset.title,
            "date_published": rfc3339(published(asset)),
            "date_modified": rfc3339(max(asset.updated_at, published(asset))),
            "tags": list(asset.tags),
            "attachments": [
                {"url": hls_url(meta.base_url, asset), "mime_type": HLS_TYPE,
                 **({"duration_in_seconds": round(asset.duration)} if asset.duration else {})},
                {"url": dash_url(meta.base_url, asset), "mime_type": DASH_TYPE},
            ],
            # Extension object (JSON Feed 1.1 allows keys starting with "_"): rights and media facts.
            "_onair": {"asset_id": asset.id, "player": embed_url(meta.base_url, asset.id),
                       "available_from": rfc3339(asset.rights.available_from) if asset.rights.available_from
                       else None,
                       "available_until": rfc3339(asset.rights.available_until) if asset.rights.available_until
                       else None,
                       "geo_allow": list(asset.rights.geo_allow), "geo_deny": list(asset.rights.geo_deny),
                       "credit": asset.credit, "copyright": asset.copyright, "rating": asset.rating},
        }
        if asset.description:
            item["summary"] = _clip(asset.description, 2048)
        if thumbs:
            item["image"] = thumbs[0]["url"]
        if asset.credit:
            item["authors"] = [{"name": asset.credit}]
        items.append(item)
    doc: dict[str, Any] = {"version": JSONFEED_VERSION, "title": meta.title, "home_page_url": meta.base_url + "/",
                           "feed_url": meta.first_url, "description": meta.description, "items": items}
    if meta.next_url:
        doc["next_url"] = meta.next_url
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


BUILDERS = {
    "mrss": (build_mrss, "application/rss+xml; charset=utf-8"),
    "atom": (build_atom, "application/atom+xml; charset=utf-8"),
    "json": (build_json_feed, "application/feed+json; charset=utf-8"),
}
