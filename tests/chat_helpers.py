"""Chat rooms are made by staff: tests open the rooms they post to, the way the studio does."""

from __future__ import annotations

from typing import Any

from tests.conftest import ADMIN


async def open_room(http: Any, room: str, base: str = "", *, headers: dict[str, str] | None = None) -> None:
    """POST /api/v1/chat/rooms; `http` is an aiohttp TestClient (base "") or ClientSession. An existing room is
    fine (several processes or tests may open the same one)."""
    async with http.post(f"{base}/api/v1/chat/rooms", json={"room": room}, headers=headers or ADMIN) as resp:
        assert resp.status in (201, 409), await resp.text()
