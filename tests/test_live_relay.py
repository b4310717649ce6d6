"""The ingest relay hands a publisher's bytes only to the encoder job holding its token: another connection to the
port (any pod in the cluster can reach it when ONAIR_LIVE_RELAY_HOST is the pod IP) gets nothing."""

from __future__ import annotations

import asyncio

from streaming.live.sessions import Relay


async def test_relay_serves_only_the_token_holder(db) -> None:
    relay = Relay("nochannel", db)
    port = await relay.start()
    try:
        await relay.write(b"FLV-bytes")
        intruder_r, intruder_w = await asyncio.open_connection("127.0.0.1", port)
        intruder_w.write(b"guess\n")
        assert await asyncio.wait_for(intruder_r.read(), 5) == b""     # closed, nothing handed over
        assert not relay.connected.is_set()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(relay.token.encode() + b"\n")
        assert await asyncio.wait_for(reader.readexactly(9), 5) == b"FLV-bytes"
        assert relay.connected.is_set()
        writer.close()
        intruder_w.close()
    finally:
        await relay.close("test over")
