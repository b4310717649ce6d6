"""Chat limits hold across processes: two app instances sharing Redis give a device one budget, not two, and a
client IP minting many devices is capped per room."""

from __future__ import annotations

import uuid

from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.settings import Settings
from tests.chat_helpers import open_room
from tests.device_helpers import mint_device


async def test_device_rate_and_ip_ceiling_are_shared(settings: Settings, redis_url: str) -> None:
    shared = settings.with_(redis_url=redis_url, chat_rate_messages=3, chat_rate_seconds=30.0,
                            chat_cooloff_seconds=30.0, chat_ip_messages=8)
    room = f"shared-{uuid.uuid4().hex[:8]}"  # Redis outlives the test: a fresh room each run
    a_app = create_app(shared, shared.database_url or "", run_worker=False)
    b_app = create_app(shared, shared.database_url or "", run_worker=False)
    async with TestClient(TestServer(a_app)) as a, TestClient(TestServer(b_app)) as b:
        dev = await mint_device(a)
        await open_room(a, room)

        async def say(client: TestClient, device: str, text: str) -> int:
            resp = await client.post(f"/api/v1/chat/{room}/messages",
                                     json={"device_id": device, "nickname": "ann", "text": text})
            return resp.status

        # alternating processes: each one's own guard would allow 3, together only 3 pass
        statuses = [await say(c, dev, f"hello {i}") for i, c in enumerate((a, b, a, b, a, b))]
        assert statuses.count(201) == 3 and statuses[3:] == [429, 429, 429], statuses
        # many devices from one address: at most 8 messages a minute to the room, whichever process
        others = [await mint_device(a if i % 2 else b) for i in range(4)]
        more = [await say(a if i % 2 else b, others[i % 4], f"msg {i}") for i in range(8)]
        assert more.count(201) == 5 and more.count(429) == 3, more  # 3 + 5 = the ceiling of 8
