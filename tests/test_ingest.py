"""Upload -> probe -> ladder -> CMAF (HLS + DASH from one set of segments) -> ready, through the real HTTP app."""

from __future__ import annotations

import io
import math
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest
from lxml import etree

from tests.conftest import ADMIN
from tests.helpers import make_asset
from tests.ingest_tools import make_clip, upload, wait_for
from transcode.images import liveliness

SCHEMA = Path(__file__).resolve().parent / "schemas" / "DASH-MPD.xsd"  # MPEG schema, offline copy
MPD_NS = {"m": "urn:mpeg:dash:schema:mpd:2011"}


def objects_of(settings, asset_id: str) -> list[str]:
    root = settings.data_dir / "objects"
    found = []
    for prefix in (f"assets/{asset_id}", f"sources/{asset_id}"):
        base = root / prefix
        if base.exists():
            found += [str(p.relative_to(root)) for p in base.rglob("*") if p.is_file()]
    return sorted(found)


def read_object(settings, key: str) -> bytes:
    return (settings.data_dir / "objects" / key).read_bytes()


def resolve(base_key: str, ref: str) -> str:
    parts = base_key.split("/")[:-1]
    for piece in ref.split("/"):
        if piece == "..":
            parts.pop()
        elif piece not in (".", ""):
            parts.append(piece)
    return "/".join(parts)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4", seconds=6).read_bytes()


async def test_upload_becomes_hls_and_dash_from_one_set_of_segments(client, settings, clip):
    asset_id = await upload(client, clip, title="Evening news", tags="news,evening")
    body = await wait_for(client, asset_id)
    assert body["status"] == "ready", body["error"]
    assert body["progress"] == 100
    assert body["facts"]["width"] == 640 and body["facts"]["fps"] == 25.0 and body["facts"]["audio_channels"] == 1
    assert body["facts"]["duration"] == pytest.approx(6.0, abs=0.1)
    assert [r["name"] for r in body["renditions"]] == ["360p", "270p"]  # never upscaled
    assert body["tags"] == ["news", "evening"]
    base = f"http://127.0.0.1:{client.port}"   # ONAIR_PUBLIC_URL unset: links name the host that was asked
    assert body["playback"] == {"hls": f"{base}/media/{asset_id}/hls/master.m3u8",
                                "dash": f"{base}/media/{asset_id}/dash/manifest.mpd",
                                "embed": f"{base}/embed/{asset_id}"}
    prefix = f"assets/{asset_id}/"

    # HLS master: every rung, with CODECS, RESOLUTION, BANDWIDTH, AVERAGE-BANDWIDTH, FRAME-RATE
    master = read_object(settings, prefix + "hls/master.m3u8").decode()
    infs = re.findall(r"#EXT-X-STREAM-INF:(.*)\n(.*)", master)
    assert len(infs) == 2
    for attrs, _uri in infs:
        for attr in ("BANDWIDTH=", "AVERAGE-BANDWIDTH=", 'CODECS="avc1.', "mp4a.40.2", "RESOLUTION=",
                     "FRAME-RATE=25.000"):
            assert attr in attrs
    hls_refs: set[str] = set()
    for uri in [u for _, u in infs] + ["audio.m3u8"]:
        key = prefix + "hls/" + uri
        playlist = read_object(settings, key).decode()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in playlist and playlist.rstrip().endswith("#EXT-X-ENDLIST")
        assert "#EXT-X-INDEPENDENT-SEGMENTS" in playlist
        for ref in re.findall(r'URI="([^"]+)"', playlist) + [ln for ln in playlist.splitlines()
                                                             if ln and not ln.startswith("#")]:
            hls_refs.add(resolve(key, ref))

    # DASH: validates against MPEG's schema, DVB-DASH profile, small, no DOCTYPE
    mpd_bytes = read_object(settings, prefix + "dash/manifest.mpd")
    assert len(mpd_bytes) < 100 * 1024 and b"<!DOCTYPE" not in mpd_bytes
    mpd = etree.fromstring(mpd_bytes)
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    assert schema.validate(mpd), schema.error_log
    assert "urn:dvb:dash:profile:dvb-dash:2014" in mpd.get("profiles").split(",")
    assert mpd.get("minBufferTime")
    base_url = mpd.find("m:BaseURL", MPD_NS).text
    duration = 6.0
    dash_refs: set[str] = set()
    media_sets = [a for a in mpd.iterfind(".//m:AdaptationSet", MPD_NS) if a.get("contentType") != "image"]
    for rep in (r for a in media_sets for r in a.iterfind("m:Representation", MPD_NS)):
        tmpl = rep.find("m:SegmentTemplate", MPD_NS)
        count = math.ceil(duration / (int(tmpl.get("duration")) / int(tmpl.get("timescale"))) - 1e-6)
        rid = rep.get("id")
        dash_refs.add(resolve(prefix + "dash/manifest.mpd",
                              base_url + tmpl.get("initialization").replace("$RepresentationID$", rid)))
        for n in range(int(tmpl.get("startNumber")), int(tmpl.get("startNumber")) + count):
            name = tmpl.get("media").replace("$RepresentationID$", rid).replace("$Number%05d$", f"{n:05d}")
            dash_refs.add(resolve(prefix + "dash/manifest.mpd", base_url + name))
    segment_objects = {k for k in objects_of(settings, asset_id) if k.startswith(prefix + "cmaf/")}
    # (the storyboard sprite DASH lists as thumbnails is an image, not a segment)
    assert hls_refs == dash_refs == segment_objects  # one set of segments, every one referenced, none missing

    # Keyframes of every rung at the same instants, one per 3.84 s segment
    keyframes = []
    for r in body["renditions"]:
        init = read_object(settings, prefix + r["init"])
        rid = r["init"].split("-")[-1].split(".")[0]
        segs = sorted(k for k in segment_objects if f"/seg-{rid}-" in k)
        data = init + b"".join(read_object(settings, k) for k in segs)
        with av.open(io.BytesIO(data)) as c:
            stream = c.streams.video[0]
            keyframes.append([round(float(p.pts * stream.time_base), 3) for p in c.demux(stream)
                              if p.is_keyframe and p.pts is not None])
    assert keyframes[0] == keyframes[1]
    assert keyframes[0][:2] == [pytest.approx(keyframes[0][0]), pytest.approx(keyframes[0][0] + 3.84, abs=0.01)]

    # Images: a poster that is not black, thumbnails, a storyboard with its WebVTT track
    images = read_object(settings, prefix + "images/poster.jpg")
    assert images[:2] == b"\xff\xd8"
    assert liveliness(settings.data_dir / "objects" / prefix / "images/poster.jpg") > 20  # not a black frame
    vtt = read_object(settings, prefix + "images/storyboard.vtt").decode()
    assert vtt.startswith("WEBVTT") and "storyboard.jpg#xywh=" in vtt
    assert {t["width"] for t in body["images"]["thumbnails"]} == {320, 640}

    # the original is kept outside the public media prefix; delete removes every object and the row
    assert f"sources/{asset_id}/original" in objects_of(settings, asset_id)
    resp = await client.delete(f"/api/v1/assets/{asset_id}", headers=ADMIN)
    assert resp.status == 204
    assert objects_of(settings, asset_id) == []
    assert (await client.get(f"/api/v1/assets/{asset_id}", headers=ADMIN)).status == 404


