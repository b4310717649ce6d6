"""The embed player in Chromium with an asset that has two audio languages and two subtitle languages, all made
by the real pipeline (upload, transcode, caption upload): both menus list both, switching the audio changes the
hls.js track, and a chosen subtitle is drawn on the picture (screenshots with and without it differ where
subtitles go). Screenshots land in $ONAIR_TEST_ARTIFACTS (or the test's tmp dir)."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from tests.conftest import ADMIN
from tests.ingest_tools import upload, wait_for
from tests.media_checks import generate

DE = b"WEBVTT\n\n00:00:00.000 --> 00:00:04.000\nGUTEN ABEND AUS DEM HAFEN\n"
EN = b"1\n00:00:00,000 --> 00:00:04,000\nGOOD EVENING FROM THE HARBOUR\n"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("clips") / "two.mp4"
    return generate(path, size="320x180", rate="25", video_s=4.0, audio_s=4.0, languages=("eng", "ger")).read_bytes()


async def _asset_with_tracks(client, clip: bytes, settings) -> str:
    asset_id = await upload(client, clip, title="Harbour")
    assert (await wait_for(client, asset_id))["status"] == "ready"
    for data, query, ctype in ((DE, "language=de", "text/vtt"), (EN, "language=en", "application/x-subrip")):
        resp = await client.post(f"/api/v1/assets/{asset_id}/captions?{query}", data=data,
                                 headers={**ADMIN, "Content-Type": ctype})
        assert resp.status == 201, await resp.text()
    master = settings.data_dir / "objects" / f"assets/{asset_id}/hls/master.m3u8"
    async with asyncio.timeout(60):  # the manifests list both subtitle tracks once the relabel job ran
        while master.read_text().count("TYPE=SUBTITLES") != 2:
            await asyncio.sleep(0.2)
    return asset_id


async def test_two_audio_and_two_subtitle_languages_switch_in_the_player(client, settings, browser, clip, tmp_path):
    asset_id = await _asset_with_tracks(client, clip, settings)
    page = await browser.new_page(viewport={"width": 640, "height": 360})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(str(client.make_url(f"/embed/{asset_id}")))
    await page.wait_for_function("() => onairPlayer.levels > 0", timeout=15000)
    # the audio menu appears once hls.js lists the HLS audio renditions (the light build had none)
    await page.wait_for_function("() => !document.querySelector('.op-audio').hidden", timeout=15000)
    audio = await page.eval_on_selector_all(".op-audio option", "os => os.map(o => o.textContent)")
    assert audio == ["English", "Deutsch"]
    await page.select_option(".op-audio", "1")
    await page.wait_for_function("() => onairPlayer.hls.audioTrack === 1", timeout=10000)

    subs = await page.eval_on_selector_all(".op-subs option", "os => os.map(o => o.textContent)")
    assert subs == ["Off", "Deutsch", "English"]
    # paused on a frame: the same picture with and without subtitles
    await page.evaluate("() => { const v = document.querySelector('video'); v.currentTime = 1; }")
    await page.wait_for_function("() => document.querySelector('video').readyState >= 2", timeout=10000)
    box = await page.eval_on_selector("video", "v => { const r = v.getBoundingClientRect();"
                                               " return {x: r.x, y: r.y, width: r.width, height: r.height}; }")
    off = await page.screenshot(clip=box)
    await page.select_option(".op-subs", "0")
    await page.wait_for_function("() => { const t = document.querySelector('video').textTracks[0];"
                                 " return t.mode === 'showing' && t.activeCues && t.activeCues.length === 1; }",
                                 timeout=10000)
    cue = await page.evaluate("() => document.querySelector('video').textTracks[0].activeCues[0].text")
    assert cue == "GUTEN ABEND AUS DEM HAFEN"
    picture = lambda png: Image.open(io.BytesIO(png)).convert("RGB")  # noqa: E731
    changed, on = None, off
    async with asyncio.timeout(10):  # poll until the renderer has drawn the cue
        while changed is None:
            on = await page.screenshot(clip=box)
            changed = ImageChops.difference(picture(off), picture(on)).getbbox()
    where = Path(os.environ.get("ONAIR_TEST_ARTIFACTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    (where / "embed-subtitles-off.png").write_bytes(off)
    (where / "embed-subtitles-de.png").write_bytes(on)
    height = picture(on).height
    assert changed[3] > height / 2, f"the subtitle is drawn at {changed}, not in the lower part of the picture"
    await page.click(".op-cc")                       # CC switches it off again
    assert await page.evaluate("() => document.querySelector('video').textTracks[0].mode") == "hidden"
    assert errors == []
