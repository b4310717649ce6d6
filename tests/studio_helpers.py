"""The studio in Chromium as a person would use it: log in, check a page with axe-core, screenshot it."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient

from tests.accounts_helpers import PASSWORD

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"  # copied from npm by `make studio`
VIEWPORT = {"width": 1366, "height": 768}


async def open_as(browser, client: TestClient, name: str, password: str = PASSWORD):
    """A fresh browser context logged in as `name`; page.problems collects script errors and CSP reports."""
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None)
    await page.goto(str(client.make_url("/")))
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    page.problems = problems  # type: ignore[attr-defined]
    return page


async def check_page(page, shots: Path, name: str) -> list[dict]:
    """Screenshot at 1366x768 into `shots`, and axe-core's serious or critical violations (should be [])."""
    shots.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    # evaluate() runs through the DevTools protocol: the page's CSP (rightly) refuses an injected <script>
    await page.evaluate(AXE.read_text() + "\n;0")
    result = await page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    return result


async def confirm(page) -> None:
    """Accept the studio's confirmation dialog."""
    await page.locator("#confirm[open] #confirm-ok").click()
