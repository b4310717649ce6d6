"""Independent players on onair's output: hls.js (HLS), dash.js (DASH) and shaka-player (DASH), the npm builds
pinned in tests/players/package-lock.json (copied to tests/vendor/ by `make test-players`), in Chromium, on one
asset made by the real transcode + packaging + caption packaging: two audio languages (EXT-X-MEDIA / audio
adaptation sets with @lang and Role) and two subtitle languages (segmented WebVTT / EBU-TT-D in fMP4 stpp).

For each player: playback advances; the audio list has both languages and switching to German is reported by
the player's API and fetches the German track's segments; the subtitle list has both languages, each choice
puts its own cue on screen (the text in the DOM or the showing TextTrack's active cue, and the picture changes
in its lower half). Screenshots land in $ONAIR_TEST_ARTIFACTS (or the test's tmp dir)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image, ImageChops

from tests.media_checks import generate
from transcode import caption_tracks, commands, manifest_tracks, packaging
from transcode.captions import read
from transcode.ffmpeg import ffmpeg_binary
from transcode.ladder import plan
from transcode.probe import probe

HERE = Path(__file__).resolve().parent
VENDOR = HERE / "vendor"
LOCK = HERE / "players" / "package-lock.json"
CUES = {"en": "GOOD EVENING", "de": "GUTEN ABEND"}
KINDS = {"en": "caption", "de": "subtitle"}
# vendored file -> (npm package, how the build spells its own version)
BUILDS = {"hls.min.js": ("hls.js", '"{}"'), "dash.all.min.js": ("dashjs", '"{}"'),
          "shaka-player.compiled.js": ("shaka-player", '.version="v{}"')}


def _locked(package: str) -> str:
    return json.loads(LOCK.read_text())["packages"][f"node_modules/{package}"]["version"]


def test_vendored_players_are_the_locked_versions():
    for name, (package, spelled) in BUILDS.items():
        text = (VENDOR / name).read_text(encoding="utf-8")
        assert spelled.format(_locked(package)) in text, f"tests/vendor/{name} is not {package} " \
                                                         f"{_locked(package)}: run `make test-players`"


@pytest.fixture(scope="module")
def asset(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    """(site root laid out by object key, outputs document) of a 6 s 320x180 clip with English and German audio
    plus English captions and German subtitles, each one cue over the whole clip."""
    work = tmp_path_factory.mktemp("players")
    source = generate(work / "src.mp4", size="320x180", rate="25", video_s=6.0, audio_s=6.0,
                      languages=("eng", "ger"))
    the_plan = plan(probe(source))
    out = work / "out"
    out.mkdir()
    subprocess.run(commands.transcode_argv(ffmpeg_binary(None), source, out, the_plan), check=True,
                   stdout=subprocess.DEVNULL, timeout=300)
    objects, _, outputs = packaging.package(out, the_plan)
    captions = []
    for lang, text in CUES.items():
        cues = read(f"WEBVTT\n\n00:00:00.000 --> 00:00:06.000\n{text}\n".encode(), "vtt", the_plan.duration)
        files, entry = caption_tracks.build(cues, lang, KINDS[lang], the_plan.segment_seconds, the_plan.duration)
        objects.update(files)
        captions.append(entry)
    # what the relabel job publishes once captions are uploaded
    objects["dash/manifest.mpd"] = manifest_tracks.relabel_mpd(objects["dash/manifest.mpd"],
                                                               outputs["audio_tracks"], captions)
    objects["hls/master.m3u8"] = manifest_tracks.relabel_master(objects["hls/master.m3u8"].decode(),
                                                                outputs["audio_tracks"], captions).encode()
    site = work / "site"
    for key, value in objects.items():
        dest = site / key
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(value if isinstance(value, bytes) else value.read_bytes())
    return site, outputs


# Each adapter gives the test one vocabulary over the player's own API: window.harness with version, ready(),
# audio(), audioActive() (what the player reports as playing), setAudio(lang), subs(), setSub(lang | null).
SHOWN = """
const v = document.querySelector('video');
window.shown = () => {   // the cue text on screen: a player's own overlay, else the showing native track
  const div = document.getElementById('ttml');
  if (div && div.innerText.trim()) return div.innerText.trim();
  for (const t of v.textTracks) {
    if (t.mode !== 'showing' || !t.activeCues) continue;
    for (const c of t.activeCues) if (c.text) return c.text.replace(/<[^>]*>/g, '').trim();
  }
  return null;
};
"""
HLSJS = """
const hls = new Hls();
let switched = null;
hls.on(Hls.Events.AUDIO_TRACK_SWITCHED, (e, d) => { switched = hls.audioTracks[d.id].lang; });
hls.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) window.fatal = d.details; });
hls.loadSource(SRC);
hls.attachMedia(v);
v.play();
window.harness = {
  version: Hls.version,
  ready: () => hls.audioTracks.length > 0 && hls.subtitleTracks.length > 0,
  audio: () => hls.audioTracks.map(t => t.lang),
  audioActive: () => switched,
  setAudio: lang => { hls.audioTrack = hls.audioTracks.findIndex(t => t.lang === lang); },
  subs: () => hls.subtitleTracks.map(t => t.lang),
  setSub: lang => { hls.subtitleTrack = lang ? hls.subtitleTracks.findIndex(t => t.lang === lang) : -1; },
};
"""
DASHJS = """
const p = dashjs.MediaPlayer().create();
p.updateSettings({debug: {logLevel: dashjs.Debug.LOG_LEVEL_WARNING}});
p.on(dashjs.MediaPlayer.events.ERROR, e => { window.fatal = JSON.stringify(e.error); });
// EBU-TT-D is drawn by dash.js (imsc) into a div over the video; without one it shows nothing
const div = document.createElement('div');
div.id = 'ttml';
div.style.cssText = 'position:absolute;left:0;top:0;width:100%;height:100%;pointer-events:none';
document.getElementById('box').appendChild(div);
p.initialize(v, SRC, true);
p.attachTTMLRenderingDiv(div);
const tracks = kind => { try { return p.getTracksFor(kind); } catch (e) { return []; } };
window.harness = {
  version: p.getVersion(),
  ready: () => tracks('audio').length > 0 && tracks('text').length > 0,
  audio: () => tracks('audio').map(t => t.lang),
  // (TRACK_CHANGE_RENDERED waits for the clock to move; the test pauses, and checks the fetches instead)
  audioActive: () => (p.getCurrentTrackFor('audio') || {}).lang,
  setAudio: lang => p.setCurrentTrack(tracks('audio').find(t => t.lang === lang)),
  subs: () => tracks('text').map(t => t.lang),
  setSub: lang => {
    p.enableText(!!lang);
    if (lang) p.setTextTrack(tracks('text').findIndex(t => t.lang === lang));
  },
};
"""
SHAKA = """
shaka.polyfill.installAll();
const p = new shaka.Player();
p.addEventListener('error', e => { window.fatal = JSON.stringify(e.detail); });
await p.attach(v);
await p.load(SRC);
v.play();
window.harness = {
  version: shaka.Player.version.replace(/^v/, ''),
  ready: () => p.getAudioTracks().length > 0 && p.getTextTracks().length > 0,
  audio: () => p.getAudioTracks().map(t => t.language),
  audioActive: () => (p.getAudioTracks().find(t => t.active) || {}).language,
  setAudio: lang => p.selectAudioTrack(p.getAudioTracks().find(t => t.language === lang)),
  subs: () => p.getTextTracks().map(t => t.language),
  setSub: lang => p.selectTextTrack(lang ? p.getTextTracks().find(t => t.language === lang) : null),
};
"""
PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>{player}</title>
<body style="margin:0;background:#000"><div id="box" style="position:relative;width:640px;height:360px">
<video muted playsinline style="width:640px;height:360px"></video></div>
<script src="/vendor/{script}"></script>
<script>(async () => {{ const SRC = {src};
{shown}
{adapter}
}})().catch(e => {{ window.fatal = String(e && (e.message || e.code) || e); }});</script></body></html>"""
PLAYERS = {"hls.js": ("hls.min.js", HLSJS), "dash.js": ("dash.all.min.js", DASHJS),
           "shaka": ("shaka-player.compiled.js", SHAKA)}


