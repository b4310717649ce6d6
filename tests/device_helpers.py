"""Minting device ids the way every client must: fetch a challenge, solve its proof-of-work, post both."""

from __future__ import annotations

from typing import Any

from streaming.interaction.proof import solve


async def mint_device(http: Any, base: str = "", *, terminal_id: str | None = None, expect: int = 201) -> str:
    """A device id from POST /api/v1/devices; `http` is an aiohttp TestClient (base "") or ClientSession."""
    async with http.get(f"{base}/api/v1/devices/challenge") as resp:
        assert resp.status == 200, await resp.text()
        ch = await resp.json()
    body: dict[str, Any] = {"challenge": ch["challenge"], "nonce": solve(ch["challenge"], ch["bits"])}
    if terminal_id:
        body["terminal_id"] = terminal_id
    async with http.post(f"{base}/api/v1/devices", json=body) as resp:
        data = await resp.json(content_type=None)
        assert resp.status == expect, data
        return data.get("device_id", "")
