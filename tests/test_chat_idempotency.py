"""A chat message sent again under the same idempotency key (a retry after a lost answer, e.g. a 503 from a
commit that timed out although it landed) is the same message: never a second one, never refused as a
duplicate or counted against the sender's rate."""

from __future__ import annotations

import asyncio
import json

from aiohttp.test_utils import TestClient

from tests.chat_helpers import open_room
from tests.device_helpers import mint_device


async def post(client: TestClient, dev: str, text: str, key: str) -> tuple[int, dict, bool]:
    resp = await client.post("/api/v1/chat/idem/messages", json={"device_id": dev, "nickname": "ann", "text": text},
                             headers={"Idempotency-Key": key})
    return resp.status, await resp.json(), resp.headers.get("Idempotent-Replayed") == "true"


async def test_a_retried_message_is_posted_once(client: TestClient) -> None:
    await open_room(client, "idem")
    dev, other = await mint_device(client), await mint_device(client)
    status, first, replayed = await post(client, dev, "hello", "k-1")
    assert (status, replayed) == (201, False)
    # more retries than the rate limit allows (3 in 2 s), two of them racing: all answer the original
    retries = await asyncio.gather(*(post(client, dev, "hello", "k-1") for _ in range(4)))
    assert {(s, m["id"], m["cursor"], r) for s, m, r in retries} == {(201, first["id"], first["cursor"], True)}
    # two first attempts racing each other (the original still committing): one message
    racing = await asyncio.gather(*(post(client, dev, "again", "k-2") for _ in range(2)))
    assert len({m["id"] for _, m, _ in racing}) == 1 and {s for s, _, _ in racing} == {201}
    # the key is the device's own: another device's message under the same key is its own message
    status, theirs, replayed = await post(client, other, "hello", "k-1")
    assert status == 201 and not replayed and theirs["id"] != first["id"]
    # over a WebSocket the frame names the message (client_id)
    async with client.ws_connect("/api/v1/chat/idem/ws") as ws:
        await ws.receive_json()  # history
        acks = []
        for ref in ("a", "b"):
            await ws.send_str(json.dumps({"type": "send", "ref": ref, "device_id": other, "nickname": "bo",
                                          "text": "via ws", "client_id": "w-1"}))
            while (frame := await ws.receive_json(timeout=5))["type"] != "ack":
                pass
            acks.append(frame["message"]["id"])
        assert acks[0] == acks[1]
    page = await (await client.get("/api/v1/chat/idem/messages?after=0")).json()
    assert [m["text"] for m in page["messages"]] == ["hello", "again", "hello", "via ws"]
