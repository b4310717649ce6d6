"""The embed and watch pages over the real app and PostgreSQL: what a newsroom and a viewer would see."""

from __future__ import annotations

import gzip
import json
import os
import re
from dataclasses import replace
from datetime import timedelta

import aiohttp
import asyncpg
from aiohttp.test_utils import TestClient
from lxml import html as lxml_html

from streaming.delivery.signing import TokenProblem, check_token
from syndication.embed.pages import PlayerOptions, _seconds, frame_ancestors
from tests.conftest import ADMIN
from tests.embed_helpers import FakeClock, insert_asset

SIGNING_KEY = b"test-signing-key-not-secret"


def _config(page: str) -> dict:
    doc = lxml_html.fromstring(page)
    return json.loads(doc.get_element_by_id("onair-config").text)


async def test_embed_page_has_player_config_discovery_and_captions(client: TestClient, db: asyncpg.Pool) -> None:
    asset_id = await insert_asset(db)
    resp = await client.get(f"/embed/{asset_id}?autoplay=1&start=1:05&loop")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    text = await resp.text()
    cfg = _config(text)
    assert cfg["src"] == f"/media/{asset_id}/hls/master.m3u8"
    assert cfg["autoplay"] is True and cfg["loop"] is True and cfg["start"] == 65
    assert cfg["storyboard"] == f"/media/{asset_id}/images/storyboard.vtt"
    doc = lxml_html.fromstring(text)
    video = doc.xpath("//video")[0]
    assert video.get("poster") == f"/media/{asset_id}/images/poster.jpg"
    track = doc.xpath("//video/track")[0]
    assert (track.get("src"), track.get("srclang"), track.get("label")) == (
        f"/media/{asset_id}/captions/en.vtt", "en", "English")
    link = doc.xpath('//link[@rel="alternate"][@type="application/json+oembed"]')[0]
    assert "/oembed?url=" in link.get("href") and f"%2Fembed%2F{asset_id}" in link.get("href")
    assert doc.xpath("//title")[0].text == "Harbour fire"
    assert "0:03" in doc.xpath('//*[@class="op-time"]')[0].text
    # controls are real buttons / a range input: reachable with the keyboard
    assert {b.get("aria-label") for b in doc.xpath("//button")} >= {"Play", "Mute", "Full screen", "Captions"}
    assert doc.xpath('//input[@type="range"]')[0].get("aria-label") == "Seek"
    csp = resp.headers["Content-Security-Policy"]
    assert "frame-ancestors *" in csp and "script-src 'self'" in csp


async def test_title_with_markup_is_shown_as_text(client: TestClient, db: asyncpg.Pool) -> None:
    evil = '</script><script>alert(1)</script> "quoted" & <b>bold</b>'
    asset_id = await insert_asset(db, title=evil)
    for path in (f"/embed/{asset_id}", f"/watch/{asset_id}"):
        text = await (await client.get(path)).text()
        assert "<script>alert(1)" not in text and "<b>bold" not in text
        doc = lxml_html.fromstring(text)
        assert doc.xpath("//title")[0].text == evil
        assert len(doc.xpath("//script[not(@src) and not(@type='application/json')]")) == 0
    assert _config(await (await client.get(f"/embed/{asset_id}")).text())["title"] == evil


async def test_unknown_id_is_a_404_page_not_a_blank_player(client: TestClient) -> None:
    resp = await client.get("/embed/nosuchvideo1")
    assert resp.status == 404 and resp.content_type == "text/html"
    text = await resp.text()
    assert "does not exist" in text and "onair-config" not in text and "<video" not in text


async def test_processing_asset_shows_retrying_poster(client: TestClient, db: asyncpg.Pool) -> None:
    asset_id = await insert_asset(db, status="transcoding", outputs=None)
    resp = await client.get(f"/embed/{asset_id}")
    assert resp.status == 200
    text = await resp.text()
    assert "still being processed" in text and 'http-equiv="refresh"' in text and "<video" not in text
    assert resp.headers["Retry-After"] == "10"


