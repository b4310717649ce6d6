"""The red-button app driven like a TV: Debian chromium with an HbbTV User-Agent, an OIPF shim, remote-control
key codes sent through CDP, a screenshot per state. Also the RED-to-interactive time with the CPU throttled x6.

Chromium does not know `application/vnd.hbbtv.xhtml+xml`, so the test (and only the test) rewrites that
Content-Type to `application/xhtml+xml` on the way into the browser: the page is still parsed as strict XML.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from tests.chat_helpers import open_room
from tests.conftest import ADMIN
from tests.device_helpers import mint_device
from tests.helpers import make_asset
from tests.tools import missing

TV_UA = "Mozilla/5.0 (Linux; U; en-US) AppleWebKit/533.3 (KHTML, like Gecko) HbbTV/1.2.1 (;onair;TestTV;1.0;;)"
KEYS = {"RED": 403, "GREEN": 404, "YELLOW": 405, "BLUE": 406, "LEFT": 37, "UP": 38, "RIGHT": 39, "DOWN": 40,
        "ENTER": 13, "BACK": 461}
MASK_RED, MASK_ALL = 0x1, 0x1F

# Minimal OIPF terminal: application manager with keyset, video/broadcast, the A/V control object.
OIPF_SHIM = """
(function () {
  var codes = __CODES__;
  window.KeyEvent = window.KeyEvent || {};
  for (var name in codes) { window.KeyEvent['VK_' + name] = codes[name]; }
  var log = window.__oipf = {shown: false, keyset: [], calls: []};
  var P = HTMLObjectElement.prototype;
  P.getOwnerApplication = function () {
    return {show: function () { log.shown = true; },
            privateData: {keyset: {setValue: function (mask) { log.keyset.push(mask); }}}};
  };
  P.bindToCurrentChannel = function () { log.calls.push('bind:' + this.type); };
  P.stop = function () { log.calls.push('stop:' + this.type); this.playState = 0; };
  /* subtitle components of the A/V object (type 2), as a DASH clip with English and German EBU-TT-D lists them */
  P.getComponents = function (type) {
    return type === 2 ? [{type: 2, language: 'eng'}, {type: 2, language: 'ger'}] : [];
  };
  P.getCurrentActiveComponents = function () { return this.__active || []; };
  P.selectComponent = function (c) { log.calls.push('select:' + c.language); this.__active = [c]; };
  P.unselectComponent = function (c) { log.calls.push('unselect:' + c.language); this.__active = []; };
  P.play = function (speed) {
    log.calls.push('play:' + this.type + ':' + this.getAttribute('data'));
    this.playState = 1; window.__vod = this;
  };
})();
""".replace("__CODES__", json.dumps(KEYS))

END_VOD = "() => { window.__vod.playState = 5; window.__vod.onPlayStateChange(); }"


class Tv:
    """One page as a TV: keys through CDP, state read from the page, screenshots into a folder."""

    def __init__(self, page: Any, cdp: Any, shots: Path) -> None:
        self.page, self.cdp, self.shots, self.errors = page, cdp, shots, []
        page.on("pageerror", lambda err: self.errors.append(str(err)))

    async def key(self, name: str) -> None:
        code = KEYS[name]
        for kind in ("rawKeyDown", "keyUp"):
            await self.cdp.send("Input.dispatchKeyEvent", {"type": kind, "windowsVirtualKeyCode": code,
                                                           "nativeVirtualKeyCode": code})

    async def shot(self, name: str) -> None:
        await self.page.screenshot(path=str(self.shots / f"{name}.png"))

    async def visible(self, element_id: str) -> bool:
        return await self.page.evaluate(
            "(id) => { var el = document.getElementById(id); return !!el && !/\\bhidden\\b/.test(el.className)"
            " && getComputedStyle(el).visibility !== 'hidden'; }", element_id)

    async def until(self, js: str, arg: Any = None, wait_ms: float = 10_000) -> None:
        await self.page.wait_for_function(js, arg=arg, timeout=wait_ms)

    async def keyset(self) -> int:
        return await self.page.evaluate("() => __oipf.keyset[__oipf.keyset.length - 1]")


async def _open_tv(browser: Any, client: TestClient, slug: str, shots: Path) -> Tv:
    context = await browser.new_context(user_agent=TV_UA, viewport={"width": 1280, "height": 720})
    await context.add_init_script(OIPF_SHIM)

    async def as_xhtml(route: Any) -> None:
        response = await route.fetch()
        headers = dict(response.headers)
        if headers.get("content-type", "").startswith("application/vnd.hbbtv.xhtml+xml"):
            headers["content-type"] = "application/xhtml+xml; charset=UTF-8"
        await route.fulfill(response=response, headers=headers)

    await context.route(f"**/hbbtv/{slug}/", as_xhtml)
    page = await context.new_page()
    tv = Tv(page, await context.new_cdp_session(page), shots)
    await page.goto(str(client.make_url(f"/hbbtv/{slug}/")))
    await tv.until("() => document.body && document.body.getAttribute('data-app') === 'ready'")
    return tv


async def _assert_in_safe_area(page: Any, ids: list[str]) -> None:
    """Everything the viewer sees stays inside the 1024x648 safe area at (128, 36) of the 1280x720 canvas."""
    for element_id in ids:
        box = await page.evaluate("(id) => { var r = document.getElementById(id).getBoundingClientRect();"
                                  " return [r.left, r.top, r.right, r.bottom]; }", element_id)
        left, top, right, bottom = box
        assert left >= 128 and top >= 36 and right <= 128 + 1024 and bottom <= 36 + 648, (element_id, box)


def _shots_dir(tmp_path: Path) -> Path:
    shots = Path(os.environ.get("HBBTV_SCREENSHOTS", tmp_path / "screens"))
    shots.mkdir(parents=True, exist_ok=True)
    return shots


async def _ready_asset(db: asyncpg.Pool, asset_id: str) -> None:
    await make_asset(db, asset_id, title="Extra clip", outputs={"dash": "dash/manifest.mpd"})


async def test_red_button_vod_and_banner_flow(browser: Any, client: TestClient, db: asyncpg.Pool,
                                              tmp_path: Path) -> None:
    await _ready_asset(db, "clipone")
    resp = await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json={
        "slug": "show", "name": "The <Show>", "org_id": 4660, "app_id": 1, "vod_assets": ["clipone"]})
    assert resp.status == 201, await resp.text()
    shots = _shots_dir(tmp_path)
    tv = await _open_tv(browser, client, "show", shots)
    page = tv.page

    # launched: only the prompt, keyset RED, broadcast bound, the document parsed as XML
    assert await page.evaluate("() => document.contentType") == "application/xhtml+xml"
    assert await tv.visible("prompt") and not await tv.visible("overlay")
    assert await page.evaluate("() => __oipf.shown") is True
    assert await tv.keyset() == MASK_RED
    assert "bind:video/broadcast" in await page.evaluate("() => __oipf.calls")
    await tv.shot("1-prompt")

    await tv.key("RED")
    await tv.until("() => !/hidden/.test(document.getElementById('overlay').className)")
    assert not await tv.visible("prompt") and await tv.keyset() == MASK_ALL
    await _assert_in_safe_area(page, ["overlay", "prompt", "banner"])
    await tv.shot("2-overlay")

    # VOD: stop broadcast, play the DASH MPD in the A/V object, come back to broadcast at the end
    await tv.key("BLUE")
    assert await tv.visible("panel-vod")
    await tv.key("DOWN")
    await tv.key("UP")
    await tv.key("ENTER")
    await tv.until("() => document.body.getAttribute('data-playing') === 'vod'")
    calls = await page.evaluate("() => __oipf.calls")
    assert calls[-2:] == ["stop:video/broadcast", "play:application/dash+xml:/media/clipone/dash/manifest.mpd"]
    await tv.shot("3-vod")
    await page.evaluate(END_VOD)
    await tv.until("() => document.body.getAttribute('data-playing') === 'broadcast'")
    assert (await page.evaluate("() => __oipf.calls"))[-1] == "bind:video/broadcast"
    assert await page.evaluate("() => document.getElementById('vod')") is None
    assert await tv.visible("overlay")
    await tv.shot("4-back-to-broadcast")

    # BACK during VOD also returns to broadcast
    await tv.key("ENTER")
    await tv.until("() => document.body.getAttribute('data-playing') === 'vod'")
    await tv.key("BACK")
    await tv.until("() => document.body.getAttribute('data-playing') === 'broadcast'")

    await tv.key("BACK")
    await tv.until("() => /hidden/.test(document.getElementById('overlay').className)")
    assert await tv.visible("prompt") and await tv.keyset() == MASK_RED
    await tv.shot("5-closed")

    # the studio pushes a banner: the running app shows it on its next poll; OK opens the target, counted once
    resp = await client.post("/api/v1/hbbtv/apps/show/banners", headers=ADMIN, json={
        "image_url": "/hbbtv/static/offer.png", "target_url": "/healthz", "label": "Offer <today>"})
    banner = await resp.json()
    await tv.until("() => !/hidden/.test(document.getElementById('banner').className)", wait_ms=8000)
    assert await page.evaluate("() => document.getElementById('banner-label').textContent") == "Offer <today>"
    assert await tv.keyset() == MASK_RED | 0x10
    await tv.shot("6-banner")
    await tv.key("ENTER")
    await tv.until("() => !/hidden/.test(document.getElementById('target').className)")
    assert (await page.evaluate("() => document.getElementById('target-frame').getAttribute('src')")) == "/healthz"
    await tv.shot("7-banner-target")
    for _ in range(50):
        clicks = (await (await client.get(f"/api/v1/hbbtv/apps/show/banners/{banner['id']}", headers=ADMIN)).json())
        if clicks["clicks"] == 1:
            break
        await asyncio.sleep(0.05)
    assert clicks["clicks"] == 1
    await tv.key("BACK")
    await tv.key("BACK")
    await tv.until("() => /hidden/.test(document.getElementById('overlay').className)")

    # RED to interactive with the CPU slowed down six times (a cheap TV SoC)
    await tv.cdp.send("Emulation.setCPUThrottlingRate", {"rate": 6})
    started = time.perf_counter()
    await page.reload(wait_until="commit")
    await page.wait_for_function("() => document.body && document.body.getAttribute('data-app') === 'ready'",
                                 polling=10)
    nav = await page.evaluate("() => { var n = performance.getEntriesByType('navigation')[0];"
                              " return [n.responseEnd, n.domInteractive]; }")
    print(f"\nHbbTV app launch at CPU x6: prompt ready {(time.perf_counter() - started) * 1000:.0f} ms after reload;"
          f" document received {nav[0]:.0f} ms, DOM interactive {nav[1]:.0f} ms")
    started = time.perf_counter()
    await tv.key("RED")
    await tv.until("() => !/hidden/.test(document.getElementById('overlay').className)"
                   " && __oipf.keyset[__oipf.keyset.length - 1] === 31")
    elapsed = time.perf_counter() - started
    print(f"HbbTV RED-to-interactive at CPU x6: {elapsed * 1000:.0f} ms; screenshots in {shots}")
    assert elapsed < 1.0
    assert tv.errors == []
    assert sorted(p.name for p in shots.glob("*.png"))[:7] == [
        "1-prompt.png", "2-overlay.png", "3-vod.png", "4-back-to-broadcast.png", "5-closed.png", "6-banner.png",
        "7-banner-target.png"]


async def _require_api(client: TestClient, path: str, what: str) -> None:
    # the interaction API (issue 6) lives on the same origin; until it is merged this flow cannot run
    resources = {getattr(r.resource, "canonical", "") for r in client.app.router.routes()}
    if path not in resources:
        missing(f"the {what} API ({path})", "merge the interaction branch (issue 6) that serves it")


async def test_vote_flow_with_live_results(browser: Any, client: TestClient, tmp_path: Path) -> None:
    await _require_api(client, "/api/v1/polls/{poll_id}/results", "polls")
    resp = await client.post("/api/v1/polls", headers=ADMIN, json={"question": "Who wins?",
                                                                    "options": ["Red team", "Blue <team>"]})
    assert resp.status == 201, await resp.text()
    poll = await resp.json()
    assert (await client.post(f"/api/v1/polls/{poll['id']}/open", headers=ADMIN)).status == 200
    resp = await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json={
        "slug": "vote", "name": "Vote", "org_id": 4660, "app_id": 2, "poll_id": poll["id"]})
    assert resp.status == 201, await resp.text()
    shots = _shots_dir(tmp_path)
    tv = await _open_tv(browser, client, "vote", shots)
    page = tv.page

    await tv.cdp.send("Emulation.setCPUThrottlingRate", {"rate": 6})
    started = time.perf_counter()
    await tv.key("RED")
    await tv.until("() => document.querySelectorAll('#poll-options .option').length === 2")
    elapsed = time.perf_counter() - started
    in_page = await page.evaluate("() => document.body.getAttribute('data-ready')")
    print(f"\nHbbTV RED-to-vote-panel (options shown) at CPU x6: {elapsed * 1000:.0f} ms as seen by the test, "
          f"{in_page} ms inside the page")
    await tv.cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
    labels = await page.evaluate("() => [].map.call(document.querySelectorAll('#poll-options .label'),"
                                 " function (e) { return e.textContent; })")
    assert labels == ["Red team", "Blue <team>"]
    await tv.shot("v1-poll")

    await tv.key("DOWN")
    await tv.key("ENTER")
    await tv.until("() => document.getElementById('poll-status').textContent === 'Thanks for voting!'")
    await tv.until("() => document.querySelectorAll('#poll-options .pct')[1].textContent === '100%'")
    await tv.shot("v2-voted")

    # someone else votes: the bars move on the next results poll
    device = await mint_device(client)
    red = poll["options"][0]["id"]
    assert (await client.post(f"/api/v1/polls/{poll['id']}/votes", json={"device_id": device,
                                                                         "option_id": red})).status == 201
    await tv.until("() => document.querySelectorAll('#poll-options .pct')[0].textContent === '50%'")
    await tv.shot("v3-bars-moved")

    # the poll closes while the overlay is open: the panel says so, no script error
    assert (await client.post(f"/api/v1/polls/{poll['id']}/close", headers=ADMIN)).status == 200
    await tv.until("() => document.getElementById('poll-status').textContent === 'Voting has closed.'")
    await tv.shot("v4-closed")
    await tv.key("BACK")
    await tv.until("() => /hidden/.test(document.getElementById('overlay').className)")
    assert tv.errors == []
    # the vote is remembered for this device across a relaunch
    await page.reload()
    await tv.until("() => document.body.getAttribute('data-app') === 'ready'")
    poll_meta = "document.querySelector('meta[name=\"onair:poll\"]').getAttribute('content')"
    assert await page.evaluate(f"() => localStorage.getItem('onair.voted.' + {poll_meta})")


async def test_chat_reader_shows_markup_as_text(browser: Any, client: TestClient, tmp_path: Path) -> None:
    await _require_api(client, "/api/v1/chat/{room}/messages", "chat")
    device = await mint_device(client)
    await open_room(client, "studio")

    async def say(text: str) -> None:
        resp = await client.post("/api/v1/chat/studio/messages", json={"device_id": device, "nickname": "Ann <3",
                                                                        "text": text})
        assert resp.status == 201, await resp.text()

    await say("<b>hello</b> & welcome")
    resp = await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json={
        "slug": "chat", "name": "Chat", "org_id": 4660, "app_id": 3, "chat_room": "studio"})
    assert resp.status == 201
    shots = _shots_dir(tmp_path)
    tv = await _open_tv(browser, client, "chat", shots)
    await tv.key("RED")
    await tv.key("YELLOW")
    await tv.until("() => document.querySelectorAll('#chat-list .msg').length === 1")
    texts = await tv.page.evaluate("() => [].map.call(document.querySelectorAll('#chat-list .msg'),"
                                   " function (e) { return e.textContent; })")
    assert texts == ["Ann <3<b>hello</b> & welcome"]
    assert await tv.page.evaluate("() => document.querySelectorAll('#chat-list b b').length") == 0
    await say("second message")   # arrives through the pending long-poll
    await tv.until("() => document.querySelectorAll('#chat-list .msg').length === 2")
    await tv.shot("c1-chat")
    assert tv.errors == []


async def test_hbbtv2_plays_clips_in_a_video_element_and_falls_back_to_broadcast(
        browser: Any, client: TestClient, db: asyncpg.Pool, tmp_path: Path) -> None:
    await _ready_asset(db, "cliptwo")   # its files are not in the store: the <video> errors, the app recovers
    resp = await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json={
        "slug": "two", "name": "Two", "org_id": 4660, "app_id": 4, "vod_assets": ["cliptwo"]})
    assert resp.status == 201
    context = await browser.new_context(user_agent=TV_UA.replace("HbbTV/1.2.1", "HbbTV/1.4.1"),
                                        viewport={"width": 1280, "height": 720})
    await context.add_init_script(OIPF_SHIM)
    page = await context.new_page()
    tv = Tv(page, await context.new_cdp_session(page), _shots_dir(tmp_path))
    await page.goto(str(client.make_url("/hbbtv/two/")))
    await tv.until("() => document.body.getAttribute('data-app') === 'ready'")
    assert await page.evaluate("() => document.contentType") == "text/html"
    await page.evaluate("() => { window.__played = []; HTMLMediaElement.prototype.play = function () {"
                        " window.__played.push(this.getAttribute('src')); }; }")
    await tv.key("RED")
    await tv.key("BLUE")
    await tv.key("ENTER")
    await tv.until("() => window.__played.length === 1")
    assert await page.evaluate("() => window.__played[0]") == "/media/cliptwo/dash/manifest.mpd"
    assert "stop:video/broadcast" in await page.evaluate("() => __oipf.calls")
    await tv.until("() => document.body.getAttribute('data-playing') === 'broadcast'")   # media error: back on air
    assert (await page.evaluate("() => __oipf.calls"))[-1] == "bind:video/broadcast"
    assert await tv.visible("overlay") and tv.errors == []


async def test_desktop_preview_works_with_a_keyboard(browser: Any, client: TestClient) -> None:
    resp = await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json={
        "slug": "pre", "name": "Preview", "org_id": 4660, "app_id": 5})
    assert resp.status == 201
    page = await (await browser.new_context(viewport={"width": 1280, "height": 720})).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    await page.goto(str(client.make_url("/hbbtv/pre/")))   # no OIPF shim, no MIME rewrite: a plain browser
    await page.wait_for_function("() => document.body.getAttribute('data-app') === 'ready'")
    assert await page.evaluate("() => document.contentType") == "application/xhtml+xml"
    await page.keyboard.press("r")
    await page.wait_for_function("() => !/hidden/.test(document.getElementById('overlay').className)")
    await page.keyboard.press("Backspace")
    await page.wait_for_function("() => /hidden/.test(document.getElementById('overlay').className)")
    assert errors == []
