"""The asset page's "Replace source" control in Chromium: an editor picks a file, confirms, watches the
replacement's own status while the asset stays ready, and sees why it failed (the old video still plays)."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient

from tests.accounts_helpers import make_user
from tests.conftest import ADMIN
from tests.helpers import make_asset
from tests.studio_helpers import check_page, confirm, open_as


async def test_editor_replaces_the_source_and_sees_a_failure_reason(client: TestClient, browser, db,
                                                                    tmp_path: Path) -> None:
    await make_user(db, "ed", "editor")
    await make_asset(db, "replaced0001", title="Harbour fire")
    page = await open_as(browser, client, "ed")
    await page.goto(str(client.make_url("/studio/assets/replaced0001")))
    await page.wait_for_selector("#source-box:not([hidden])")
    bogus = tmp_path / "not-a-video.mp4"
    bogus.write_bytes(b"no pictures here " * 500)
    await page.set_input_files("#source-form input[name=file]", str(bogus))
    await page.click("#source-form button[type=submit]")
    await confirm(page)
    # the worker tries it, the probe refuses it: the page says why, and the asset never stopped being ready
    await page.wait_for_selector("#replacement-failure", timeout=60_000)
    assert "previous video is still playing" in (await page.text_content("#replacement-failure") or "")
    body = await (await client.get("/api/v1/assets/replaced0001", headers=ADMIN)).json()
    assert (body["status"], body["replacement"]["status"], body["media_generation"]) == ("ready", "failed", 0)
    assert await page.locator("#preview iframe").count() == 1
    assert await check_page(page, tmp_path / "shots", "asset-replace-failed") == []
    assert page.problems == []  # type: ignore[attr-defined]