async def test_embargoed_and_expired_assets_show_a_message_without_playback(
        clocked: tuple[TestClient, FakeClock], db: asyncpg.Pool) -> None:
    client, clock = clocked
    now = clock.now
    later = await insert_asset(db, available_from=now + timedelta(days=1))
    gone = await insert_asset(db, available_from=now - timedelta(days=2), available_until=now - timedelta(days=1))
    resp = await client.get(f"/embed/{later}")
    text = await resp.text()
    assert resp.status == 403 and "not available yet" in text and "/media/" not in text and "<video" not in text
    assert "02 June 2026" in text
    expiring = await insert_asset(db, available_until=now + timedelta(seconds=20))
    assert (await client.get(f"/embed/{expiring}")).headers["Cache-Control"] == "public, max-age=20"
    resp = await client.get(f"/embed/{gone}")
    text = await resp.text()
    assert resp.status == 404 and "no longer available" in text and "/media/" not in text
    # moving the clock past the embargo makes the first one playable
    clock.now = now + timedelta(days=2)
    resp = await client.get(f"/embed/{later}")
    assert resp.status == 200 and "/media/" in _config(await resp.text())["src"]


async def test_private_asset_gets_a_short_lived_signed_path(
        clocked: tuple[TestClient, FakeClock], db: asyncpg.Pool) -> None:
    client, clock = clocked
    now = clock.now
    asset_id = await insert_asset(db, visibility="private", title="Secret finale")
    # knowing the id is not enough: without an embed token the page is "not found" and names nothing
    bare = await client.get(f"/embed/{asset_id}")
    assert bare.status == 404 and "Secret finale" not in await bare.text()
    forged = await client.get(f"/embed/{asset_id}?token=9999999999.AAAAAAAAAAAAAAAAAAAAAAAA")
    assert forged.status == 404
    minted = await client.post(f"/api/v1/assets/{asset_id}/embed-token", json={"seconds": 600}, headers=ADMIN)
    assert minted.status == 201
    embed_url = (await minted.json())["embed_url"]
    assert (await client.post(f"/api/v1/assets/{asset_id}/embed-token", json={})).status == 401
    resp = await client.get(embed_url[embed_url.index("/embed/"):])
    assert resp.status == 200
    assert "no-store" in resp.headers["Cache-Control"]
    text = await resp.text()
    assert "application/json+oembed" not in text  # private videos are not advertised
    cfg = _config(text)
    match = re.fullmatch(rf"/media/{asset_id}/tok/([^/]+)/hls/master\.m3u8", cfg["src"])
    assert match, cfg["src"]
    token = match.group(1)
    segment = f"/media/{asset_id}/hls/720p/seg-00001.m4s"  # a relative URL resolved in the playlist
    assert check_token(SIGNING_KEY, token, segment, now.timestamp() + 60) is TokenProblem.OK
    assert check_token(SIGNING_KEY, token, "/media/otherasset12/hls/master.m3u8",
                       now.timestamp()) is TokenProblem.WRONG_PATH
    assert check_token(SIGNING_KEY, token, segment, now.timestamp() + 3601) is TokenProblem.EXPIRED
    assert cfg["storyboard"].startswith(f"/media/{asset_id}/tok/{token}/")
    assert cfg["dash"] == f"/media/{asset_id}/tok/{token}/dash/manifest.mpd"   # dash.js plays under the same token
    # the public watch page does not exist for private videos
    assert (await client.get(f"/watch/{asset_id}")).status == 404


async def test_frame_ancestors_per_asset_and_global_default(client: TestClient, db: asyncpg.Pool) -> None:
    open_id = await insert_asset(db)
    closed_id = await insert_asset(db, embed_origins=["https://news.example", "https://*.partner.example"])
    assert "frame-ancestors *" in (await client.get(f"/embed/{open_id}")).headers["Content-Security-Policy"]
    csp = (await client.get(f"/embed/{closed_id}")).headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://news.example https://*.partner.example" in csp


def test_frame_ancestors_rejects_injection() -> None:
    class A:
        embed_origins = ("https://ok.example", "https://x.example; script-src *")

    assert frame_ancestors(A(), ("*",)) == "frame-ancestors 'self' https://ok.example"  # type: ignore[arg-type]
    assert frame_ancestors(None, ("https://a.example",)) == "frame-ancestors 'self' https://a.example"


