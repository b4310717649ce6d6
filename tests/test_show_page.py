"""The show page /s/{slug} in Chromium with a phone's viewport: vote and see bars, chat (own held message
flagged), a moderator's deletion vanishes live; plus the page's headers and weight."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.settings import Settings
from tests.conftest import ADMIN

PHONE = {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
         "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "Chrome/120.0 Mobile Safari/537.36"}


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[TestClient]:
    app = create_app(settings, settings.database_url or "", run_worker=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def _show_with_poll(client: TestClient) -> str:
    resp = await client.post("/api/v1/shows", headers=ADMIN, json={
        "slug": "evening-news", "title": "Evening News", "description": "Tonight: <the> harbour.",
        "schedule": "Weekdays 19:00"})
    assert resp.status == 201
    poll = await (await client.post("/api/v1/polls", headers=ADMIN, json={
        "question": "Should the harbour bridge open on Sundays?", "options": ["Yes", "No"],
        "show": "evening-news"})).json()
    return poll["id"]


def _artifacts(tmp_path: Path) -> Path:
    where = Path(os.environ.get("ONAIR_TEST_ARTIFACTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


async def test_page_switches_to_the_shows_next_poll(server: TestClient, browser) -> None:
    first = await _show_with_poll(server)
    await server.post(f"/api/v1/polls/{first}/open", headers=ADMIN)
    page = await browser.new_page()
    await page.goto(str(server.make_url("/s/evening-news")))
    await page.wait_for_selector("#show[data-ready='1']")
    nxt = await (await server.post("/api/v1/polls", headers=ADMIN, json={
        "question": "And on Saturdays?", "options": ["Yes", "No"], "show": "evening-news"})).json()
    await server.post(f"/api/v1/polls/{nxt['id']}/open", headers=ADMIN)
    await server.post(f"/api/v1/polls/{first}/close", headers=ADMIN)  # the page asks for the show's next poll
    await page.wait_for_function("() => document.getElementById('poll-question').textContent === 'And on Saturdays?'")
    await page.click("#poll button[data-option='2']")
    await page.wait_for_function("() => document.querySelector(\"#poll button[data-option='2'] .pct\").textContent"
                                 " === '100%'")
    await page.close()


async def test_page_is_public_strict_and_escapes(server: TestClient) -> None:
    await _show_with_poll(server)
    resp = await server.get("/s/evening-news")
    html = await resp.text()
    assert resp.status == 200
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors *" in csp and "unsafe" not in csp
    assert "Tonight: &lt;the&gt; harbour." in html and "Voting opens soon" in html
    assert (await server.get("/s/nope")).status == 404
    assert (await server.get("/s/Bad Slug")).status == 404
    embedded = await (await server.get("/s/evening-news?embed=1")).text()
    assert 'class="embedded"' in embedded and "<h1>" not in embedded


async def test_phone_votes_chats_and_sees_a_deletion_vanish(server: TestClient, browser, tmp_path: Path) -> None:
    poll_id = await _show_with_poll(server)
    base = str(server.make_url(""))
    out = _artifacts(tmp_path)
    context = await browser.new_context(**PHONE)
    page = await context.new_page()
    transferred = []
    page.on("response", lambda r: transferred.append(r))
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(f"{base}/s/evening-news")
    await page.wait_for_selector("#show[data-ready='1']")
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= 360  # no sideways scrolling
    await page.screenshot(path=str(out / "show-opens-soon.png"))
    box_before = await page.locator("#chat-log").bounding_box()

    # the producer opens the poll: the page learns it live (SSE) without layout shift
    await server.post(f"/api/v1/polls/{poll_id}/open", headers=ADMIN)
    await page.wait_for_function("() => !document.querySelector('#poll button[data-option]').disabled")
    assert await page.locator("#chat-log").bounding_box() == box_before
    await page.tap("#poll button[data-option='1']")
    await page.wait_for_function("() => document.querySelector(\"#poll button[data-option='1'] .pct\").textContent"
                                 " === '100%'")
    assert await page.locator("#poll button.mine").count() == 1
    await page.screenshot(path=str(out / "show-voted.png"))

    await page.fill("#chat-nick", "Ann")
    await page.fill("#chat-text", "Hello from the phone")
    await page.click("#chat-form button")
    line = page.locator("#chat-log li", has_text="Hello from the phone")
    await line.wait_for()
    message_id = await line.get_attribute("data-id")

    # a moderator deletes it: it vanishes from the page
    resp = await server.delete(f"/api/v1/chat/show-evening-news/messages/{message_id}", headers=ADMIN)
    assert resp.status == 204
    await line.wait_for(state="detached", timeout=2000)

    # pre-moderation: the author sees the message flagged, nobody else sees it
    await server.patch("/api/v1/chat/show-evening-news", json={"premoderation": True}, headers=ADMIN)
    await page.fill("#chat-text", "Held back")
    await page.click("#chat-form button")
    await page.locator("#chat-log li.held", has_text="Held back").wait_for()
    await page.screenshot(path=str(out / "show-chat-held.png"))

    await server.post(f"/api/v1/polls/{poll_id}/close", headers=ADMIN)
    await page.wait_for_function("() => document.getElementById('poll-note').textContent === 'Voting has closed'")
    await page.screenshot(path=str(out / "show-closed.png"))

    # the next poll of the show: a closed poll makes the page look for it at once
    nxt = await (await server.post("/api/v1/polls", headers=ADMIN, json={
        "question": "And on Saturdays?", "options": ["Yes", "No", "Only in summer"], "show": "evening-news"})).json()
    await server.post(f"/api/v1/polls/{nxt['id']}/open", headers=ADMIN)
    await page.reload()
    await page.wait_for_selector("#show[data-ready='1']")
    assert await page.text_content("#poll-question") == "And on Saturdays?"
    await page.tap("#poll button[data-option='3']")
    await page.wait_for_function("() => document.querySelector(\"#poll button[data-option='3'] .pct\").textContent"
                                 " === '100%'")
    sizes = {r.url: (await r.request.sizes())["responseBodySize"] for r in transferred
             if not r.url.endswith(("/events", "/ws")) and "/api/" not in r.url}
    assert sum(sizes.values()) < 150_000, sizes  # the budget for a cold load (page, style, script)
    assert all(r.status < 400 for r in transferred), [(r.url, r.status) for r in transferred]
    assert not errors, errors
    await context.close()
