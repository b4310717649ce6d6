"""oEmbed 1.0 (https://oembed.com) for our videos: pure request parsing and response building.

Answers follow the spec's status codes: 404 for a URL that is not one of our videos (including
another host), 401 for a private or not-currently-published video, 501 for a format we do not
speak (we speak json and xml), 400 for unreadable maxwidth/maxheight.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from pydantic import BaseModel, ConfigDict, Field

from onair.core.errors import BadRequest, NotFound, NotImplementedProblem, Unauthorized
from onair.core.web import cap_ttl
from streaming.catalog import Asset
from streaming.catalog.rights import in_window
from syndication.embed.pages import DEFAULT_WIDTH, aspect, iframe_snippet

VERSION = "1.0"
CACHE_AGE = 3600
PROVIDER_NAME = "onair"
_PATH = re.compile(r"/(?:embed|watch)/([A-Za-z0-9_-]{1,64})/?")
FORMATS = ("json", "xml")


class OEmbedQuery(BaseModel):
    """The query oEmbed consumers send (parsed by `parse_query`, which keeps the spec's status codes)."""
    model_config = ConfigDict(frozen=True)
    url: Annotated[str, Field(min_length=1, max_length=2000)]
    maxwidth: Annotated[int, Field(gt=0)] | None = None
    maxheight: Annotated[int, Field(gt=0)] | None = None
    format: Literal["json", "xml"] = "json"


def _dimension(name: str, raw: str | None) -> int | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise BadRequest(f"{name} must be a positive whole number of pixels, got {raw[:40]!r}",
                         code="invalid-query") from None
    if value <= 0:
        raise BadRequest(f"{name} must be greater than zero", code="invalid-query")
    return value


def parse_query(query: dict[str, str]) -> OEmbedQuery:
    url = (query.get("url") or "").strip()
    if not url:
        raise BadRequest("url is required: the address of an /embed/ or /watch/ page", code="invalid-query")
    fmt = (query.get("format") or "json").strip().lower()
    if fmt not in FORMATS:
        raise NotImplementedProblem(f"format {fmt[:20]!r} is not supported; use json or xml")
    return OEmbedQuery(url=url[:2000], maxwidth=_dimension("maxwidth", query.get("maxwidth")),
                       maxheight=_dimension("maxheight", query.get("maxheight")), format=fmt)


def asset_id_from_url(url: str, our_hosts: tuple[str, ...]) -> str:
    """The asset id in one of our embed/watch URLs; NotFound for anything else (other hosts included)."""
    parts = urlsplit(url)
    host = (parts.netloc or "").lower()
    if parts.scheme not in ("http", "https") or host not in our_hosts:
        raise NotFound("That URL is not a video on this site")
    match = _PATH.fullmatch(parts.path)
    if not match:
        raise NotFound("That URL is not a video on this site")
    return match.group(1)


def fit(width: int, height: int, maxwidth: int | None, maxheight: int | None,
        default_width: int = DEFAULT_WIDTH) -> tuple[int, int]:
    """Default size at `default_width`, scaled down (never up beyond it) to fit the max box, aspect kept."""
    w = float(min(default_width, width))
    h = w * height / width
    if maxwidth is not None and w > maxwidth:
        w, h = float(maxwidth), maxwidth * height / width
    if maxheight is not None and h > maxheight:
        w, h = maxheight * width / height, float(maxheight)
    return max(1, int(w)), max(1, int(h))


def check_embeddable(asset: Asset | None, now: datetime) -> Asset:
    if asset is None:
        raise NotFound("No such video")
    if asset.visibility == "private":
        raise Unauthorized("This video is private")
    if not in_window(asset.rights, now):
        raise Unauthorized("This video is not published at the moment")
    if not asset.ready:
        raise NotFound("This video is not ready yet")
    return asset


def response(asset: Asset, base_url: str, q: OEmbedQuery, now: datetime) -> dict[str, Any]:
    aw, ah = aspect(asset)
    width, height = fit(aw, ah, q.maxwidth, q.maxheight)
    title = asset.title or "Untitled video"
    body: dict[str, Any] = {
        "version": VERSION, "type": "video", "title": title,
        "provider_name": PROVIDER_NAME, "provider_url": base_url + "/",
        "html": iframe_snippet(f"{base_url}/embed/{asset.id}", title, width, height),
        "width": width, "height": height, "cache_age": cache_age(asset, now),
    }
    if asset.credit:
        body["author_name"] = asset.credit
    thumb = _thumbnail(asset, q.maxwidth, q.maxheight)
    if thumb:
        key, tw, th = thumb
        body.update(thumbnail_url=f"{base_url}/media/{asset.id}/{key}", thumbnail_width=tw, thumbnail_height=th)
    return body


def cache_age(asset: Asset, now: datetime) -> int:
    """Consumers may cache an hour, but never past the moment the video expires."""
    return cap_ttl(CACHE_AGE, asset.rights.available_until, now)


def _thumbnail(asset: Asset, maxwidth: int | None, maxheight: int | None) -> tuple[str, int, int] | None:
    """The largest listed thumbnail within the max box (oEmbed: thumbnails honour maxwidth/maxheight too), else
    the poster when there are no thumbnails and it fits; sizes are those of the image file itself."""
    outputs = asset.outputs or {}
    thumbs = [t for t in outputs.get("thumbnails") or [] if t.get("key") and t.get("width") and t.get("height")]
    fitting = [t for t in thumbs if (maxwidth is None or t["width"] <= maxwidth)
               and (maxheight is None or t["height"] <= maxheight)]
    if fitting:
        best = max(fitting, key=lambda t: t["width"])
        return best["key"], int(best["width"]), int(best["height"])
    size = outputs.get("poster_size") or {}
    if outputs.get("poster") and size.get("width") and size.get("height") and not thumbs \
            and (maxwidth is None or size["width"] <= maxwidth) and (maxheight is None or size["height"] <= maxheight):
        return outputs["poster"], int(size["width"]), int(size["height"])
    return None  # nothing fits the consumer's box: no thumbnail rather than one larger than asked


def to_xml(body: dict[str, Any]) -> str:
    """The spec's XML form: <oembed> with one child per field, text escaped."""
    items = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in body.items())
    return f'<?xml version="1.0" encoding="utf-8" standalone="yes"?>\n<oembed>{items}</oembed>\n'

