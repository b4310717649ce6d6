"""The embed player in a real Chromium (Playwright): a generated HLS clip actually plays.

Covers: playback on /embed/{id} (hls.js with two rungs, and Chromium's native HLS), keyboard control,
a play beacon counted in the stats, the oEmbed html inside a page on another origin, and a
disallowed origin blocked by frame-ancestors. Screenshots go to $ONAIR_TEST_ARTIFACTS (or the
test's tmp dir) as test artefacts.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import asyncpg
import imageio_ffmpeg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from onair.core.auth import SIGNING_KEY
from onair.core.db.pool import POOL
from onair.core.settings import Settings
from onair.core.storage import STORE, guess_type
from streaming.delivery.signing import TokenProblem, check_token
from tests.conftest import ADMIN
from tests.embed_helpers import insert_asset

OUTPUTS = {"hls": "hls/master.m3u8", "poster": None,
           "video": [{"name": "180p", "width": 320, "height": 180, "bitrate": 400000},
                     {"name": "108p", "width": 192, "height": 108, "bitrate": 150000}],
           "captions": [{"lang": "en", "label": "English", "key": "captions/en.vtt"}],
           "storyboard": {"vtt": "images/storyboard.vtt", "image": "images/storyboard.jpg"}}
STORYBOARD = (b"WEBVTT\n\n00:00.000 --> 00:01.500\nstoryboard.jpg#xywh=0,0,160,90\n\n"
              b"00:01.500 --> 00:03.000\nstoryboard.jpg#xywh=160,0,160,90\n")


def _make_hls(out: Path) -> None:
    """3 s testsrc2 + sine as fMP4 HLS, two rungs (each with muxed AAC), 1 s segments."""
    out.mkdir(parents=True)
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
         "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", "3", "-map", "0:v", "-map", "1:a", "-map", "0:v", "-map", "1:a",
         "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "main", "-pix_fmt", "yuv420p",
         "-g", "25", "-keyint_min", "25", "-sc_threshold", "0",
         "-s:v:0", "320x180", "-b:v:0", "400k", "-s:v:1", "192x108", "-b:v:1", "150k",
         "-c:a", "aac", "-b:a", "64k", "-ac", "2",
         "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
         "-master_pl_name", "master.m3u8", "-hls_segment_filename", "r%v/seg-%03d.m4s",
         "-hls_fmp4_init_filename", "init.mp4", "-var_stream_map", "v:0,a:0 v:1,a:1", "r%v/index.m3u8"],
        cwd=out, check=True, timeout=60)


MEDIA_LOG = web.AppKey("media_log", list)


async def _media(request: web.Request) -> web.StreamResponse:
    """Stand-in for the origin's /media route (test app only, when the origin is not wired in):
    serves objects, and for private assets only with a valid path token (streaming.delivery.signing)."""
    asset_id, key = request.match_info["asset_id"], request.match_info["key"]
    request.app[MEDIA_LOG].append(request.path)
    token = None
    if key.startswith("tok/"):
        _, token, key = key.split("/", 2)
    visibility = await request.app[POOL].fetchval("SELECT visibility FROM assets WHERE id = $1", asset_id)
    if visibility == "private":
        ok = token is not None and check_token(request.app[SIGNING_KEY], token, f"/media/{asset_id}/{key}",
                                               time.time()) is TokenProblem.OK
        if not ok:
            raise web.HTTPForbidden()
    key = f"assets/{asset_id}/{key}"
    try:
        data = await request.app[STORE].get_bytes(key)
    except Exception:
        raise web.HTTPNotFound() from None
    return web.Response(body=data, content_type=guess_type(key))


@pytest.fixture
async def server(settings: Settings, tmp_path: Path) -> AsyncIterator[TestClient]:
    app = create_app(settings, settings.database_url or "", run_worker=False)
    app[MEDIA_LOG] = []
    if not any(r.canonical.startswith("/media/") for r in app.router.resources()):
        app.router.add_get("/media/{asset_id}/{key:.+}", _media)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def _ready_clip(client: TestClient, db: asyncpg.Pool, tmp_path: Path, **kw: object) -> str:
    asset_id = await insert_asset(db, outputs=OUTPUTS, duration=3.0, **kw)  # type: ignore[arg-type]
    src = tmp_path / f"hls-{asset_id}"
    _make_hls(src)
    store = client.app[STORE]
    for f in sorted(src.rglob("*")):
        if f.is_file():
            await store.put_file(f"assets/{asset_id}/hls/{f.relative_to(src).as_posix()}", f)
    await store.put_bytes(f"assets/{asset_id}/images/storyboard.vtt", STORYBOARD, "text/vtt")
    await store.put_bytes(f"assets/{asset_id}/captions/en.vtt",
                          b"WEBVTT\n\n00:00.000 --> 00:03.000\nHello from the harbour\n", "text/vtt")
    return asset_id


def _artifacts(tmp_path: Path) -> Path:
    where = Path(os.environ.get("ONAIR_TEST_ARTIFACTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


async def _wait_db(db: asyncpg.Pool, query: str, *args: object) -> None:
    """The beacon is fire-and-forget in the browser: wait (at most 10 s) until its row is there."""
    for _ in range(200):
        if await db.fetchval(query, *args):
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"no row for {query} {args}")


PLAYING = "() => { const v = document.querySelector('video'); return v && v.currentTime > 0.5 && !v.error; }"


async def test_embed_plays_with_hlsjs_and_keyboard_and_counts_a_play(
        server: TestClient, browser, db: asyncpg.Pool, tmp_path: Path) -> None:
    asset_id = await _ready_clip(server, db, tmp_path, title="<script>alert('x')</script> Harbour")
    page = await browser.new_page(viewport={"width": 640, "height": 360})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    started = asyncio.get_running_loop().time()
    await page.goto(str(server.make_url(f"/embed/{asset_id}")))
    assert await page.title() == "<script>alert('x')</script> Harbour"  # shown as text, never run
    await page.focus(".op-player")
    await page.keyboard.press("k")                       # keyboard starts playback
    await page.wait_for_function(PLAYING, timeout=15000)
    first_frame = asyncio.get_running_loop().time() - started
    state = await page.evaluate("() => ({engine: onairPlayer.engine, levels: onairPlayer.levels,"
                                " tracks: document.querySelector('video').textTracks.length})")
    assert state == {"engine": "hlsjs", "levels": 2, "tracks": 1}
    await page.screenshot(path=str(_artifacts(tmp_path) / "embed-hlsjs.png"))
    await page.keyboard.press("k")                       # and pauses it
    await page.wait_for_function("() => document.querySelector('video').paused", timeout=5000)
    # the button's label follows the media 'pause' event, which fires after `paused` flips
    await page.wait_for_function("() => document.querySelector('.op-play').getAttribute('aria-label') === 'Play'",
                                 timeout=5000)
    await page.keyboard.press("m")
    assert await page.evaluate("() => document.querySelector('video').muted") is True
    # storyboard preview over the scrub bar: hovering the last quarter shows the second tile
    box = await page.locator(".op-seek").bounding_box()
    await page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2)
    await page.wait_for_selector(".op-thumb:not([hidden])", timeout=5000)
    thumb = await page.evaluate("() => { const t = document.querySelector('.op-thumb');"
                                " return [t.style.backgroundImage, t.style.backgroundPosition]; }")
    assert f"/media/{asset_id}/images/storyboard.jpg" in thumb[0] and thumb[1] == "-160px 0px"
    assert errors == []
    await _wait_db(db, "SELECT played FROM player_sessions WHERE asset_id = $1", asset_id)
    stats = await (await server.get(f"/api/v1/assets/{asset_id}/stats", headers=ADMIN)).json()
    assert stats["plays"] == 1
    # Time to first frame with autoplay: the video's clock has started moving, in ms since navigation start.
    fresh = await browser.new_page()
    await fresh.goto(str(server.make_url(f"/embed/{asset_id}?autoplay=1")))
    await fresh.wait_for_function("() => document.querySelector('video').currentTime > 0", polling=10, timeout=15000)
    ttff = await fresh.evaluate("() => performance.now()")
    print(f"time to playing (keyboard start, currentTime > 0.5 s): {first_frame:.2f} s; "
          f"autoplay time to first frame: {ttff:.0f} ms")


async def test_embed_plays_with_native_hls_and_autoplay(
        server: TestClient, browser, db: asyncpg.Pool, tmp_path: Path) -> None:
    asset_id = await _ready_clip(server, db, tmp_path)
    page = await browser.new_page()
    native = await page.evaluate("() => !!document.createElement('video').canPlayType('application/vnd.apple.mpegurl')")
    await page.goto(str(server.make_url(f"/embed/{asset_id}?engine=native&autoplay=1")))
    await page.wait_for_function(PLAYING, timeout=15000)
    # a browser without native HLS falls back to hls.js rather than failing
    assert await page.evaluate("() => [onairPlayer.engine, document.querySelector('video').muted]") == [
        "native" if native else "hlsjs", True]
    # played to the end: quartile and ended beacons land in the stats
    await page.wait_for_function("() => document.querySelector('video').ended", timeout=15000)
    await _wait_db(db, "SELECT ended FROM player_sessions WHERE asset_id = $1", asset_id)
    stats = await (await server.get(f"/api/v1/assets/{asset_id}/stats", headers=ADMIN)).json()
    assert stats["completions"] == 1 and stats["quartiles"]["75"] == 1
    assert 2.0 <= stats["average_watch_seconds"] <= 3.5


async def test_oembed_html_plays_inside_another_origin_and_allowlist_blocks(
        server: TestClient, browser, db: asyncpg.Pool, tmp_path: Path) -> None:
    open_id = await _ready_clip(server, db, tmp_path)
    closed_id = await insert_asset(db, outputs=OUTPUTS, embed_origins=["https://news.example"])
    body = await (await server.get(f"/oembed?url={quote(str(server.make_url(f'/embed/{open_id}')), safe='')}"
                                   "&maxwidth=480")).json()
    autoplay_html = body["html"].replace(f"/embed/{open_id}", f"/embed/{open_id}?autoplay=1")
    blocked = str(server.make_url(f"/embed/{closed_id}"))
    article = (f"<!doctype html><title>Partner article</title><h1>News</h1>{autoplay_html}"
               f'<iframe id="blocked" src="{blocked}" width="320" height="180"></iframe>')

    async def partner_page(request: web.Request) -> web.Response:
        return web.Response(text=article, content_type="text/html")

    partner = web.Application()
    partner.router.add_get("/article", partner_page)
    async with TestServer(partner, host="localhost") as other:   # another host and port: another origin
        page = await browser.new_page()
        await page.goto(str(other.make_url("/article")))
        frame = next(f for f in page.frames if f"/embed/{open_id}" in f.url)
        await frame.wait_for_function(PLAYING, timeout=15000)
        await page.screenshot(path=str(_artifacts(tmp_path) / "embed-cross-origin.png"))
        await _wait_db(db, "SELECT played FROM player_sessions WHERE asset_id = $1 AND referrer_domain = 'localhost'",
                       open_id)
        # the disallowed embed never renders a player
        blocked_frame = await (await page.query_selector("#blocked")).content_frame()
        assert blocked_frame is not None
        assert blocked_frame.url.startswith("chrome-error://"), blocked_frame.url  # refused by frame-ancestors
        # the same asset opened directly (no ancestor) still works: frame-ancestors only limits framing
        direct = await browser.new_page()
        resp = await direct.goto(blocked)
        assert resp.status == 200 and await direct.query_selector("video") is not None


async def test_private_video_plays_through_its_signed_path(
        server: TestClient, browser, db: asyncpg.Pool, tmp_path: Path) -> None:
    asset_id = await _ready_clip(server, db, tmp_path, visibility="private")
    unsigned = await server.get(f"/media/{asset_id}/hls/master.m3u8")
    assert unsigned.status in (401, 403, 404)      # no token, no media
    minted = await (await server.post(f"/api/v1/assets/{asset_id}/embed-token", json={}, headers=ADMIN)).json()
    page = await browser.new_page()
    await page.goto(str(server.make_url(f"/embed/{asset_id}?autoplay=1&token={minted['token']}")))
    await page.wait_for_function(PLAYING, timeout=15000)
    log = server.app[MEDIA_LOG]
    if log:  # our stand-in origin served it: every media request carried the token, segments included
        from_browser = [p for p in log if p != f"/media/{asset_id}/hls/master.m3u8"]
        assert any(p.endswith(".m4s") for p in from_browser)
        assert all(f"/media/{asset_id}/tok/" in p for p in from_browser), from_browser
