"""A minimal HTTP/1.1 load client for the in-process profiles: raw keep-alive sockets, so the client's own cost
stays small next to the server's (aiohttp's client would double the profiled work)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


async def send_all(port: int, requests: Iterable[bytes], connections: int) -> dict[int, int]:
    """Send every request over `connections` keep-alive sockets, one in flight on each (like phones), read each
    answer by its Content-Length, and count the statuses."""
    statuses: dict[int, int] = {}
    it = iter(requests)

    async def conn() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for req in it:
                writer.write(req)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                await reader.readexactly(length)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(conn() for _ in range(connections)))
    return statuses
