"""Outbound URLs a user hands us (URL pulls, webhooks): refuse what would reach inside our own network.

Names are checked where they are used: `pinned_session` resolves through `PinnedResolver`, so the address a
connection goes to is the address that was checked, on every redirect hop (no second lookup a DNS-rebinding
server could answer differently). IP literals never reach a resolver, so `check_url` checks them, per hop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

# IPv6 forms that carry an IPv4 address (NAT64, 6to4, Teredo, IPv4-mapped and -compatible): through a translator
# they reach that IPv4 address, so none of them counts as public whatever the embedded address is.
_EMBEDS_IPV4 = tuple(ipaddress.ip_network(n) for n in (
    "64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32", "::ffff:0:0/96", "::/96"))


def is_public(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if addr.version == 6 and any(addr in net for net in _EMBEDS_IPV4):
        return False
    return addr.is_global and not addr.is_multicast


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
    if not is_public(addr):
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
        if not is_public(addr):
            raise UrlRejected(f"the URL points at a private or loopback address ({addr}); refused")


class PinnedResolver(AbstractResolver):
    """aiohttp's resolver, refusing any non-public answer: the connector connects to exactly what passed."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._allow_private = allow_private

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if not self._allow_private:
            for info in found:
                addr = ipaddress.ip_address(info["host"])
                if not is_public(addr):
                    raise UrlRejected(f"{host!r} resolves to a private or loopback address ({addr}); refused")
        return found

    async def close(self) -> None:
        await self._inner.close()


def pinned_session(allow_private: bool, **kwargs: Any) -> aiohttp.ClientSession:
    """A client session whose every connection (redirect hops included) goes to a checked address."""
    connector = aiohttp.TCPConnector(resolver=PinnedResolver(allow_private), use_dns_cache=False)
    return aiohttp.ClientSession(connector=connector, **kwargs)