async def _serve(site: Path, player: str, manifest: str, seen: list[str]) -> TestServer:
    script, adapter = PLAYERS[player]

    @web.middleware
    async def record(request: web.Request, handler):
        seen.append(request.path)
        return await handler(request)

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE.format(player=player, script=script, src=json.dumps(f"/site/{manifest}"),
                                             shown=SHOWN, adapter=adapter), content_type="text/html")

    app = web.Application(middlewares=[record])
    app.router.add_get("/", page)
    app.router.add_static("/vendor", VENDOR)
    app.router.add_static("/site", site)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


STATE = """() => { const v = document.querySelector('video');
  return JSON.stringify({time: v.currentTime, paused: v.paused, seeking: v.seeking, fatal: window.fatal || null,
                         shown: window.shown && window.shown(), tracks: [...v.textTracks].map(t => [t.language, t.mode,
                         t.cues && t.cues.length, t.activeCues && [...t.activeCues].map(c => c.text)])}); }"""


async def _until(page, condition: str, arg: Any = None, *, what: str, within: float = 30) -> None:
    """Wait for a page condition (or a fatal player error); a timeout names what and the player's state."""
    from playwright.async_api import TimeoutError as PageTimeout

    try:
        await page.wait_for_function(f"(arg) => window.fatal || ({condition})(arg)", arg=arg,
                                     timeout=within * 1000)
    except PageTimeout:
        pytest.fail(f"{what}: not within {within:.0f} s; state {await page.evaluate(STATE)}")
    assert await page.evaluate("() => window.fatal || null") is None, what


