"""Editors correct an asset's audio tracks through the API: upload a two-language clip, PATCH the second
track's language and role, and the published HLS master and DASH MPD follow (the transcode.relabel job)."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from lxml import etree

from streaming.catalog.audio import AudioTrackEdit, corrected
from tests.conftest import ADMIN
from tests.helpers import make_asset
from tests.ingest_tools import upload, wait_for
from tests.media_checks import MPD_NS, generate
from tests.test_media_audio_tracks import media_tags
from transcode.ffmpeg import ffmpeg_binary


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("clips") / "two.mp4"
    return generate(path, size="320x180", rate="25", video_s=2.0, audio_s=2.0, languages=("eng", "")).read_bytes()


def _object(settings, asset_id: str, key: str) -> bytes:
    return (settings.data_dir / "objects" / f"assets/{asset_id}/{key}").read_bytes()


def _audio_sets(mpd: bytes) -> list[tuple[str | None, str | None]]:
    root = etree.fromstring(mpd)
    return [(a.get("lang"), a.find("m:Role", MPD_NS).get("value"))
            for a in root.iterfind(".//m:AdaptationSet[@contentType='audio']", MPD_NS)]


async def test_editor_corrects_language_and_role_and_manifests_follow(client, settings, clip):
    asset_id = await upload(client, clip, title="Two tracks")
    body = await wait_for(client, asset_id)
    assert body["status"] == "ready", body["error"]
    assert [(t["language"], t["name"], t["role"]) for t in body["audio_tracks"]] == [
        ("en", "English", "main"), ("und", "Audio", "alternate")]
    assert _audio_sets(_object(settings, asset_id, "dash/manifest.mpd")) == [("en", "main"), ("und", "alternate")]

    resp = await client.patch(f"/api/v1/assets/{asset_id}", headers=ADMIN, json={
        "audio_tracks": [{"index": 1, "language": "ger", "role": "main", "name": "Deutsch"},
                         {"index": 0, "role": "description", "name": "English (audio description)"}]})
    assert resp.status == 200, await resp.text()
    got = (await resp.json())["audio_tracks"]
    assert [(t["language"], t["name"], t["role"]) for t in got] == [
        ("en", "English (audio description)", "description"), ("de", "Deutsch", "main")]

    def hls_labels() -> list[tuple]:
        tags = media_tags(_object(settings, asset_id, "hls/master.m3u8").decode())
        return [(t["LANGUAGE"], t["NAME"], t["DEFAULT"], t.get("CHARACTERISTICS"), t["URI"]) for t in tags]

    want_hls = [("en", "English (audio description)", "NO", "public.accessibility.describes-video", "audio.m3u8"),
                ("de", "Deutsch", "YES", None, "audio-2.m3u8")]  # the same files, new labels
    want_dash = [("en", "description"), ("de", "main")]
    async with asyncio.timeout(60):  # the relabel job rewrites both manifests (the MPD first)
        while (hls_labels(), _audio_sets(_object(settings, asset_id, "dash/manifest.mpd"))) != (want_hls, want_dash):
            await asyncio.sleep(0.2)


@pytest.mark.parametrize(("edit", "field"), [
    ({"index": 5, "language": "fr"}, "audio_tracks[0].index"),
    ({"index": 0, "language": "not a language"}, "language"),
    ({"index": 0, "role": "alternate"}, "exactly one track"),
    ({"index": 0, "role": "director"}, "role"),
])
async def test_bad_corrections_are_refused_by_name(client, db, edit, field):
    outputs = {"audio_tracks": [{"rep_id": "5", "language": "en", "name": "English", "role": "main",
                                 "channels": 2, "playlist": "hls/audio.m3u8"}]}
    asset_id = await make_asset(db, status="ready", outputs=outputs)
    resp = await client.patch(f"/api/v1/assets/{asset_id}", headers=ADMIN, json={"audio_tracks": [edit]})
    assert resp.status == 400, await resp.text()
    assert resp.content_type == "application/problem+json"
    assert field in await resp.text()


def _calibrated(path) -> bytes:
    """1 kHz tones of known loudness (ITU-R BS.1770: a mono 1 kHz sine at -20 dBFS peak measures -23 LUFS):
    track 1 at -20 dBFS, track 2 at -26 dBFS (so -29 LUFS)."""
    argv = [ffmpeg_binary(None), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=160x90:r=25:d=3",
            "-f", "lavfi", "-i", "aevalsrc=0.1*sin(2*PI*1000*t):s=48000:d=3",
            "-f", "lavfi", "-i", "aevalsrc=0.05012*sin(2*PI*1000*t):s=48000:d=3",
            "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast",
            "-c:a", "aac", "-b:a", "192k", str(path)]
    subprocess.run(argv, check=True, timeout=60)
    return path.read_bytes()


async def test_loudness_of_each_track_is_measured_and_reported(client, tmp_path):
    asset_id = await upload(client, _calibrated(tmp_path / "tones.mp4"), title="Tones")
    body = await wait_for(client, asset_id)
    assert body["status"] == "ready", body["error"]
    got = [t["loudness"] for t in body["audio_tracks"]]
    assert got[0]["integrated_lufs"] == pytest.approx(-23.0, abs=0.5)
    assert got[1]["integrated_lufs"] == pytest.approx(-29.0, abs=0.5)
    assert got[0]["true_peak_dbtp"] == pytest.approx(-20.0, abs=1.0)   # AAC coding overshoots a little
    assert got[0]["range_lu"] == pytest.approx(0.0, abs=0.5)   # a steady tone has no loudness range


def test_a_correction_reaches_the_5_1_rendition_of_the_same_track():
    def track(i: int, lang: str, name: str, role: str, group: str) -> dict:
        return {"language": lang, "name": name, "role": role, "group": group, "source_index": i}

    current = [track(0, "en", "English", "main", "aac"), track(1, "und", "Audio", "alternate", "aac"),
               track(1, "und", "Audio 5.1", "alternate", "ec3")]
    got = corrected(current, [AudioTrackEdit(index=1, language="es", role="main", name="Español")])
    assert [(t["language"], t["name"], t["role"]) for t in got] == [
        ("en", "English", "alternate"), ("es", "Español", "main"), ("es", "Audio 5.1", "main")]
