"""dash.js in Chromium (`?engine=dash`, the DASH that HbbTV terminals play): a VOD asset with two audio languages
plays and its audio language switches; a standard-latency live channel plays its dynamic MPD for more than 10 s;
a low-latency channel plays its LL-DASH MPD with dash.js's low-latency mode and live catch-up engaged, holding the
ServiceDescription's target. The dash.js chunk loads only on these pages (never with hls.js)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree

from onair.app import create_app
from onair.core.settings import Settings
from tests.ingest_tools import upload, wait_for
from tests.live_helpers import create, live_settings, publish, wait_status
from tests.media_checks import generate
from tests.tools import free_port

LIVE_SECONDS = 10.0


def _bundle_log(page, fetched: list[str]) -> None:
    page.on("request", lambda r: fetched.append(r.url) if "/player/" in r.url else None)


async def _open(browser, url: str) -> tuple[object, list[str], list[str]]:
    page = await browser.new_page(viewport={"width": 640, "height": 360})
    errors: list[str] = []
    fetched: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # the pages' strict CSP (no unsafe-eval/inline, media and workers from blob: only) holds for dash.js
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    _bundle_log(page, fetched)
    await page.goto(url)
    return page, errors, fetched


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("clips") / "two.mp4"
    return generate(path, size="320x180", rate="25", video_s=4.0, audio_s=4.0, languages=("eng", "ger")).read_bytes()


async def test_dashjs_plays_a_vod_asset_and_switches_its_audio_language(client, browser, clip) -> None:
    asset_id = await upload(client, clip, title="Harbour")
    assert (await wait_for(client, asset_id))["status"] == "ready"
    page, errors, fetched = await _open(browser, str(client.make_url(f"/embed/{asset_id}?engine=dash")))
    try:
        await page.wait_for_function("() => onairPlayer.dash && onairPlayer.levels > 0", timeout=20000)
        assert await page.evaluate("() => onairPlayer.engine") == "dashjs"
        assert any("/player/player-dash." in u for u in fetched), fetched
        await page.wait_for_function("() => !document.querySelector('.op-audio').hidden", timeout=15000)
        audio = await page.eval_on_selector_all(".op-audio option", "os => os.map(o => o.textContent)")
        langs = await page.evaluate("() => onairPlayer.dash.getTracksFor('audio').map(t => t.lang)")
        print(f"dash.js audio menu {audio}, MPD languages {langs}")
        assert len(audio) == 2 and audio[0] != audio[1]
        first = await page.evaluate("() => onairPlayer.dash.getCurrentTrackFor('audio').lang")
        await page.evaluate("() => { const v = document.querySelector('video'); v.muted = true; v.play(); }")
        await page.wait_for_function("() => document.querySelector('video').currentTime > 0.5", timeout=15000)
        await page.select_option(".op-audio", "1")
        await page.wait_for_function(
            f"() => onairPlayer.dash.getCurrentTrackFor('audio').lang !== {first!r}", timeout=10000)
        assert await page.evaluate("() => onairPlayer.audioTrack") == 1
        assert await page.evaluate("() => onairPlayer.errors") == [] and errors == []
    finally:
        await page.close()
    # the hls.js page never fetches the dash.js chunk
    page, errors, fetched = await _open(browser, str(client.make_url(f"/embed/{asset_id}")))
    try:
        await page.wait_for_function("() => onairPlayer.levels > 0", timeout=15000)
        assert await page.evaluate("() => onairPlayer.engine") == "hlsjs"
        assert not any("player-dash." in u for u in fetched), fetched
    finally:
        await page.close()


async def _served(s: Settings) -> AsyncIterator[TestClient]:
    # The MPD's UTCTiming names onair's time endpoint by its public URL: serve on that URL, as a deployment does,
    # so dash.js can reach it under the page's `connect-src 'self'`.
    port = free_port()
    s = s.with_(public_url=f"http://127.0.0.1:{port}")
    async with TestClient(TestServer(create_app(s, s.database_url or ""), host="127.0.0.1", port=port)) as c:
        yield c


@pytest.fixture
async def standard(settings) -> AsyncIterator[TestClient]:
    async for c in _served(live_settings(settings, live_latency="standard")):
        yield c


@pytest.fixture
async def low(settings) -> AsyncIterator[TestClient]:
    # The same shape as test_live_ll: 2 s segments, 0.5 s parts (LL-DASH chunks), a small ladder.
    async for c in _served(live_settings(settings, live_latency="low", live_segment_seconds=2.0,
                                         live_part_seconds=0.5, live_max_height=270)):
        yield c


def _encoder_lag(mpd: bytes) -> float:
    """How far the MPD's newest video segment ends behind the wall clock (s): what an encoder that runs slower
    than real time adds to every player's latency."""
    ns = {"m": "urn:mpeg:dash:schema:mpd:2011"}
    root = etree.fromstring(mpd)
    ast = datetime.fromisoformat(root.get("availabilityStartTime").replace("Z", "+00:00")).timestamp()
    period = root.findall("m:Period", ns)[-1]
    start = re.fullmatch(r"PT([\d.]+)S", period.get("start", "PT0S"))
    template = period.find("m:AdaptationSet/m:SegmentTemplate", ns)
    scale, offset = int(template.get("timescale")), int(template.get("presentationTimeOffset", "0"))
    end = 0
    for seg in template.findall("m:SegmentTimeline/m:S", ns):
        t = int(seg.get("t", end))
        end = t + int(seg.get("d")) * (int(seg.get("r", "0")) + 1)
    return time.time() - (ast + (float(start.group(1)) if start else 0.0) + (end - offset) / scale)