async def _fetched(seen: list[str], pattern: str, since: int = 0, *, what: str, within: float = 30) -> None:
    """Wait until the page has requested a path matching `pattern` (after the first `since` requests)."""
    try:
        async with asyncio.timeout(within):
            while not any(re.fullmatch(pattern, path) for path in seen[since:]):
                await asyncio.sleep(0.1)
    except TimeoutError:
        pytest.fail(f"{what}: never fetched; requests {seen[since:]}")


def _picture(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


async def _switch_audio(page, seen: list[str], outputs: dict[str, Any]) -> None:
    """German audio: the player's API reports it, and it takes effect (the German rendition is fetched)."""
    german = next(t for t in outputs["audio_tracks"] if t["language"] == "de")
    mark = len(seen)
    await page.evaluate("() => harness.setAudio('de')")
    await _until(page, "() => harness.audioActive() === 'de'", what="German audio reported")
    await _fetched(seen, rf"/site/cmaf/seg-{german['rep_id']}-\d+\.m4s", mark, what="German audio segments")
    # and appended, as a viewer would wait before touching anything else: a seek while shaka was still
    # replacing the audio it had flushed once hung in "seeking" for good (CI, both cores busy)
    await _until(page, "() => { const v = document.querySelector('video'); return !v.seeking && v.readyState >= 3; }",
                 what="German audio buffered")


async def _switch_subtitles(page, seen: list[str], where: Path, tag: str) -> None:
    """Off, English, German: each shows its own cue text, and the picture changes in its lower half."""
    box = {"x": 0, "y": 0, "width": 640, "height": 360}
    shots: dict[str, bytes] = {}
    for lang in (None, "en", "de"):
        # chosen while playing, as a viewer does (players load and draw cues as the clock moves: dash.js draws
        # nothing for a track chosen while paused until the next seek), then compared on one paused frame
        await page.evaluate("() => { const v = document.querySelector('video'); v.currentTime = 0.2; v.play(); }")
        await _until(page, "() => document.querySelector('video').currentTime > 0.3", what="playing again")
        await page.evaluate("(lang) => harness.setSub(lang)", lang)
        if lang:
            await _fetched(seen, rf"/site/captions/{lang}-\w+-\w+/seg-00001\.(vtt|m4s)", what=f"{lang} subtitles")
        await _until(page, "(text) => window.shown() === text", CUES.get(lang), what=f"subtitles {lang or 'off'}")
        await page.evaluate("() => { const v = document.querySelector('video'); v.pause(); v.currentTime = 1; }")
        await _until(page, "(text) => !document.querySelector('video').seeking && window.shown() === text",
                     CUES.get(lang), what=f"subtitles {lang or 'off'} on the paused frame")
        shots[lang or "off"] = await page.screenshot(clip=box)
        if lang:   # the cue is drawn: the picture differs from the one before, in its lower half
            before, changed = _picture(shots["off" if lang == "en" else "en"]), None
            async with asyncio.timeout(15):
                while changed is None or changed[3] <= box["height"] / 2:
                    shots[lang] = await page.screenshot(clip=box)
                    changed = ImageChops.difference(before, _picture(shots[lang])).getbbox()
        (where / f"{tag}-subtitles-{lang or 'off'}.png").write_bytes(shots[lang or "off"])


# shaka also reads HLS, but shaka-player 5.2.12 shows no HLS subtitles chosen after the viewer paused or sought
# (it marks the new text stream ended at once: "Close to end with no buffer and no segment reference"), while the
# same playlists play when chosen straight after load; see the notes of this harness. DASH is shaka's case here.
@pytest.mark.parametrize(("player", "manifest"), [("hls.js", "hls/master.m3u8"), ("dash.js", "dash/manifest.mpd"),
                                                  ("shaka", "dash/manifest.mpd")])
async def test_player_plays_and_switches_audio_and_subtitles(browser, asset, player, manifest, tmp_path):
    site, outputs = asset
    seen: list[str] = []
    server = await _serve(site, player, manifest, seen)
    page = await browser.new_page(viewport={"width": 640, "height": 360})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    where = Path(os.environ.get("ONAIR_TEST_ARTIFACTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    try:
        await page.goto(str(server.make_url("/")))
        await _until(page, "() => window.harness && harness.ready()", what="both track lists", within=60)
        assert await page.evaluate("() => harness.version") == _locked(BUILDS[PLAYERS[player][0]][0])
        await _until(page, "() => document.querySelector('video').currentTime > 0.5", what="playback advancing",
                     within=60)
        await page.evaluate("() => document.querySelector('video').pause()")
        assert sorted(await page.evaluate("() => harness.audio()")) == ["de", "en"]
        assert sorted(await page.evaluate("() => harness.subs()")) == ["de", "en"]
        await _switch_audio(page, seen, outputs)
        await _switch_subtitles(page, seen, where, f"{player}-{manifest.split('/')[0]}")
        assert await page.evaluate("() => window.fatal || null") is None
        assert errors == []
    finally:
        await page.close()
        await server.close()
