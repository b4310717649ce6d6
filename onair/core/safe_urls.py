"""Outbound URLs a user hands us (URL pulls, webhooks): refuse what would reach inside our own network."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class UrlRejected(ValueError):
    pass


def check_url_shape(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UrlRejected("only http and https URLs can be pulled")
    if not parts.hostname:
        raise UrlRejected("the URL has no host")
    if parts.username or parts.password:
        raise UrlRejected("URLs with credentials are not accepted")
    return url


def check_url(url: str, allow_private: bool) -> str:
    """What can be told without DNS, at request time: the shape, and no literal loopback/private target.
    The pull itself resolves the host and re-checks every redirect hop (check_destination)."""
    check_url_shape(url)
    host = (urlsplit(url).hostname or "").lower()
    if allow_private:
        return url
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        raise UrlRejected("the URL points at this machine; refused")
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return url
    if not addr.is_global or addr.is_multicast:
        raise UrlRejected(f"the URL points at a private or loopback address ({addr}); refused")
    return url


async def check_destination(url: str, allow_private: bool) -> None:
    """Resolve the host and refuse loopback, private, link-local and other non-public addresses."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UrlRejected(f"the host {host!r} does not resolve") from None
    if allow_private:
        return
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if not addr.is_global or addr.is_multicast:
            raise UrlRejected(f"the URL points at a private or loopback address ({addr}); refused")