async def _go_live(client: TestClient, seconds: float) -> tuple[subprocess.Popen, str]:
    """A channel with an ffmpeg publisher on it, once the channel says it is live."""
    body = await create(client, dvr_seconds=60)
    pub = publish(body["ingest"]["rtmp"], seconds)
    try:
        await wait_status(client, body["id"], "live")
    except BaseException:
        pub.kill()
        raise
    return pub, body["id"]


async def test_dashjs_plays_a_standard_latency_live_channel(standard: TestClient, browser) -> None:
    pub, cid = await _go_live(standard, LIVE_SECONDS + 25)
    page = None
    try:
        page, errors, _ = await _open(browser, str(standard.make_url(f"/embed/live/{cid}?engine=dash&autoplay=1")))
        await page.wait_for_function("() => document.querySelector('video').currentTime > 0", timeout=30000)
        state = await page.evaluate("() => ({engine: onairPlayer.engine, dynamic: onairPlayer.dash.isDynamic(),"
                                    " low: onairPlayer.dash.getLowLatencyModeEnabled(), t: onairPlayer.video"
                                    ".currentTime})")
        assert state["engine"] == "dashjs" and state["dynamic"] is True and state["low"] is False, state
        await page.wait_for_function(
            f"() => document.querySelector('video').currentTime > {state['t']} + {LIVE_SECONDS}",
            timeout=LIVE_SECONDS * 3 * 1000)
        latency = await page.evaluate("() => onairPlayer.dash.getCurrentLiveLatency()")
        edge = await page.evaluate("() => { const r = onairPlayer.live.range(); return [onairPlayer.video.currentTime,"
                                   " r && r.start, r && r.end, onairPlayer.dash.getTargetLiveDelay()]; }")
        lag = _encoder_lag(await (await standard.get(f"/live/{cid}/dash/manifest.mpd")).read())
        print(f"dash.js standard live: latency {latency:.2f} s (newest segment ends {lag:.1f} s behind the wall"
              f" clock), [t, seekable start, end, target] {edge},"
              f" dash.js errors {await page.evaluate('() => onairPlayer.dashErrors || []')}")
        assert await page.evaluate("() => onairPlayer.errors") == [] and errors == []
        # LIVE or behind (the badge is honest: behind when an overloaded encoder lags real time); Go live asks
        # dash.js for its live point
        assert await page.evaluate("() => document.querySelector('.op-badge').dataset.state") in ("live", "behind")
        await page.evaluate("() => onairPlayer.goLive()")
        await page.wait_for_function(f"() => document.querySelector('video').currentTime > {edge[0]} + 1",
                                     timeout=15000)
    finally:
        if page is not None:
            await page.close()
        pub.kill()
        await asyncio.to_thread(pub.wait, 30)


async def test_dashjs_plays_a_low_latency_channel_with_live_catchup(low: TestClient, browser) -> None:
    pub, cid = await _go_live(low, LIVE_SECONDS + 25)
    page = None
    try:
        page, errors, _ = await _open(browser, str(low.make_url(f"/embed/live/{cid}?engine=dash&autoplay=1&debug=1")))
        await page.wait_for_function("() => document.querySelector('video').currentTime > 0", timeout=30000)
        t0 = await page.evaluate("() => onairPlayer.video.currentTime")
        samples: list[float] = []
        lags: list[float] = []
        rates: list[float] = []
        async with asyncio.timeout(LIVE_SECONDS * 3):
            while (t := await page.evaluate("() => onairPlayer.video.currentTime")) < t0 + LIVE_SECONDS:
                await asyncio.sleep(1)
                latency = await page.evaluate("() => onairPlayer.dash.getCurrentLiveLatency()")
                lag = _encoder_lag(await (await low.get(f"/live/{cid}/dash/manifest.mpd")).read())
                samples.append(latency)
                lags.append(lag)
                rates.append(await page.evaluate("() => onairPlayer.video.playbackRate"))
        state = await page.evaluate("""() => { const d = onairPlayer.dash, c = d.getSettings().streaming.liveCatchup;
            return {low: d.getLowLatencyModeEnabled(), catchup: c.enabled, max: c.playbackRate.max,
                    target: d.getTargetLiveDelay(), overlay: document.querySelector('.op-debug').textContent,
                    dashErrors: onairPlayer.dashErrors || [], errors: onairPlayer.errors}; }""")
        latencies = sorted(x for x in samples if x and x > 0)
        p50 = latencies[len(latencies) // 2] if latencies else None
        # The player's own share: its latency less how far the encoder's newest segment is behind real time (on a
        # saturated 2-core host the encoder alone falls seconds behind; that is the encoder's figure, not dash.js's).
        own = sorted(x - lag for x, lag in zip(samples, lags, strict=True) if x and x > 0)
        own_p50 = own[len(own) // 2] if own else None
        print(f"dash.js LL-DASH: played {t - t0:.1f} s, latency p50 {p50} s (target {state['target']} s), behind the"
              f" newest segment p50 {own_p50} s, encoder lag {[round(x, 1) for x in lags]},"
              f" max rate {max(rates, default=1):.2f}; overlay: {state['overlay']};"
              f" dash.js errors {state['dashErrors']}")
        assert state["low"] is True and state["catchup"] is True and state["max"] <= 0.1, state
        assert 0 < state["target"] <= 6, state    # the ServiceDescription's target, not dash.js's own default
        assert max(rates, default=1) <= 1.1 + 1e-6
        assert "dashjs LL" in state["overlay"] and "latency" in state["overlay"] and "target" in state["overlay"]
        assert own_p50 is not None and own_p50 < 8.0, (samples, lags)
        assert state["errors"] == [] and errors == []
    finally:
        if page is not None:
            await page.close()
        pub.kill()
        await asyncio.to_thread(pub.wait, 30)