def test_start_option_parsing_never_fails() -> None:
    assert _seconds("90") == 90 and _seconds("1:30") == 90 and _seconds("1m30s") == 90 and _seconds("2h") == 7200
    for bad in ("abc", "-5", "nan", "inf", "1:x", "5q"):
        assert _seconds(bad) == 0
    assert PlayerOptions.from_query({"autoplay": "0"}).autoplay is False


def test_engine_option_names_a_player_engine_or_none() -> None:
    engine = lambda q: PlayerOptions.from_query({"engine": q}).engine  # noqa: E731
    assert (engine("dash"), engine("dashjs"), engine("hlsjs"), engine("native")) == ("dashjs", "dashjs", "hlsjs",
                                                                                     "native")
    assert engine("flash") is None and engine("") is None


def test_live_page_names_the_mpd_and_the_channel_latency() -> None:
    from datetime import UTC, datetime

    from streaming.live import Channel
    from syndication.embed.live_pages import live_page

    now = datetime(2026, 1, 1, tzinfo=UTC)
    channel = Channel("ch1", "News", "key", False, 60, "public", "low", "live", None, 1, "rtmp", None, None, None,
                      [], None, now, None, now, now)
    page = live_page(channel, "ch1", now, PlayerOptions.from_query({"engine": "dash", "debug": "1"}))
    assert page.config is not None
    assert (page.config["dash"], page.config["engine"], page.config["low_latency"], page.config["debug"]) == (
        "/live/ch1/dash/manifest.mpd", "dashjs", True, True)
    standard = live_page(replace(channel, latency="standard"), "ch1", now, PlayerOptions())
    assert standard.config is not None and standard.config["low_latency"] is False


async def test_watch_page_has_discovery_and_copyable_snippet(client: TestClient, db: asyncpg.Pool) -> None:
    asset_id = await insert_asset(db, description="Crews at the harbour <b>tonight</b>")
    resp = await client.get(f"/watch/{asset_id}")
    assert resp.status == 200
    doc = lxml_html.fromstring(await resp.text())
    assert doc.xpath('//link[@type="application/json+oembed"]')
    snippet = doc.get_element_by_id("op-snippet").text
    iframe = lxml_html.fragment_fromstring(snippet)
    assert iframe.tag == "iframe" and iframe.get("src").endswith(f"/embed/{asset_id}")
    assert iframe.get("allow") == "autoplay; fullscreen; picture-in-picture"
    assert iframe.get("allowfullscreen") is not None and iframe.get("title") == "Harbour fire"
    assert (iframe.get("width"), iframe.get("height")) == ("640", "360")
    assert doc.xpath('//p[@class="op-description"]')[0].text == "Crews at the harbour <b>tonight</b>"


async def test_player_bundle_is_hashed_long_cached_and_page_weight_within_budget(
        client: TestClient, db: asyncpg.Pool) -> None:
    asset_id = await insert_asset(db)
    total = 0
    async with aiohttp.ClientSession(auto_decompress=False) as raw:
        resp = await raw.get(client.make_url(f"/embed/{asset_id}"), headers={"Accept-Encoding": "gzip"})
        page = await resp.read()
        assert resp.headers.get("Content-Encoding") == "gzip"
        total += len(page)
        doc = lxml_html.fromstring(gzip.decompress(page))
        urls = [e.get("src") for e in doc.xpath("//script[@src]")] + \
               [e.get("href") for e in doc.xpath('//link[@rel="stylesheet"]')]
        assert len(urls) == 2
        for url in urls:
            assert re.fullmatch(r"/player/[\w-]+\.[A-Z0-9]{8}\.(js|css)", url), url
            asset = await raw.get(client.make_url(url), headers={"Accept-Encoding": "gzip"})
            assert asset.status == 200
            assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert asset.headers["Content-Encoding"] == "gzip"
            total += len(await asset.read())
            again = await raw.get(client.make_url(url), headers={"If-None-Match": asset.headers["ETag"]})
            assert again.status == 304
    print(f"embed page weight (gzip, page + player bundle): {total} bytes")
    assert total <= 250 * 1024
    assert (await client.get("/player/nope.js")).status == 404
    assert (await client.get("/player/..%2Fembed.py")).status == 404


