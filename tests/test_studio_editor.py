"""Issue 16's second round, in Chromium at 1366x768 as an editor would do it: the library follows one event
stream, stats and partner usage are charts, a custom poster, a country picker for geo rights, HbbTV apps edited
and deleted. Each touched page is checked with axe-core (no serious or critical violations)."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient

from tests.accounts_helpers import make_user
from tests.conftest import ADMIN
from tests.helpers import _running, make_asset
from tests.studio_helpers import check_page, confirm, open_as


async def test_library_rows_move_through_one_stream_and_stats_are_charts(client: TestClient, browser, db,
                                                                         tmp_path: Path) -> None:
    await make_user(db, "ed", "editor")
    await make_asset(db, "moving00001", title="Moving", status="transcoding", progress=10)
    await make_asset(db, "watched0001", title="Watched")
    for session, referrer, ended in (("s-aaaaaaaa", "news.example", True), ("s-bbbbbbbb", "", False)):
        await db.execute("""INSERT INTO player_sessions (asset_id, session_id, referrer_domain, played, ended,
                                                         max_quartile, watched_seconds)
                            VALUES ('watched0001', $1, $2, true, $3, $4, 2.5)""",
                         session, referrer, ended, 100 if ended else 25)
    page = await open_as(browser, client, "ed")
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if "/api/v1/catalog/events" in r.url else None)
    await page.reload()
    await page.wait_for_selector('tr[data-asset="moving00001"] .pct:text("10%")')
    await page.wait_for_function("() => document.body.dataset.live === 'open'")
    await _running(db, "moving00001", "packaging", 42.0)  # a worker elsewhere moves the row on
    await page.wait_for_selector('tr[data-asset="moving00001"][data-status="packaging"] .pct:text("42%")')
    await make_asset(db, "arrived0001", title="Arrived from the CLI")  # appears at the top, no reload
    await page.wait_for_selector('#asset-rows tr:first-child[data-asset="arrived0001"]')
    # one connection for the page, not one per row (3 rows); an EventSource may reconnect once on a loaded machine
    assert 1 <= len(streams) <= 2, streams

    await page.goto(str(client.make_url("/studio/assets/watched0001")))
    for box in ("plays", "watch", "completion", "referrers"):
        await page.wait_for_selector(f"#chart-{box} canvas")
    label = await page.get_attribute("#chart-plays .chart", "aria-label")
    assert label is not None and "2 plays, 1 completions" in label
    assert "news.example 1" in (await page.get_attribute("#chart-referrers .chart", "aria-label") or "")
    await page.click("#chart-referrers summary")  # the same numbers as a table
    assert await page.locator("#chart-referrers tbody tr").count() == 2
    assert await check_page(page, tmp_path / "shots", "asset-stats") == []
    assert page.problems == []  # type: ignore[attr-defined]


async def test_admin_sees_partner_usage_per_day_and_edits_then_deletes_an_hbbtv_app(client: TestClient, browser,
                                                                                    db, tmp_path: Path) -> None:
    await make_user(db, "chief", "admin")
    made = await client.post("/api/v1/partners", json={"name": "gazette", "scopes": ["feeds:read"]}, headers=ADMIN)
    key = (await made.json())["key"]
    for _ in range(3):
        assert (await client.get("/api/v1/partner/usage", headers={"Authorization": f"Bearer {key}"})).status == 200
    page = await open_as(browser, client, "chief")
    await page.goto(str(client.make_url("/studio/partners")))
    await page.wait_for_selector("#usage-chart canvas")
    assert "3 api calls" in (await page.get_attribute("#usage-chart .chart", "aria-label") or "")
    assert await check_page(page, tmp_path / "shots", "partners-usage") == []

    assert (await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json={
        "slug": "tonight", "name": "Tonight", "org_id": 4660, "app_id": 9})).status == 201
    await page.goto(str(client.make_url("/studio/shows")))
    row = page.locator('#apps tr[data-app="tonight"]')
    await row.locator("button[data-action=edit]").click()
    form = page.locator("#hbbtv-create")
    assert await form.locator("[name=slug]").is_disabled()  # the address stays: TVs have it in their AIT
    await form.locator("[name=name]").fill("Tonight, late")
    await form.locator("[name=control_code]").select_option("AUTOSTART")
    await form.locator("button[type=submit]").click()
    await page.wait_for_selector('#apps tr[data-app="tonight"] td:first-child:text("Tonight, late")')
    app = await (await client.get("/api/v1/hbbtv/apps/tonight", headers=ADMIN)).json()
    assert app["name"] == "Tonight, late" and app["control_code"] == "AUTOSTART"
    assert await check_page(page, tmp_path / "shots", "shows-hbbtv-edit") == []
    await row.locator("button[data-action=delete]").click()
    await page.locator("#confirm[open] button[value=cancel]").click()  # cancelling keeps it
    assert (await client.get("/api/v1/hbbtv/apps/tonight", headers=ADMIN)).status == 200
    await row.locator("button[data-action=delete]").click()
    await confirm(page)
    await page.wait_for_selector('#apps tr[data-app="tonight"]', state="detached")
    assert (await client.get("/api/v1/hbbtv/apps/tonight", headers=ADMIN)).status == 404
    assert page.problems == []  # type: ignore[attr-defined]


def _image(path: Path, size: tuple[int, int], fmt: str) -> Path:
    from PIL import Image

    Image.new("RGB", size, (200, 60, 30)).save(path, fmt)
    return path


async def test_editor_sets_a_custom_poster_and_picks_countries(client: TestClient, browser, db,
                                                               tmp_path: Path) -> None:
    await make_user(db, "ed", "editor")
    await make_asset(db, "harbour0001", title="Harbour")
    good, small = _image(tmp_path / "poster.png", (640, 360), "PNG"), _image(tmp_path / "tiny.webp", (160, 90), "WEBP")
    page = await open_as(browser, client, "ed")
    await page.goto(str(client.make_url("/studio/assets/harbour0001")))
    await page.wait_for_selector("#poster-box:not([hidden])")
    await page.set_input_files("#poster-form input[name=poster]", str(small))
    await page.click("#poster-form button[type=submit]")
    await page.wait_for_selector("#poster-error:text('too small')")
    assert await page.get_attribute("#poster-form input[name=poster]", "aria-invalid") == "true"
    await page.set_input_files("#poster-form input[name=poster]", str(good))
    await page.click("#poster-form button[type=submit]")
    await page.wait_for_function(
        "() => { const i = document.querySelector('#poster-img'); return i.src.includes('poster-custom-') && "
        "i.complete && i.naturalWidth === 640; }")
    body = await (await client.get("/api/v1/assets/harbour0001", headers=ADMIN)).json()
    assert body["images"]["poster"].startswith("poster-custom-")
    bad = await client.post("/api/v1/assets/harbour0001/poster", data=b"GIF89a not really", headers=ADMIN)
    assert bad.status == 415 and bad.content_type == "application/problem+json"
    assert (await bad.json())["field"] == "poster"

    # countries by name or code, from the keyboard; an unknown one is named, not saved
    search = page.locator("#geo_allow-search")
    for typed in ("Belgium", "fr", "Atlantis"):
        await search.fill(typed)
        await search.press("Enter")
    assert await page.inner_text("#geo_allow-error") == "No country called “Atlantis”"
    assert await page.locator('.countries[data-field="geo_allow"] li').evaluate_all(
        "els => els.map(e => e.dataset.code)") == ["BE", "FR"]
    await search.fill("Switzerland (CH)")
    await search.press("Enter")
    await page.locator('li[data-code="CH"] button.remove').press("Enter")  # removed from the keyboard
    await page.locator("#geo_deny-search").fill("de")
    await page.locator("#geo_deny-search").press("Enter")
    assert (await page.inner_text("#rights-summary")).startswith(
        "Visible in Belgium and France except in Germany, with no end date")
    async with page.expect_response(lambda r: r.request.method == "PATCH") as saved:
        await page.click("#meta button[type=submit]")
    assert (await saved.value).ok
    rights = (await (await client.get("/api/v1/assets/harbour0001", headers=ADMIN)).json())["rights"]
    assert rights["geo_allow"] == ["BE", "FR"] and rights["geo_deny"] == ["DE"]
    assert await check_page(page, tmp_path / "shots", "asset-poster-countries") == []
    assert page.problems == []  # type: ignore[attr-defined]
