"""Subtitles on the TV (issue 17): the app document lists each clip's subtitle languages (from the asset's published
EBU-TT-D tracks), YELLOW while a clip plays steps Off -> English -> Deutsch through the terminal's subtitle
components (OIPF shim), and the desktop preview shows the chosen language's cue in the embed player."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from lxml import etree

from onair.core.storage import STORE
from tests.conftest import ADMIN
from tests.embed_helpers import insert_asset
from tests.test_embed_browser import OUTPUTS, _make_hls, server  # noqa: F401 (fixture)
from tests.test_hbbtv_documents import TV_1, TV_2, XHTML_NS, xhtml1_violations
from tests.test_hbbtv_keyflow import _open_tv, _shots_dir
from tests.test_hbbtv_tv_fixes import desktop_page


def _track(lang: str, kind: str = "subtitle") -> dict[str, Any]:
    base = f"captions/{lang}-{kind}-0123456789"
    return {"language": lang, "kind": kind, "vtt": f"{base}/captions.vtt", "init": f"{base}/init.m4s",
            "media": base + "/seg-$Number%05d$.m4s", "ebu_tt_d": f"{base}/ebu-tt-d.ttml", "segment_units": 3840000}


CAPTIONS = [_track("en"), _track("de"), _track("fr", "caption")]


async def _app(client: TestClient, clip: str, slug: str = "subs") -> None:
    resp = await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json={
        "slug": slug, "name": "Subs", "org_id": 4660, "app_id": 7, "vod_assets": [clip]})
    assert resp.status == 201, await resp.text()


async def test_the_document_knows_each_clips_subtitle_languages(client: TestClient, db: asyncpg.Pool) -> None:
    bare = await insert_asset(db, outputs={"dash": "dash/manifest.mpd"})
    odd = {**_track("x-no"), "language": 'x"<b>'}   # whatever a tag holds reaches the page escaped
    clip = await insert_asset(db, outputs={"dash": "dash/manifest.mpd", "captions": [*CAPTIONS, odd]})
    assert (await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json={
        "slug": "subs", "name": "Subs", "org_id": 4660, "app_id": 7, "vod_assets": [bare, clip]})).status == 201
    for ua in (TV_1, TV_2):
        text = await (await client.get("/hbbtv/subs/", headers={"User-Agent": ua})).text()
        assert '<meta name="onair:sub" content="1|en|en eng|English" />' in text
        assert '<meta name="onair:sub" content="1|de|de deu ger|Deutsch" />' in text
        assert '<meta name="onair:sub" content="1|fr|fr fra fre|Français (CC)" />' in text
        assert 'content="1|x&#34;&lt;b&gt;|' in text and "<b>" not in text
        assert "content=\"0|" not in text    # the first clip has none
        assert "Subtitles: English, Deutsch, Français (CC)" in text
    root = etree.fromstring(await (await client.get("/hbbtv/subs/", headers={"User-Agent": TV_1})).read())
    assert xhtml1_violations(root) == [] and root.find(f".//{{{XHTML_NS}}}div[@id='subs']") is not None


async def test_yellow_steps_through_the_terminals_subtitle_components(browser: Any, client: TestClient,
                                                                       db: asyncpg.Pool, tmp_path: Path) -> None:
    clip = await insert_asset(db, outputs={"dash": "dash/manifest.mpd", "captions": CAPTIONS[:2]})
    await _app(client, clip)
    tv = await _open_tv(browser, client, "subs", _shots_dir(tmp_path))
    for key in ("RED", "BLUE", "ENTER"):
        await tv.key(key)
    await tv.until("() => document.body.getAttribute('data-playing') === 'vod'")
    assert await tv.visible("subs") and await tv.keyset() & 0x4   # YELLOW is the terminal's to send now
    assert await tv.page.text_content("#subs-label") == "Subtitles: Off"
    await tv.page.evaluate("() => { window.__vod.playState = 1; window.__vod.onPlayStateChange(); }")
    for label, call in (("English", "select:eng"), ("Deutsch", "select:ger"), ("Off", "unselect:ger")):
        await tv.key("YELLOW")
        await tv.until("(l) => document.getElementById('subs-label').textContent === 'Subtitles: ' + l", label)
        assert (await tv.page.evaluate("() => __oipf.calls"))[-1] == call
    await tv.key("YELLOW")   # English again: remembered for the next clip
    await tv.shot("subtitles-english")
    await tv.key("BACK")
    await tv.until("() => document.body.getAttribute('data-playing') === 'broadcast'")
    assert not await tv.visible("subs")
    await tv.key("ENTER")
    await tv.until("() => document.body.getAttribute('data-subtitles') === 'en'")
    assert not tv.errors, tv.errors


async def test_desktop_preview_shows_the_chosen_languages_cue(browser: Any, server: TestClient,  # noqa: F811
                                                              db: asyncpg.Pool, tmp_path: Path) -> None:
    clip = await insert_asset(db, outputs={**OUTPUTS, "dash": "dash/manifest.mpd", "captions": CAPTIONS[:2]},
                              duration=3.0)
    store = server.app[STORE]
    src = tmp_path / "hls"
    _make_hls(src)
    for f in sorted(src.rglob("*")):
        if f.is_file():
            await store.put_file(f"assets/{clip}/hls/{f.relative_to(src).as_posix()}", f)
    for c, text in zip(CAPTIONS, ("GOOD EVENING", "GUTEN ABEND"), strict=False):
        await store.put_bytes(f"assets/{clip}/{c['vtt']}", f"WEBVTT\n\n00:00.000 --> 00:03.000\n{text}\n".encode(),
                              "text/vtt")
    await _app(server, clip, "preview")
    page, errors = await desktop_page(browser, str(server.make_url("/hbbtv/preview/")))
    await page.wait_for_function("() => document.body.getAttribute('data-app') === 'ready'")
    for key in ("r", "b", "Enter"):
        await page.keyboard.press(key)
    await page.wait_for_function("() => document.body.getAttribute('data-playing') === 'vod'")
    player = None
    for _ in range(200):  # the iframe's document arrives shortly after the element
        player = next((f for f in page.frames if "/embed/" in f.url), None)
        if player is not None:
            break
        await page.wait_for_timeout(50)
    assert player is not None
    # hold the picture inside the cue, then choose: Off -> English -> Deutsch
    await player.wait_for_function("() => { const v = document.querySelector('video');"
                                   " return v && v.readyState >= 2; }", timeout=20_000)
    await player.evaluate("() => { const v = document.querySelector('video'); v.pause(); v.currentTime = 1; }")
    cue = ("() => { const t = Array.from(document.querySelector('video').textTracks).find(t => t.mode === 'showing');"
           " return t && t.activeCues && t.activeCues.length ? t.language + ':' + t.activeCues[0].text : ''; }")
    assert await player.evaluate(cue) == ""
    await page.keyboard.press("y")
    await player.wait_for_function(f"() => ({cue})() === 'en:GOOD EVENING'", timeout=10_000)
    await page.keyboard.press("y")
    await player.wait_for_function(f"() => ({cue})() === 'de:GUTEN ABEND'", timeout=10_000)
    assert await page.text_content("#subs-label") == "Subtitles: Deutsch"
    await page.screenshot(path=str(_shots_dir(tmp_path) / "preview-subtitles-deutsch.png"))
    assert not errors, errors
    await page.context.close()
