"""HTTP policies every domain shares, each written once.

* `base_url`: the scheme and host of absolute links (assets API, oEmbed, feeds, embed, AIT, partner API).
  ONAIR_PUBLIC_URL when set; else X-Forwarded-Proto/-Host, but only from a trusted proxy; else the request's own;
  a host taken from a request must be in ONAIR_ALLOWED_HOSTS, or links use ONAIR_HOST:ONAIR_PORT.
* `client_ip` and `viewer_country`: X-Forwarded-For and the CDN's country headers are believed only when
  the peer is in ONAIR_TRUSTED_PROXIES (default: nobody), so a client cannot pick its own IP or country.
* `cap_ttl`: a cache lifetime never outlives the rights window of what it caches.
* `StaticBundle`: content-hashed static files served immutable, with ETag and gzip.
* `templates`: the one jinja2 set-up (autoescaped; the folder is the domain's own).
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import mimetypes
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import jinja2
from aiohttp import web

from onair.core.settings import SETTINGS, Settings

IMMUTABLE = "public, max-age=31536000, immutable"
# What a Host header may hold (name or IP literal, optional port): anything else is not used in links.
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:\d{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?")
_DEFAULT = Settings()


def settings_of(request: web.Request) -> Settings:
    # The serving app's own first: config_dict builds a ChainMap of every app on each call (a vote asks twice).
    # It also looks in parent applications, so a sub-app sees the same settings.
    settings = request.app.get(SETTINGS)
    return settings if settings is not None else request.config_dict.get(SETTINGS, _DEFAULT)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:        # "[2001:db8::1]:443"
        text = text[1:text.index("]")]
    elif text.count(":") == 1:                      # "203.0.113.9:51234"
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_trusted(address: str | None, settings: Settings) -> bool:
    if not settings.trusted_proxy_networks:
        return False  # the default: no address parsing on every request
    ip = _address(address) if address else None
    return ip is not None and any(ip in net for net in settings.trusted_proxy_networks)


def from_trusted_proxy(request: web.Request) -> bool:
    """True when the TCP peer is one of ours (a load balancer, the CDN): only then are its headers believed."""
    return _is_trusted(request.remote, settings_of(request))


def client_ip(request: web.Request) -> str | None:
    """The viewer's address: the peer, or, behind trusted proxies, the nearest untrusted X-Forwarded-For hop."""
    settings = settings_of(request)
    peer = request.remote
    if not _is_trusted(peer, settings):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if h.strip()]
    # Read from the right: each proxy appends the address it saw, so the first untrusted one is the client
    # (entries further left were written by the client itself and prove nothing).
    for hop in reversed(hops):
        if _address(hop) is None:
            break
        if not _is_trusted(hop, settings):
            return str(_address(hop))
    return str(_address(hops[0])) if hops and _address(hops[0]) else peer


def client_in(request: web.Request, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Whether the viewer's address (`client_ip`) is in one of `networks`."""
    ip = _address(client_ip(request) or "")
    return ip is not None and any(ip in net for net in networks)


def viewer_country(request: web.Request) -> str | None:
    """ISO 3166 alpha-2 code from the CDN's header (ONAIR_COUNTRY_HEADER), only when a trusted proxy set it."""
    if not from_trusted_proxy(request):
        return None
    for header in settings_of(request).country_headers:
        value = request.headers.get(header, "").strip()
        if len(value) == 2 and value.isalpha():
            return value.upper()
    return None


def _first(value: str | None) -> str:
    return (value or "").split(",")[0].strip()


def base_url(request: web.Request) -> str:
    """Scheme and host for absolute links, without a trailing slash (the rule is in the module docstring)."""
    settings = settings_of(request)
    if settings.public_url:
        return settings.public_url.rstrip("/")
    scheme, host = request.scheme, request.host
    if from_trusted_proxy(request):
        proto = _first(request.headers.get("X-Forwarded-Proto")).lower()
        scheme = proto if proto in ("http", "https") else scheme
        host = _first(request.headers.get("X-Forwarded-Host")) or host
    if not _HOST.fullmatch(host or "") or _hostname(host) not in settings.allowed_host_set:
        return settings.base_url  # an arbitrary Host must not reach links a CDN caches for everyone
    return f"{scheme}://{host}"


def _hostname(host: str) -> str:
    """`host` without its port or IPv6 brackets, lower case."""
    if host.startswith("["):
        return host[1:host.index("]")].lower()
    return host.rsplit(":", 1)[0].lower() if ":" in host else host.lower()


def cap_ttl(seconds: int, until: datetime | None, now: datetime) -> int:
    """`seconds`, but never past `until` (the end of a rights window or a token): 0 once it has passed."""
    if until is None:
        return max(0, seconds)
    return max(0, min(seconds, int((until - now).total_seconds())))


def cap_ttl_all(seconds: int, ends: Iterable[datetime | None], now: datetime) -> int:
    """`cap_ttl` over several items (a feed page): the soonest end wins."""
    for end in ends:
        seconds = cap_ttl(seconds, end, now)
    return max(0, seconds)


# --- hashed static bundles ---------------------------------------------------------------------------

@dataclass(frozen=True)
class StaticFile:
    raw: bytes
    gz: bytes
    content_type: str
    etag: str


def _content_type(name: str) -> str:
    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype.endswith("javascript"):
        ctype += "; charset=utf-8"
    return ctype


@dataclass(frozen=True)
class StaticBundle:
    """Static files read once at start-up; their URLs carry a content hash, so they are cached for a year.

    `version` hashes every file (for bundles whose URLs carry one version for all files, like HbbTV's);
    bundles whose file names are hashed already (the player's) ignore it.
    """

    files: dict[str, StaticFile]
    version: str

    @classmethod
    def load(cls, folder: Path, names: Iterable[str] | None = None) -> StaticBundle:
        chosen = sorted(names) if names is not None else sorted(
            p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        files: dict[str, StaticFile] = {}
        digest = hashlib.sha256()
        for name in chosen:
            raw = (folder / name).read_bytes()
            # mtime=0 keeps the gzip bytes (and so their size) identical across runs.
            files[name] = StaticFile(raw, gzip.compress(raw, 9, mtime=0), _content_type(name),
                                     '"' + hashlib.sha256(raw).hexdigest()[:32] + '"')
            digest.update(name.encode() + b"\0" + raw)
        return cls(files, digest.hexdigest()[:12])

    def respond(self, request: web.Request, name: str, extra: dict[str, str] | None = None) -> web.Response | None:
        """The file's response (304 on a matching ETag, gzip when accepted), or None when there is no such file."""
        item = self.files.get(name)
        if item is None:
            return None
        headers = {"Cache-Control": IMMUTABLE, "ETag": item.etag, "Vary": "Accept-Encoding",
                   "X-Content-Type-Options": "nosniff", **(extra or {})}
        if request.headers.get("If-None-Match") == item.etag:
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = item.content_type
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return web.Response(body=item.gz, headers=headers)
        return web.Response(body=item.raw, headers=headers)


def templates(folder: Path, *, trim: bool = False, strict: bool = False) -> jinja2.Environment:
    """The domain's jinja2 templates. Autoescape is always on: titles, names and URLs are user input.

    `trim` drops the newline after a block tag (HTML pages); `strict` makes an undefined variable an error
    (HbbTV documents, where a TV shows whatever we send).
    """
    return jinja2.Environment(loader=jinja2.FileSystemLoader(folder), autoescape=True, trim_blocks=trim,
                              lstrip_blocks=trim, keep_trailing_newline=True,
                              undefined=jinja2.StrictUndefined if strict else jinja2.Undefined)