async def test_player_events_are_counted_per_asset_and_referrer(client: TestClient, db: asyncpg.Pool) -> None:
    asset_id = await insert_asset(db, duration=10.0)

    async def beacon(**body: object) -> int:
        body = {"asset_id": asset_id, "session": "sess-aaaaaaaa", **body}
        resp = await client.post("/api/v1/player/events", data=json.dumps(body),
                                 headers={"Content-Type": "text/plain;charset=UTF-8"})
        return resp.status

    assert await beacon(event="play", referrer="https://news.example/story/1") == 204
    assert await beacon(event="q25", watched=2.6, referrer="https://news.example/story/1") == 204
    assert await beacon(event="pause", watched=4.0, referrer="https://news.example/story/1") == 204
    assert await beacon(event="q25", watched=2.6, referrer="https://news.example/story/1") == 204  # repeat: no gain
    assert await beacon(session="sess-bbbbbbbb", event="play", referrer="") == 204
    assert await beacon(session="sess-bbbbbbbb", event="ended", watched=500, referrer="") == 204  # capped
    assert await beacon(session="sess-cccccccc", event="error", detail="manifestLoadError") == 204
    assert await beacon(event="bogus") == 400
    assert await beacon(asset_id="nosuchvideo1", event="play") == 404
    resp = await client.post("/api/v1/player/events", data=b"{not json")
    assert resp.status == 400 and resp.content_type == "application/problem+json"

    assert (await client.get(f"/api/v1/assets/{asset_id}/stats")).status == 401
    stats = await (await client.get(f"/api/v1/assets/{asset_id}/stats", headers=ADMIN)).json()
    assert stats["plays"] == 2
    assert stats["average_watch_seconds"] == (4.0 + 15.0) / 2
    assert stats["completions"] == 1 and stats["errors"] == 1
    assert stats["quartiles"]["25"] == 2
    by_domain = {r["domain"]: r["plays"] for r in stats["referrers"]}
    assert by_domain["news.example"] == 1 and by_domain[None] == 1
    assert (await client.get("/api/v1/assets/nosuchvideo1/stats", headers=ADMIN)).status == 404


def test_committed_bundle_matches_manifest_and_lockfile() -> None:
    """The served bundle is what the lockfile builds: hashed names, pinned hls.js and dash.js (its own chunk, named
    inside the player script that loads it), and (when the npm dependencies are installed here) a byte-identical
    rebuild of every file."""
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    static = root / "syndication" / "embed" / "static" / "player"
    manifest = json.loads((static / "manifest.json").read_text())
    assert set(manifest) == {"player.js", "player.css", "player-dash.js"}
    assert sorted(p.name for p in static.iterdir()) == sorted([*manifest.values(), "manifest.json"])
    lock = json.loads((root / "syndication" / "embed" / "player" / "package-lock.json").read_text())
    package = json.loads((root / "syndication" / "embed" / "player" / "package.json").read_text())
    for dependency in ("hls.js", "dashjs"):
        pinned = package["dependencies"][dependency]
        assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), (dependency, pinned)
        assert lock["packages"][f"node_modules/{dependency}"]["version"] == pinned
    # the player fetches the dash.js chunk by the name it was built with; the page itself never names it
    assert manifest["player-dash.js"] in (static / manifest["player.js"]).read_text()
    assert "liveCatchupModeLoLP" in (static / manifest["player-dash.js"]).read_text()
    assert "liveCatchupModeLoLP" not in (static / manifest["player.js"]).read_text()   # dash.js stays out
    player = root / "syndication" / "embed" / "player"
    node = shutil.which("node")
    if node and (player / "node_modules" / "esbuild").exists():
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([node, "build.mjs"], cwd=player, check=True, timeout=120,
                           env={**os.environ, "ONAIR_PLAYER_OUTDIR": out}, capture_output=True)
            for name in [*manifest.values(), "manifest.json"]:
                assert (Path(out) / name).read_bytes() == (static / name).read_bytes(), name
