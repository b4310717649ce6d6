"""Vote integrity over the real app and PostgreSQL: a minting script's votes are counted but flagged as a burst,
a household behind one address is not, and a producer's exclusion shows a second tally without touching the first."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.settings import Settings
from streaming.interaction.proof import solve
from tests.conftest import ADMIN

STUFFER = "203.0.113.9"
HOUSEHOLD = "198.51.100.7"
MINT_PER_IP = 30


async def _mint(c: TestClient, ip: str) -> str | None:
    """One device id minted as the client at `ip` (through the trusted proxy at 127.0.0.1), None when refused."""
    hdr = {"X-Forwarded-For": ip}
    ch = await (await c.get("/api/v1/devices/challenge", headers=hdr)).json()
    resp = await c.post("/api/v1/devices", json={"challenge": ch["challenge"], "nonce": solve(ch["challenge"],
                                                                                              ch["bits"])},
                        headers=hdr)
    if resp.status == 429:
        return None
    assert resp.status == 201, await resp.text()
    return (await resp.json())["device_id"]


async def _vote(c: TestClient, pid: str, device: str, ip: str, option: int) -> None:
    resp = await c.post(f"/api/v1/polls/{pid}/votes", json={"device_id": device, "option_id": option},
                        headers={"X-Forwarded-For": ip})
    assert resp.status == 201, await resp.text()  # flagged or not, every vote is accepted and counted


async def test_minting_script_is_flagged_household_is_not(settings: Settings) -> None:
    s = replace(settings, trusted_proxies="127.0.0.1/32", device_pow_bits=4, device_mint_per_ip=MINT_PER_IP,
                device_mint_per_subnet=2 * MINT_PER_IP, vote_flag_per_ip=20, vote_burst_votes=10)
    async with TestClient(TestServer(create_app(s, s.database_url or "", run_worker=False))) as c:
        poll = await (await c.post("/api/v1/polls", json={"question": "Who?", "options": ["A", "B"]},
                                   headers=ADMIN)).json()
        pid = poll["id"]
        assert (await c.post(f"/api/v1/polls/{pid}/open", headers=ADMIN)).status == 200

        # The script mints as fast as it can; issuance stops at the per-IP setting.
        minted: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            device = await _mint(c, STUFFER)
            if device is None:
                break
            minted.append(device)
        assert len(minted) == MINT_PER_IP
        await asyncio.gather(*(_vote(c, pid, d, STUFFER, 1) for d in minted))

        household = [await _mint(c, HOUSEHOLD) for _ in range(5)]
        for i, device in enumerate(household):
            assert device
            await _vote(c, pid, device, HOUSEHOLD, 2 if i else 1)

        assert (await c.get(f"/api/v1/polls/{pid}/integrity")).status == 401
        resp = await c.get(f"/api/v1/polls/{pid}/integrity", headers=ADMIN)
        report = await resp.json()
        assert resp.status == 200, report
        assert report["votes"] == MINT_PER_IP + 5
        assert report["flagged"]["burst"] == MINT_PER_IP  # every vote of the script's burst, none of the household
        assert report["flagged"]["ip"] == MINT_PER_IP - 20
        assert report["flagged"]["any"] == MINT_PER_IP
        assert report["bursts"][0]["subnet"] == "203.0.113.0/24" and report["bursts"][0]["votes"] == MINT_PER_IP
        by_ip = {r["ip"]: r for r in report["top_ips"]}
        assert by_ip[HOUSEHOLD] == {"ip": HOUSEHOLD, "votes": 5, "flagged": 0}
        assert by_ip[STUFFER]["flagged"] == MINT_PER_IP
        assert {b["bucket"]: b["votes"] for b in report["device_age"]}["under 1 min"] == MINT_PER_IP + 5

        # Exclusions wait for the poll to close: while votes still arrive the counts would not mean anything.
        early = await c.post(f"/api/v1/polls/{pid}/exclusions", json={"flags": ["burst"]}, headers=ADMIN)
        assert early.status == 409 and (await early.json())["type"] == "/problems/poll-not-closed"
        bad = await c.post(f"/api/v1/polls/{pid}/exclusions", json={"flags": ["vibes"]}, headers=ADMIN)
        assert bad.status == 400 and bad.content_type == "application/problem+json"
        assert (await c.post(f"/api/v1/polls/{pid}/close", headers=ADMIN)).status == 200

        resp = await c.post(f"/api/v1/polls/{pid}/exclusions", json={"flags": ["burst"]}, headers=ADMIN)
        data = await resp.json()
        assert resp.status == 200, data
        public = await (await c.get(f"/api/v1/polls/{pid}/results")).json()
        for body in (data, public):
            assert body["total"] == MINT_PER_IP + 5  # the acknowledged tally is unchanged
            assert [o["votes"] for o in body["options"]] == [MINT_PER_IP + 1, 4]
            after = body["after_exclusions"]
            assert after["flags"] == ["burst"] and after["excluded"] == MINT_PER_IP and after["total"] == 5
            assert [o["votes"] for o in after["options"]] == [1, 4]
        csv = await (await c.get(f"/api/v1/polls/{pid}/export.csv", headers=ADMIN)).text()
        assert "excluded" in csv and "'burst'" in csv

        cleared = await (await c.post(f"/api/v1/polls/{pid}/exclusions", json={"flags": []}, headers=ADMIN)).json()
        assert "after_exclusions" not in cleared and cleared["total"] == MINT_PER_IP + 5
