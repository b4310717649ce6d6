"""TV and phone together in Chromium: a TV app (HbbTV 2.x UA, OIPF shim) shows a QR code; the phone page
(mobile emulation) opens its URL paired; chat from the phone appears on the TV; the phone's vote makes the
TV's a repeat; a moderator's deletion vanishes on both screens within 2 s."""

from __future__ import annotations

import time
from typing import Any

from aiohttp.test_utils import TestClient

from streaming.interaction import pairing
from tests.conftest import ADMIN
from tests.test_hbbtv_keyflow import OIPF_SHIM, Tv, _shots_dir
from tests.test_show_page import PHONE, _artifacts, server  # noqa: F401 (fixture)

TV2_UA = "Mozilla/5.0 (Linux; Tizen 5.0) AppleWebKit/537.36 (KHTML, like Gecko) HbbTV/1.5.1 (;onair;TestTV;1.0;;)"


async def _setup(client: TestClient) -> str:
    poll = await (await client.post("/api/v1/polls", headers=ADMIN, json={
        "question": "Best bridge?", "options": ["Old", "New"]})).json()
    assert (await client.post(f"/api/v1/polls/{poll['id']}/open", headers=ADMIN)).status == 200
    assert (await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json={
        "slug": "newsapp", "name": "News", "org_id": 4660, "app_id": 5, "chat_room": "newsroom",
        "poll_id": poll["id"]})).status == 201
    assert (await client.post("/api/v1/shows", headers=ADMIN, json={
        "slug": "news", "title": "News", "chat_room": "newsroom", "hbbtv_app": "newsapp"})).status == 201
    assert (await client.post("/api/v1/shows/news/polls", headers=ADMIN, json={"poll_id": poll["id"]})).status == 200
    return poll["id"]


async def test_tv_and_phone_paired(server: TestClient, browser: Any, tmp_path: Any) -> None:  # noqa: F811
    await _setup(server)
    shots = _shots_dir(tmp_path)
    tv_context = await browser.new_context(user_agent=TV2_UA, viewport={"width": 1280, "height": 720})
    await tv_context.add_init_script(OIPF_SHIM)
    tv_page = await tv_context.new_page()
    tv = Tv(tv_page, await tv_context.new_cdp_session(tv_page), shots)
    await tv_page.goto(str(server.make_url("/hbbtv/newsapp/")))
    await tv.until("() => document.body && document.body.getAttribute('data-app') === 'ready'")
    await tv.key("RED")
    await tv.key("YELLOW")
    await tv.until("() => !!document.body.getAttribute('data-pair-url')")
    url = await tv_page.evaluate("() => document.body.getAttribute('data-pair-url')")
    qr_src = await tv_page.evaluate("() => document.getElementById('pair-qr').getAttribute('src')")
    assert await (await server.get(qr_src)).read() == pairing.qr_svg(url)  # the QR code encodes that URL
    assert await tv.visible("pair")
    await tv.shot("pair-1-tv-code")

    # the household chatted before under a name (another phone, paired earlier): the phone takes it on
    tv_device = await tv_page.evaluate("() => localStorage.getItem('onair.device')")
    assert (await server.post("/api/v1/chat/newsroom/messages", json={
        "device_id": tv_device, "nickname": "The Smiths", "text": "earlier"})).status == 201

    phone_context = await browser.new_context(**PHONE)
    phone = await phone_context.new_page()
    await phone.goto(url)
    await phone.wait_for_selector("#show[data-paired='1']")
    assert "pair=" not in phone.url  # the used code leaves the address bar
    assert await phone.input_value("#chat-nick") == "The Smiths"
    await phone.screenshot(path=str(_artifacts(tmp_path) / "pair-2-phone-paired.png"))

    await phone.fill("#chat-text", "Hello from the sofa")
    await phone.click("#chat-form button")
    line = phone.locator("#chat-log li", has_text="Hello from the sofa")
    await line.wait_for()
    message_id = int(await line.get_attribute("data-id"))
    await tv.until("(id) => !!document.getElementById('msg-' + id)", message_id)
    assert "The Smiths" in await tv_page.text_content(f"#msg-{message_id}")  # the household's name on the TV

    await phone.tap("#poll button[data-option='2']")
    await phone.wait_for_function(
        "() => document.querySelector(\"#poll button[data-option='2'] .pct\").textContent === '100%'")
    await tv.key("GREEN")  # the TV asks whether its household voted: it did, from the phone
    await tv.until("() => document.getElementById('poll-status').textContent === 'You voted from your phone.'")
    await tv.key("DOWN")
    await tv.key("ENTER")  # ignored: the TV knows the household voted
    await tv.shot("pair-3-tv-voted-from-phone")
    total = (await (await server.get(f"/api/v1/polls/{await _poll_id(server)}/results")).json())["total"]
    assert total == 1  # one household, one vote

    await tv.key("YELLOW")
    started = time.monotonic()
    assert (await server.delete(f"/api/v1/chat/newsroom/messages/{message_id}", headers=ADMIN)).status == 204
    await line.wait_for(state="detached", timeout=2000)
    await tv.until("(id) => !document.getElementById('msg-' + id)", message_id, wait_ms=2000)
    print(f"deletion gone on phone and TV after {time.monotonic() - started:.2f} s")

    # unpair from the TV: OK in the chat panel; the phone notices and goes back to its own identity
    await tv.key("ENTER")
    await tv.until("() => document.body.getAttribute('data-unpaired') === '1'")
    await phone.wait_for_selector("#show[data-paired='0']", timeout=15_000)
    assert "unpaired" in await phone.text_content("#pair-state")
    assert await phone.evaluate("() => localStorage.getItem('onair.device')") is None
    await phone.screenshot(path=str(_artifacts(tmp_path) / "pair-4-phone-unpaired-by-tv.png"))
    assert not tv.errors, tv.errors
    await phone_context.close()
    await tv_context.close()


async def _poll_id(client: TestClient) -> str:
    return (await (await client.get("/api/v1/shows/news")).json())["poll"]["id"]
