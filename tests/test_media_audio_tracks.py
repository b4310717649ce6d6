"""Every audio track of the source survives, with its language: probe, plan, encode and both manifests, checked
on a generated clip with an English (440 Hz) and a German (880 Hz) track; each rendition's segments are decoded
and must carry its own tone, so a manifest that labels the wrong track fails."""

from __future__ import annotations

import io
import re
from array import array
from itertools import pairwise
from pathlib import Path

import av
import pytest
from lxml import etree

from tests.media_checks import MPD_NS, generate, media_playlist, template_files, transcode_and_package
from transcode.ladder import audio_renditions, plan
from transcode.probe import AudioTrack, language_tag, probe

SCHEMA = Path(__file__).resolve().parent / "schemas" / "DASH-MPD.xsd"
ROLE_SCHEME = "urn:mpeg:dash:role:2011"


@pytest.fixture(scope="module")
def two_languages(tmp_path_factory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("two_languages")
    source = generate(work / "src.mp4", size="320x180", rate="25", video_s=4.0, audio_s=4.0,
                      languages=("eng", "ger"))
    return source, transcode_and_package(source, work)


def dominant_hz(init: bytes, segments: list[bytes]) -> float:
    """A pure tone's frequency from its rising zero crossings (the decoder gives planar float32)."""
    pcm = array("f")
    with av.open(io.BytesIO(init + b"".join(segments)), format="mp4") as c:
        for frame in c.decode(audio=0):
            assert frame.format.name == "fltp"
            pcm.extend(array("f", bytes(frame.planes[0]))[:frame.samples])
    rising = sum(1 for a, b in pairwise(pcm) if a < 0 <= b)
    return rising * 48000 / len(pcm)


def media_tags(master: str) -> list[dict[str, str]]:
    return [{k: v.strip('"') for k, v in re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1])}
            for line in master.splitlines() if line.startswith("#EXT-X-MEDIA:")]


def test_language_tags_from_the_container():
    assert [language_tag(v) for v in ("eng", "ger", "deu", "fra", "en", None, "", "xx1", "und")] == \
        ["en", "de", "de", "fr", "en", "und", "und", "und", "und"]


def test_plan_keeps_every_track_first_main_names_unique_surround_added():
    tracks = (AudioTrack(0, "en", 2, "aac"), AudioTrack(1, "en", 2, "aac"), AudioTrack(2, "und", 6, "ac3"),
              AudioTrack(3, "fr", 2, "aac", "Commentaire"))
    got = audio_renditions(tracks, 2)
    assert [(r.source_index, r.language, r.name, r.role, r.codec, r.channels) for r in got] == [
        (0, "en", "English", "main", "aac", 2), (1, "en", "English 2", "alternate", "aac", 2),
        (2, "und", "Audio", "alternate", "aac", 2), (3, "fr", "Commentaire", "alternate", "aac", 2),
        (2, "und", "Audio 5.1", "alternate", "eac3", 6)]   # the 5.1 source also keeps its surround


def test_probe_and_plan_see_both_languages(two_languages):
    facts = probe(two_languages[0])
    assert [(t.index, t.language) for t in facts.audio_tracks] == [(0, "en"), (1, "de")]
    assert [(r.language, r.role) for r in plan(facts).audio_tracks] == [("en", "main"), ("de", "alternate")]


def test_hls_has_one_audio_rendition_per_language_with_its_own_sound(two_languages):
    site = two_languages[1]
    master = (site / "hls/master.m3u8").read_text()
    tags = media_tags(master)
    assert [(t["TYPE"], t["LANGUAGE"], t["NAME"], t["DEFAULT"], t["AUTOSELECT"], t["CHANNELS"]) for t in tags] == [
        ("AUDIO", "en", "English", "YES", "YES", "2"), ("AUDIO", "de", "Deutsch", "NO", "YES", "2")]
    assert len({t["GROUP-ID"] for t in tags}) == 1 and 'AUDIO="aac"' in master
    for tag, hz in zip(tags, (440, 880), strict=True):
        pl = media_playlist(site / "hls" / tag["URI"])
        init = (site / "hls" / pl.init).read_bytes()
        got = dominant_hz(init, [(site / "hls" / name).read_bytes() for name, _ in pl.segments])
        assert abs(got - hz) < 5, (tag["LANGUAGE"], got)


