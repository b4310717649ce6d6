"""Same-site CSRF in a real Chromium: a page on another port of the same host (same site, so the browser
sends the SameSite=Strict cookie) cannot change anything with a logged-in producer's cookie."""

from __future__ import annotations

import json

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.accounts_helpers import PASSWORD, make_user
from tests.conftest import ADMIN

EVIL = """<!doctype html><title>win a prize</title>
<form method="post" action="{target}/api/v1/polls/{poll}/close"><input name="x" value="1"></form>
<script>
fetch("{target}/api/v1/polls", {{method: "POST", mode: "no-cors", credentials: "include",
  body: JSON.stringify({{question: "pwned?", options: ["a", "b"]}})}})
  .finally(function () {{ document.forms[0].submit(); }});
</script>"""


async def test_sibling_port_page_cannot_use_the_studio_cookie(client: TestClient, browser, db) -> None:
    await make_user(db, "pro", "producer")
    poll = await (await client.post("/api/v1/polls", json={"question": "Q?", "options": ["a", "b"]},
                                    headers=ADMIN)).json()
    assert (await client.post(f"/api/v1/polls/{poll['id']}/open", headers=ADMIN)).status == 200
    target = str(client.make_url("")).rstrip("/")

    async def evil(request: web.Request) -> web.Response:
        return web.Response(text=EVIL.format(target=target, poll=poll["id"]), content_type="text/html")

    other = web.Application()
    other.router.add_get("/", evil)
    async with TestServer(other, host="127.0.0.1") as attacker:
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(f"{target}/studio/")
        await page.fill("input[name=name]", "pro")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_selector("#polls")
        assert any(c["name"] == "onair_session" for c in await context.cookies())

        async with page.expect_response(lambda r: r.url.endswith("/close")) as closing:
            await page.goto(str(attacker.make_url("/")))
        refused = await closing.value
        assert refused.status == 403
        # refused for where it came from, not for want of a cookie (that would be a 401)
        assert json.loads(await refused.text())["type"] == "/problems/csrf-origin"

    assert await db.fetchval("SELECT status FROM polls WHERE id = $1", poll["id"]) == "open"
    assert await db.fetchval("SELECT count(*) FROM polls") == 1
    # the same cookie works from the studio's own page (it sends the CSRF token)
    await page.goto(f"{target}/studio/")
    await page.locator(f'[data-poll="{poll["id"]}"] button[data-action=close]').click()
    await page.locator("#confirm[open] #confirm-ok").click()
    await page.wait_for_selector(f'[data-poll="{poll["id"]}"][data-status="closed"]')