async def test_list_filters_and_pages(client, db):
    for i, (status, tags) in enumerate([("ready", ["a"]), ("failed", ["b"]), ("ready", ["a", "b"])]):
        await make_asset(db, f"asset{i}", title=f"T{i}", status=status, tags=tags,
                         created=datetime.now(UTC) - timedelta(seconds=10 - i))
    resp = await client.get("/api/v1/assets?status=ready", headers=ADMIN)
    assert [a["id"] for a in (await resp.json())["items"]] == ["asset2", "asset0"]
    resp = await client.get("/api/v1/assets?tag=b&limit=1", headers=ADMIN)
    page = await resp.json()
    assert [a["id"] for a in page["items"]] == ["asset2"]
    resp = await client.get(f"/api/v1/assets?tag=b&limit=1&cursor={page['next']}", headers=ADMIN)
    assert [a["id"] for a in (await resp.json())["items"]] == ["asset1"]
    assert (await client.get("/api/v1/assets")).status == 401
    resp = await client.get("/api/v1/assets?limit=0", headers=ADMIN)
    assert resp.status == 400 and resp.content_type == "application/problem+json"


async def test_patch_metadata_visibility_and_rights(client, db):
    await make_asset(db, "patchme", title="Old")
    resp = await client.patch("/api/v1/assets/patchme", headers=ADMIN, json={
        "title": "New", "visibility": "private", "available_from": "2030-01-01T00:00:00Z",
        "available_until": "2030-02-01T00:00:00+00:00", "geo_allow": ["gb", "IE"], "credit": "Newsroom",
        "rating": "nonadult", "show": "evening-news", "embed_origins": ["https://example.org"]})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["title"] == "New" and body["visibility"] == "private" and body["show"] == "evening-news"
    assert body["rights"]["geo_allow"] == ["GB", "IE"]
    assert body["rights"]["available_from"].startswith("2030-01-01")
    # private assets do not exist for the public
    assert (await client.get("/api/v1/assets/patchme")).status == 404
    for bad in ({"geo_deny": ["GBR"]}, {"available_from": "2030-03-01T00:00:00Z"}, {"visibility": "secret"},
                {"available_until": "2031-01-01T00:00:00"}, {"nope": 1}):
        resp = await client.patch("/api/v1/assets/patchme", headers=ADMIN, json=bad)
        assert resp.status == 400, bad
        assert resp.content_type == "application/problem+json"
    assert (await client.patch("/api/v1/assets/patchme", json={"title": "x"})).status == 401
    assert (await client.patch("/api/v1/assets/missing", headers=ADMIN, json={"title": "x"})).status == 404


@pytest.fixture
async def s3_client(s3_settings):
    from aiohttp.test_utils import TestClient, TestServer

    from onair.app import create_app

    app = create_app(s3_settings, s3_settings.database_url or "")
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_s3_storage_end_to_end(s3_client, s3_settings, tmp_path):
    from onair.core.storage import STORE

    clip = make_clip(tmp_path / "s3.mp4", size="320x180", seconds=2)
    asset_id = await upload(s3_client, clip.read_bytes())
    body = await wait_for(s3_client, asset_id)
    assert body["status"] == "ready", body["error"]
    store = s3_client.app[STORE]
    keys = await store.list(f"assets/{asset_id}/")
    assert f"assets/{asset_id}/hls/master.m3u8" in keys and f"assets/{asset_id}/dash/manifest.mpd" in keys
    assert any(k.endswith(".m4s") for k in keys)
    assert (await s3_client.delete(f"/api/v1/assets/{asset_id}", headers=ADMIN)).status == 204
    assert await store.list(f"assets/{asset_id}/") == [] and await store.list(f"sources/{asset_id}/") == []
