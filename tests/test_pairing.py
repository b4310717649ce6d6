"""Pairing a TV with a phone: short codes (QR code of the show page's URL), single-use, expiring,
rate-limited; a claimed code hands the phone the TV's device id, so the household votes once."""

from __future__ import annotations

from datetime import timedelta

import segno
from aiohttp.test_utils import TestClient

from streaming.interaction import pairing
from tests.conftest import ADMIN
from tests.device_helpers import mint_device
from tests.embed_helpers import FakeClock


async def _device(client: TestClient) -> str:
    return await mint_device(client)


async def test_pair_claim_once_expire_and_limits(clocked: tuple[TestClient, FakeClock]) -> None:
    client, clock = clocked
    assert (await client.post("/api/v1/shows", headers=ADMIN, json={
        "slug": "quiz", "title": "Quiz", "hbbtv_app": "quiz-tv"})).status == 201
    tv = await _device(client)
    resp = await client.post("/api/v1/pairings", json={"device_id": tv, "hbbtv_app": "quiz-tv"})
    made = await resp.json()
    assert resp.status == 201, made
    code = made["code"]
    assert made["url"].endswith(f"/s/quiz?pair={code}") and made["show"] == "quiz"
    # the QR code is the show page's URL with the code, rendered server-side as SVG
    svg = await client.get(made["qr"])
    assert svg.status == 200 and svg.content_type == "image/svg+xml"
    assert await svg.read() == pairing.qr_svg(made["url"])
    assert segno.make(made["url"], error="m").designator  # a QR code segno can build from that URL
    png = await client.get(made["qr_png"])  # the same code as a PNG
    assert png.status == 200 and png.content_type == "image/png"
    assert await png.read() == pairing.qr_png(made["url"])

    # the household's nickname: the last one its device used in the show's chat
    assert (await client.post("/api/v1/chat/show-quiz/messages", json={
        "device_id": tv, "nickname": "The Smiths", "text": "hello"})).status == 201
    claimed = await client.post(f"/api/v1/pairings/{code.lower()}/claim", json={})
    assert claimed.status == 200 and (await claimed.json()) == {"device_id": tv, "show": "quiz", "code": code,
                                                                "nickname": "The Smiths"}
    assert await (await client.get(f"/api/v1/pairings/{code}")).json() == {"paired": True}
    again = await client.post(f"/api/v1/pairings/{code}/claim", json={})
    assert again.status == 404  # single-use
    assert (await client.get(made["qr"])).status == 404

    # the paired phone votes as the TV: the TV's own vote afterwards is a repeat
    poll = await (await client.post("/api/v1/polls", headers=ADMIN, json={
        "question": "Q?", "options": ["a", "b"], "show": "quiz"})).json()
    await client.post(f"/api/v1/polls/{poll['id']}/open", headers=ADMIN)
    first = await client.post(f"/api/v1/polls/{poll['id']}/votes", json={"device_id": tv, "option_id": 1})
    assert first.status == 201
    repeat = await (await client.post(f"/api/v1/polls/{poll['id']}/votes",
                                      json={"device_id": tv, "option_id": 1})).json()
    assert repeat["first"] is False and repeat["changed"] is False
    mine = await (await client.post(f"/api/v1/polls/{poll['id']}/my-vote", json={"device_id": tv})).json()
    assert mine == {"poll_id": poll["id"], "option_id": 1}
    other = await _device(client)
    mine = await (await client.post(f"/api/v1/polls/{poll['id']}/my-vote", json={"device_id": other})).json()
    assert mine["option_id"] is None

    # codes expire
    late = await (await client.post("/api/v1/pairings", json={"device_id": tv, "show": "quiz"})).json()
    clock.now += pairing.LIFETIME + timedelta(seconds=1)
    assert (await client.post(f"/api/v1/pairings/{late['code']}/claim", json={})).status == 404

    # a device holds only a few live codes; cancelling (unpairing from the TV) frees them
    for _ in range(pairing.MAX_LIVE_PER_DEVICE):
        assert (await client.post("/api/v1/pairings", json={"device_id": tv, "show": "quiz"})).status == 201
    too_many = await client.post("/api/v1/pairings", json={"device_id": tv, "show": "quiz"})
    assert too_many.status == 429 and "Retry-After" in too_many.headers
    cancelled = await (await client.post("/api/v1/pairings/cancel", json={"device_id": tv})).json()
    assert cancelled == {"cancelled": pairing.MAX_LIVE_PER_DEVICE, "unpaired": 1}  # the TV unpairs its phone too
    assert await (await client.get(f"/api/v1/pairings/{code}")).json() == {"paired": False}
    assert (await client.post("/api/v1/pairings", json={"device_id": tv, "show": "quiz"})).status == 201

    # bad input: a forged device, no show, a wrong code; guessing is rate-limited per network
    forged = await client.post("/api/v1/pairings", json={"device_id": "d1.x.y", "show": "quiz"})
    assert forged.status == 403
    assert (await client.post("/api/v1/pairings", json={"device_id": tv, "show": "nope"})).status == 404
    statuses = [(await client.post("/api/v1/pairings/ZZZZZZ/claim", json={})).status for _ in range(19)]
    assert statuses[:18] == [404] * 18 and statuses[18] == 429  # 20 failures in all (two above)


async def test_the_phone_unpairs_itself(clocked: tuple[TestClient, FakeClock]) -> None:
    client, _ = clocked
    assert (await client.post("/api/v1/shows", headers=ADMIN, json={"slug": "late", "title": "Late"})).status == 201
    tv = await _device(client)
    made = await (await client.post("/api/v1/pairings", json={"device_id": tv, "show": "late"})).json()
    claimed = await (await client.post(f"/api/v1/pairings/{made['code']}/claim", json={})).json()
    assert claimed["nickname"] is None  # the household never chatted: the phone keeps its own name
    assert (await client.post(f"/api/v1/pairings/{made['code']}/unpair", json={})).status == 200
    assert await (await client.get(f"/api/v1/pairings/{made['code']}")).json() == {"paired": False}
    assert (await client.post(f"/api/v1/pairings/{made['code']}/unpair", json={})).status == 404
    assert (await client.get("/api/v1/pairings/not-a-code")).status == 200  # says unpaired, reveals nothing
