"""The studio in a real Chromium (Playwright): login, the library's live status, polls with live bars, chat
moderation. The issue-16 acceptance walks are in test_studio_acceptance.py."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from tests.accounts_helpers import PASSWORD, make_user
from tests.conftest import ADMIN
from tests.device_helpers import mint_device
from tests.helpers import make_asset
from tests.studio_helpers import confirm


async def logged_in(browser, client: TestClient, name: str = "chief", section: str = "shows"):
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    await page.goto(str(client.make_url("/studio/")))
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_selector("header.top nav")
    await page.goto(str(client.make_url(f"/studio/{section}")))
    page.errors = errors  # type: ignore[attr-defined]
    return page


async def test_login_is_required_and_a_wrong_password_is_refused(client: TestClient, browser, db) -> None:
    await make_user(db, "chief", "admin")
    page = await (await browser.new_context()).new_page()
    await page.goto(str(client.make_url("/studio/")))
    await page.fill("input[name=name]", "chief")
    await page.fill("input[name=password]", "wrong password")
    await page.click("button[type=submit]")
    await page.wait_for_selector(".error")
    assert await page.locator("header.top nav").count() == 0
    assert (await client.get("/api/v1/assets")).status == 401
    resp = await client.get("/", allow_redirects=False)  # the first URL `make run` prints
    assert resp.status == 302 and resp.headers["Location"] == "/studio/"
    resp = await client.get("/studio/library", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/studio/"


async def test_poll_bars_follow_votes_and_embed_snippets(client: TestClient, browser, db) -> None:
    await make_asset(db, "asset000001", title="<b>Show</b>", status="transcoding", progress=40)
    await make_user(db, "chief", "admin")
    page = await logged_in(browser, client, section="library")
    row = page.locator('tr[data-asset="asset000001"]')
    assert await row.locator("a.title").inner_text() == "<b>Show</b>"  # escaped, shown as typed
    assert (await row.locator(".badge").inner_text(), await row.locator(".pct").inner_text()) == ("transcoding",
                                                                                                  "40%")
    await db.execute("UPDATE assets SET progress = 80, status = 'packaging' WHERE id = 'asset000001'")
    await page.wait_for_selector('tr[data-asset="asset000001"] .pct:text("80%")', timeout=10_000)
    await make_asset(db, "asset000002", title="Added by a colleague")  # appears on its own, on top
    await page.wait_for_selector('#asset-rows tr:first-child[data-asset="asset000002"]', timeout=10_000)
    assert await page.locator("#asset-rows tr").count() == 2
    await page.goto(str(client.make_url("/studio/shows")))

    await page.fill("#new-poll input[name=question]", "Best <i>act</i>?")
    await page.fill("#new-poll textarea[name=options]", "Singer\nJuggler\nDog")
    await page.click("#new-poll button[type=submit]")
    card = page.locator(".poll").first
    await card.wait_for()
    poll_id = await card.get_attribute("data-poll")
    assert await card.locator("strong").inner_text() == "Best <i>act</i>?"
    await card.locator("button[data-action=open]").click()
    await page.wait_for_selector(f'[data-poll="{poll_id}"][data-status="open"]')

    async def vote(option: int) -> None:
        dev = await mint_device(client)
        resp = await client.post(f"/api/v1/polls/{poll_id}/votes", json={"device_id": dev, "option_id": option})
        assert resp.status == 201

    await asyncio.gather(*(vote(o) for o in (1, 1, 1, 2, 3, 3)))
    await page.wait_for_selector(f'[data-poll="{poll_id}"] .option[data-option="1"] .bar[data-votes="3"]')
    await page.wait_for_selector(f'[data-poll="{poll_id}"] .option[data-option="3"] .bar[data-votes="2"]')
    widths = [await page.locator(f'[data-poll="{poll_id}"] .option[data-option="{o}"] .bar').evaluate(
        "b => parseFloat(b.style.width)") for o in (1, 2, 3)]  # the target width; the bar animates to it
    assert widths[0] > widths[2] > widths[1] > 0
    assert await card.locator(".total").inner_text() == "6 votes"
    await card.locator("button[data-action=close]").click()
    await confirm(page)
    await page.wait_for_selector(f'[data-poll="{poll_id}"][data-status="closed"]')
    assert page.errors == []  # type: ignore[attr-defined]


async def test_deleted_message_vanishes_on_a_second_page(client: TestClient, browser, db) -> None:
    await make_user(db, "chief", "admin")
    first = await logged_in(browser, client)
    second = await logged_in(browser, client)
    for page in (first, second):
        await page.fill("#room-form input[name=room]", "finale")
        await page.click("#room-form button[type=submit]")
        await page.wait_for_selector("#room-settings:not([hidden])")
    dev = await mint_device(client)
    evil = "<img src=x onerror=alert(1)>"
    for text in ("hello all", "nasty remark"):
        resp = await client.post("/api/v1/chat/finale/messages",
                                 json={"device_id": dev, "nickname": evil, "text": text})
        assert resp.status == 201
    for page in (first, second):
        await page.wait_for_selector('#messages li:has-text("nasty remark")')
    assert await first.locator("#messages img").count() == 0
    assert await first.locator("#messages .nick").first.inner_text() == evil

    await first.locator('#messages li:has-text("nasty remark") button.delete').click()
    await second.wait_for_selector('#messages li:has-text("nasty remark")', state="detached")
    await first.wait_for_selector('#messages li:has-text("nasty remark")', state="detached")
    assert await second.locator('#messages li:has-text("hello all")').count() == 1
    page = await (await client.get("/api/v1/chat/finale/messages?after=0")).json()
    assert [m["text"] for m in page["messages"]] == ["hello all"]

    # the click only starts the studio's fetch: wait for the ban to be answered before testing its effect
    async with first.expect_response(lambda r: r.url.endswith("/bans") and r.request.method == "POST") as banned:
        await first.locator('#messages li:has-text("hello all") button.ban').click()
    assert (await banned.value).ok
    resp = await client.post("/api/v1/chat/finale/messages", json={"device_id": dev, "nickname": "x",
                                                                   "text": "again"})
    assert resp.status == 403
    assert (await client.get("/api/v1/chat/finale", headers=ADMIN)).status == 200
    assert first.errors == [] and second.errors == []  # type: ignore[attr-defined]