def test_dash_has_one_adaptation_set_per_language_with_lang_and_role(two_languages):
    site = two_languages[1]
    mpd = etree.fromstring((site / "dash/manifest.mpd").read_bytes())
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    assert schema.validate(mpd), schema.error_log
    sets = mpd.findall(".//m:AdaptationSet[@contentType='audio']", MPD_NS)
    got = [(a.get("lang"), [(r.get("schemeIdUri"), r.get("value")) for r in a.iterfind("m:Role", MPD_NS)])
           for a in sets]
    assert got == [("en", [(ROLE_SCHEME, "main")]), ("de", [(ROLE_SCHEME, "alternate")])]
    files = template_files(mpd)
    for aset, hz in zip(sets, (440, 880), strict=True):
        reps = aset.findall("m:Representation", MPD_NS)
        assert len(reps) == 1
        names = files[reps[0].get("id")]
        got_hz = dominant_hz((site / "cmaf" / names[0]).read_bytes(),
                             [(site / "cmaf" / n).read_bytes() for n in names[1:]])
        assert abs(got_hz - hz) < 5, (aset.get("lang"), got_hz)


def test_untagged_audio_is_und(tmp_path):
    source = generate(tmp_path / "src.mp4", size="160x90", rate="25", video_s=1.0, audio_s=1.0)
    facts = probe(source)
    assert [t.language for t in facts.audio_tracks] == ["und"]
    assert [(r.language, r.name, r.role) for r in plan(facts).audio_tracks] == [("und", "Audio", "main")]


@pytest.fixture(scope="module")
def surround(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("surround")
    source = generate(work / "src.mp4", size="320x180", rate="25", video_s=3.0, audio_s=3.0, languages=("fra",),
                      extra=["-af", "pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0"])
    return transcode_and_package(source, work)


def test_surround_keeps_stereo_aac_and_adds_e_ac_3_5_1_in_both_manifests(surround):
    master = (surround / "hls/master.m3u8").read_text()
    tags = media_tags(master)
    assert [(t["GROUP-ID"], t["LANGUAGE"], t["NAME"], t["CHANNELS"], t["DEFAULT"]) for t in tags] == [
        ("aac", "fr", "Français", "2", "YES"), ("ec3", "fr", "Français 5.1", "6", "YES")]
    variants = [line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF")]
    assert len(variants) == 2   # the one rung, once per audio group: players pick what they decode
    assert 'CODECS="avc1.4d401e,mp4a.40.2"' in variants[0] and 'AUDIO="aac"' in variants[0]
    assert 'CODECS="avc1.4d401e,ec-3"' in variants[1] and 'AUDIO="ec3"' in variants[1]
    mpd = etree.fromstring((surround / "dash/manifest.mpd").read_bytes())
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    assert schema.validate(mpd), schema.error_log
    sets = mpd.findall(".//m:AdaptationSet[@contentType='audio']", MPD_NS)
    got = []
    for aset in sets:
        rep = aset.find("m:Representation", MPD_NS)
        acc = rep.find("m:AudioChannelConfiguration", MPD_NS)
        got.append((aset.get("lang"), aset.find("m:Role", MPD_NS).get("value"), rep.get("codecs"),
                    acc.get("schemeIdUri"), acc.get("value")))
    assert got == [("fr", "main", "mp4a.40.2", "urn:mpeg:dash:23003:3:audio_channel_configuration:2011", "2"),
                   ("fr", "main", "ec-3", "tag:dolby.com,2014:dash:audio_channel_configuration:2011", "F801")]
    files = template_files(mpd)[sets[1].find("m:Representation", MPD_NS).get("id")]
    data = b"".join((surround / "cmaf" / n).read_bytes() for n in files)
    with av.open(io.BytesIO(data), format="mp4") as c:
        stream = c.streams.audio[0]
        assert (stream.codec_context.name, stream.codec_context.channels) == ("eac3", 6)
        assert sum(f.samples for f in c.decode(stream)) / 48000 == pytest.approx(3.0, abs=0.05)
