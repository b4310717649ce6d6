"""Captions and subtitles: reading and checking (ttconv), the files delivered (segmented WebVTT, EBU-TT-D valid
against the EBU's schema, fMP4 stpp), and the upload API end to end with both manifests."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import ADMIN
from tests.helpers import make_asset
from tests.ingest_tools import upload, wait_for
from tests.media_checks import MPD_NS, generate, media_playlist
from tests.test_media_audio_tracks import media_tags
from transcode import caption_tracks, fmp4
from transcode.captions import CaptionError, read

SCHEMAS = Path(__file__).resolve().parent / "schemas"
EBU_TT_D = etree.XMLSchema(etree.parse(str(SCHEMAS / "ebu-tt-d" / "ebutt_d.xsd")))
DASH = etree.XMLSchema(etree.parse(str(SCHEMAS / "DASH-MPD.xsd")))

VTT = b"""WEBVTT

00:00:00.500 --> 00:00:01.500
Guten <i>Abend</i>
zweite Zeile

00:00:04.000 --> 00:00:04.800
Tsch\xc3\xbcss
"""
SRT = b"""1
00:00:00,200 --> 00:00:01,000
[door slams]

2
00:00:01,500 --> 00:00:03,000
Good evening.
"""
TTML = b"""<?xml version="1.0" encoding="UTF-8"?>
<tt xmlns="http://www.w3.org/ns/ttml" xml:lang="fr"><body><div>
<p begin="00:00:00.500" end="00:00:01.000">Bonsoir</p>
<p begin="2s" end="3s">Au revoir<br/>et merci</p>
</div></body></tt>
"""


def problems(data: bytes, fmt: str, duration: float = 5.0) -> list[tuple[int | None, str]]:
    with pytest.raises(CaptionError) as info:
        read(data, fmt, duration)
    return [(p.line, p.message) for p in info.value.problems]


def test_each_format_reads_to_the_same_kind_of_cues():
    assert [(c.begin, c.end, c.lines, c.line) for c in read(VTT, "vtt", 5)] == [
        (0.5, 1.5, ("Guten Abend", "zweite Zeile"), 3), (4.0, 4.8, ("Tschüss",), 7)]
    assert [(c.begin, c.end, c.lines, c.line) for c in read(SRT, "srt", 5)] == [
        (0.2, 1.0, ("[door slams]",), 2), (1.5, 3.0, ("Good evening.",), 6)]
    assert [(c.begin, c.end, c.lines, c.line) for c in read(TTML, "ttml", 5)] == [
        (0.5, 1.0, ("Bonsoir",), 3), (2.0, 3.0, ("Au revoir", "et merci"), 4)]


def test_bad_files_name_their_lines():
    overlapping = SRT.replace(b"00:00:01,500 --> 00:00:03,000", b"00:00:00,800 --> 00:00:03,000")
    [(line, message)] = problems(overlapping, "srt")
    assert line == 6 and "line 2" in message and "overlap" in message
    [(line, message)] = problems(VTT.replace(b"00:00:04.800", b"00:00:09.000"), "vtt")
    assert line == 7 and "after the video" in message
    [(line, message)] = problems(VTT.replace(b"\xc3\xbc", b"\xfc"), "vtt")   # Latin-1 instead of UTF-8
    assert line == 8 and "UTF-8" in message
    [(line, message)] = problems(VTT.replace(b"00:00:04.000", b"00:00:0x.000"), "vtt")
    assert line == 7 and "timestamp" in message.lower()
    [(line, message)] = problems(SRT.replace(b"00:00:00,200 --> 00:00:01,000", b"zero to one"), "srt")
    assert line == 2 and "timecode" in message.lower()
    [(line, message)] = problems(TTML.replace(b"</div>", b""), "ttml")
    assert line == 5 and "XML" in message   # </body> where </div> belongs
    assert problems(b"  \n", "vtt") == [(None, "the file is empty")]


def test_ebu_tt_d_validates_against_the_ebu_schema_whole_and_in_every_stpp_segment():
    cues = read(VTT, "vtt", 5)
    doc = caption_tracks.ebu_tt_d(cues, "de")
    assert EBU_TT_D.validate(etree.fromstring(doc)), EBU_TT_D.error_log
    objects, entry = caption_tracks.build(cues, "de", "subtitle", 3.84, 5.0)
    base = entry["init"].rsplit("/", 1)[0]
    init = fmp4.read_init(objects[entry["init"]])
    assert (init.handler, init.sample_entry, init.timescale) == ("subt", "stpp", 1_000_000)
    segments = sorted(k for k in objects if k.startswith(base + "/seg-") and k.endswith(".m4s"))
    assert len(segments) == 3   # two on the 3.84 s grid, one spare for a template that rounds up
    texts = []
    for n, key in enumerate(segments):
        [sample] = fmp4.read_samples(objects[key])
        assert (sample.decode_time, sample.duration) == (n * 3_840_000, 3_840_000)
        tree = etree.fromstring(sample.payload)
        assert EBU_TT_D.validate(tree), (key, EBU_TT_D.error_log)
        texts.append([(p.get("begin"), p.get("end")) for p in tree.iter("{http://www.w3.org/ns/ttml}p")])
    assert texts == [[("00:00:00.500", "00:00:01.500")], [("00:00:04.000", "00:00:04.800")], []]
    playlist = objects[entry["playlist"]].decode()
    assert re.findall(r"#EXTINF:([\d.]+),", playlist) == ["3.840000", "1.160000"]
    assert objects[f"{base}/seg-00002.vtt"].decode().startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    return generate(path, size="320x180", rate="25", video_s=5.0, audio_s=5.0).read_bytes()


def _object(settings, asset_id: str, key: str) -> bytes:
    return (settings.data_dir / "objects" / f"assets/{asset_id}/{key}").read_bytes()


def _stored(settings, asset_id: str) -> set[str]:
    root = settings.data_dir / "objects" / f"assets/{asset_id}"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


async def _post(client, asset_id: str, data: bytes, query: str, ctype: str):
    return await client.post(f"/api/v1/assets/{asset_id}/captions?{query}", data=data,
                             headers={**ADMIN, "Content-Type": ctype})


async def test_upload_publishes_subtitles_in_hls_and_dash(client, settings, clip):
    asset_id = await upload(client, clip, title="Subtitled")
    assert (await wait_for(client, asset_id))["status"] == "ready"
    before = _stored(settings, asset_id)
    bad = await _post(client, asset_id, VTT.replace(b"00:00:04.800", b"00:00:09.000"), "language=de", "text/vtt")
    assert bad.status == 400 and bad.content_type == "application/problem+json"
    assert (await bad.json())["errors"] == [{"line": 7, "message": "the cue ends at 9.000 s, after the video "
                                                                   "(5.000 s)"}]
    assert _stored(settings, asset_id) == before   # nothing of a refused file is stored

    # two languages at once: each upload adds its track under the asset's row lock, neither is lost
    de, en = await asyncio.gather(_post(client, asset_id, VTT, "language=ger", "text/vtt"),
                                  _post(client, asset_id, SRT, "language=en&kind=caption", "application/x-subrip"))
    assert (de.status, en.status) == (201, 201), (await de.text(), await en.text())
    assert (await de.json())["language"] == "de"

    def published() -> tuple[list, list]:
        tags = [t for t in media_tags(_object(settings, asset_id, "hls/master.m3u8").decode())
                if t["TYPE"] == "SUBTITLES"]
        mpd = etree.fromstring(_object(settings, asset_id, "dash/manifest.mpd"))
        sets = mpd.findall(".//m:AdaptationSet[@contentType='text']", MPD_NS)
        return tags, sets

    async with asyncio.timeout(60):
        while [len(x) for x in published()] != [2, 2]:
            await asyncio.sleep(0.2)
    tags, sets = published()
    tags.sort(key=lambda t: t["LANGUAGE"])
    sets.sort(key=lambda s: s.get("lang"))
    assert [(t["LANGUAGE"], t["NAME"], t["DEFAULT"], "transcribes-spoken-dialog" in t.get("CHARACTERISTICS", ""))
            for t in tags] == [("de", "Deutsch", "NO", False), ("en", "English (CC)", "NO", True)]
    master = _object(settings, asset_id, "hls/master.m3u8").decode()
    assert all('SUBTITLES="subs"' in line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF"))
    for tag in tags:  # every segment a subtitle playlist names is stored
        pl = media_playlist(settings.data_dir / "objects" / f"assets/{asset_id}/hls/{tag['URI']}")
        for name, _ in pl.segments:
            assert _object(settings, asset_id, "hls/" + name).startswith(b"WEBVTT")

    mpd = etree.fromstring(_object(settings, asset_id, "dash/manifest.mpd"))
    assert DASH.validate(mpd), DASH.error_log
    assert [(s.get("lang"), s.find("m:Role", MPD_NS).get("value"),
             s.find("m:Representation", MPD_NS).get("codecs")) for s in sets] == [
        ("de", "subtitle", "stpp.ttml.etd1"), ("en", "caption", "stpp.ttml.etd1")]
    tpl = sets[0].find("m:Representation/m:SegmentTemplate", MPD_NS)
    init_key = tpl.get("initialization").removeprefix("../")
    assert fmp4.read_init(_object(settings, asset_id, init_key)).sample_entry == "stpp"
    asset = await (await client.get(f"/api/v1/assets/{asset_id}", headers=ADMIN)).json()
    assert sorted((c["language"], c["kind"]) for c in asset["captions"]) == [("de", "subtitle"), ("en", "caption")]
    vtt = await client.get(asset["captions"][0]["url"].split(str(client.port), 1)[1])
    assert vtt.status == 200 and vtt.headers["Content-Type"].startswith("text/vtt")


@pytest.mark.parametrize(("query", "field"), [("language=xx-!!", "language"), ("language=de&kind=karaoke", "kind"),
                                              ("kind=subtitle", "language")])
async def test_bad_parameters_are_refused_by_name(client, db, query, field):
    asset_id = await make_asset(db, status="ready", outputs={"segment_duration": 3.84})
    resp = await _post(client, asset_id, VTT, query, "text/vtt")
    assert resp.status == 400 and field in await resp.text()


async def test_captions_wait_for_a_ready_asset(client, db):
    asset_id = await make_asset(db, status="queued")
    assert (await _post(client, asset_id, VTT, "language=de", "text/vtt")).status == 409
