"""Replacing an asset's source (`POST /api/v1/assets/{id}/source`): same id and URLs, the old renditions play
until the new ones are ready, then one switch, a CDN purge, and the old generation goes after the grace period.
A failed replacement leaves the old renditions playing and says why."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree
from yarl import URL

from onair.app import create_app
from onair.core.settings import Settings
from tests.conftest import ADMIN
from tests.ingest_tools import make_clip, upload, wait_for
from tests.test_ingest import SCHEMA


async def _get(client: TestClient, path: str) -> bytes:
    resp = await client.get(path)
    assert resp.status == 200, (path, resp.status, await resp.text())
    return await resp.read()


def _refs(playlist: bytes) -> list[str]:
    return [ln for ln in playlist.decode().splitlines() if ln and not ln.startswith("#")]


async def _first_segment(client: TestClient, master_path: str) -> tuple[str, bytes]:
    """The path of the first media segment a player reaches from the master, and its bytes."""
    master = URL(master_path)
    variant = master.join(URL(_refs(await _get(client, master_path))[0]))
    segment = variant.join(URL(_refs(await _get(client, str(variant)))[0]))
    return str(segment), await _get(client, str(segment))


async def _replace(client: TestClient, asset_id: str, data: bytes) -> dict:
    form = FormData()
    form.add_field("file", data, filename="new.mp4", content_type="video/mp4")
    resp = await client.post(f"/api/v1/assets/{asset_id}/source", data=form, headers=ADMIN)
    assert resp.status == 202, await resp.text()
    return await resp.json()


async def _replacement_ends(client: TestClient, asset_id: str, within: float = 120) -> dict:
    async with asyncio.timeout(within):
        while True:
            body = await (await client.get(f"/api/v1/assets/{asset_id}", headers=ADMIN)).json()
            assert body["status"] == "ready"   # the published renditions play all along
            if body["replacement"]["status"] in ("ready", "failed"):
                return body
            await asyncio.sleep(0.2)


def _stored(settings: Settings, prefix: str) -> list[str]:
    root = settings.data_dir / "objects"
    return sorted(str(p.relative_to(root)) for p in (root / prefix).rglob("*") if p.is_file())


async def test_replaced_source_plays_at_the_same_urls_after_the_switch(settings: Settings, tmp_path: Path,
                                                                       db: asyncpg.Pool) -> None:
    fast = settings.with_(media_generation_grace_seconds=4.0, public_url="https://tv.example")
    url = fast.database_url or ""
    old_clip = make_clip(tmp_path / "old.mp4", size="320x180", seconds=2).read_bytes()
    new_clip = make_clip(tmp_path / "new.mp4", size="640x360", seconds=4).read_bytes()
    async with TestClient(TestServer(create_app(fast, url))) as working:
        asset_id = await upload(working, old_clip, title="First cut")
        first = await wait_for(working, asset_id)
        assert first["status"] == "ready", first["error"]
        vtt = b"WEBVTT\n\n00:00.000 --> 00:01.500\nFirst words\n"
        added = await working.post(f"/api/v1/assets/{asset_id}/captions?language=en&kind=subtitle", data=vtt,
                                   headers={**ADMIN, "Content-Type": "text/vtt"})
        assert added.status == 201, await added.text()
        master_path = f"/media/{asset_id}/hls/master.m3u8"
        async with asyncio.timeout(60):   # the relabel job adds the track to the published master
            while b"TYPE=SUBTITLES" not in await _get(working, master_path):
                await asyncio.sleep(0.2)

    # No worker: the replacement waits in the queue while we look at what viewers get.
    async with TestClient(TestServer(create_app(fast, url, run_worker=False))) as idle:
        old_master = await _get(idle, master_path)
        old_segment, old_bytes = await _first_segment(idle, master_path)
        answer = await _replace(idle, asset_id, new_clip)
        assert answer["replacement"]["status"] == "queued"
        body = await (await idle.get(f"/api/v1/assets/{asset_id}", headers=ADMIN)).json()
        assert (body["status"], body["media_generation"], body["replacement"]["status"]) == ("ready", 0, "queued")
        assert body["playback"] == first["playback"] and body["renditions"] == first["renditions"]
        assert await _get(idle, master_path) == old_master
        assert await _first_segment(idle, master_path) == (old_segment, old_bytes)
        form = FormData()
        form.add_field("file", new_clip, filename="again.mp4", content_type="video/mp4")
        again = await idle.post(f"/api/v1/assets/{asset_id}/source", data=form, headers=ADMIN)
        assert again.status == 409   # one replacement at a time

    async with TestClient(TestServer(create_app(fast, url))) as working:
        done = await _replacement_ends(working, asset_id)
        # straight after the switch, a player still on the old generation keeps getting its segments
        assert await _get(working, old_segment) == old_bytes
        assert done["replacement"] == {"status": "ready", "progress": 100.0, "error": None, "generation": 1}
        assert (done["id"], done["playback"], done["media_generation"]) == (asset_id, first["playback"], 1)
        assert max(r["height"] for r in done["renditions"]) > max(r["height"] for r in first["renditions"])
        assert done["duration"] > first["duration"] + 1
        async with asyncio.timeout(60):   # uploaded captions follow the new source into its generation
            while b'URI="../g1/hls/subs-' not in (new_master := await _get(working, master_path)):
                await asyncio.sleep(0.2)
        assert new_master != old_master and "../g1/hls/" in new_master.decode()
        subtitles = next(ln for ln in new_master.decode().splitlines() if "TYPE=SUBTITLES" in ln)
        subs = URL(master_path).join(URL(subtitles.split('URI="')[1].split('"')[0]))
        await _get(working, str(subs.join(URL(_refs(await _get(working, str(subs)))[0]))))  # a caption segment
        new_segment, _ = await _first_segment(working, master_path)
        assert new_segment.startswith(f"/media/{asset_id}/g1/cmaf/")   # never an old segment's name
        mpd = await _get(working, f"/media/{asset_id}/dash/manifest.mpd")
        assert b"<BaseURL>../g1/cmaf/</BaseURL>" in mpd
        schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
        assert schema.validate(etree.fromstring(mpd)), schema.error_log
        await _get(working, f"/media/{asset_id}/images/poster.jpg")

        purged = await db.fetchval(
            """SELECT count(*) FROM jobs WHERE kind = 'events.published' AND payload->>'type' = 'cdn.purge'
                      AND payload->'data'->>'asset_id' = $1 AND payload->'data'->>'reason' = 'source replaced'""",
            asset_id)
        assert purged == 1

        async with asyncio.timeout(60):   # the grace period (4 s) is over: the old generation goes
            while (await working.get(old_segment)).status != 404:
                await asyncio.sleep(0.2)
        assert all(k.startswith(f"assets/{asset_id}/g1/") for k in _stored(fast, f"assets/{asset_id}"))
        assert len(_stored(fast, f"sources/{asset_id}")) == 1   # the replaced original went with it
        assert await _get(working, master_path) == new_master


async def test_failed_replacement_keeps_the_old_renditions_playing(settings: Settings, tmp_path: Path) -> None:
    url = settings.database_url or ""
    async with TestClient(TestServer(create_app(settings, url))) as client:
        asset_id = await upload(client, make_clip(tmp_path / "a.mp4", size="320x180", seconds=2).read_bytes())
        first = await wait_for(client, asset_id)
        master_path = f"/media/{asset_id}/hls/master.m3u8"
        master, segment = await _get(client, master_path), await _first_segment(client, master_path)
        await _replace(client, asset_id, b"this is no video at all " * 200)
        done = await _replacement_ends(client, asset_id)
        assert done["replacement"]["status"] == "failed" and done["replacement"]["error"]
        assert (done["media_generation"], done["renditions"]) == (0, first["renditions"])
        assert await _get(client, master_path) == master
        assert await _first_segment(client, master_path) == segment
        assert not (settings.data_dir / "objects" / f"assets/{asset_id}/g1").exists()
        assert _stored(settings, f"sources/{asset_id}") == [f"sources/{asset_id}/original"]


def test_pinning_names_the_generation_once_and_keeps_urls_relative() -> None:
    from transcode.generations import pin_master, pin_mpd

    master = ('#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",URI="audio.m3u8"\n'
              '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",URI="../captions/ab12/en.m3u8"\n'
              '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=9,URI="360p-iframes.m3u8"\n#EXT-X-STREAM-INF:BANDWIDTH=9\n360p.m3u8\n')
    pinned = pin_master(master, 3)
    assert 'URI="../g3/hls/audio.m3u8"' in pinned and 'URI="../g3/captions/ab12/en.m3u8"' in pinned
    assert 'URI="../g3/hls/360p-iframes.m3u8"' in pinned and "\n../g3/hls/360p.m3u8\n" in pinned
    assert pin_master(pinned, 3) == pinned and pin_master(master, 0) == master
    mpd = b'<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><BaseURL>../cmaf/</BaseURL><Period/></MPD>'
    once = pin_mpd(mpd, 2)
    assert b"<BaseURL>../g2/cmaf/</BaseURL>" in once and pin_mpd(once, 2) == once
