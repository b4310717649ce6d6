"""Conformance of what packaging produces, checked on the produced bytes: MPD (schema, roles, durations,
bandwidths, switching claims), HLS (same files, RFC 8216 peak), segment boxes (CMAF brands, sidx SAP type) and
audio/video boundary alignment measured with PyAV's demuxer.

Clips: 25 fps with audio 40 ms longer than video (the tiny-last-audio-segment case); 29.97 fps over three
segments (alignment must not accumulate)."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import av
import pytest
from lxml import etree

from tests.media_checks import (
    MPD_NS,
    boxes,
    generate,
    master_variants,
    media_playlist,
    presentation,
    template_files,
    transcode_and_package,
    xs_seconds,
)

SCHEMA = Path(__file__).resolve().parent / "schemas" / "DASH-MPD.xsd"
AAC_FRAME = 1024 / 48000

CLIPS = {
    "25fps": dict(size="640x360", rate="25", video_s=7.68, audio_s=7.72),
    "29.97fps": dict(size="320x180", rate="30000/1001", video_s=10.5, audio_s=10.5),
}


@pytest.fixture(scope="module", params=sorted(CLIPS))
def site(request, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp(request.param.replace(".", "_"))
    return transcode_and_package(generate(work / "src.mp4", **CLIPS[request.param]), work)


def mpd_of(site: Path) -> etree._Element:
    return etree.fromstring((site / "dash/manifest.mpd").read_bytes())


def hls_tracks(site: Path) -> dict[str, list[tuple[str, float]]]:
    """Segment file name -> EXTINF per media playlist, plus the init."""
    out = {}
    for path in sorted((site / "hls").glob("*.m3u8")):
        if path.name != "master.m3u8":
            pl = media_playlist(path)
            out[path.name] = [(pl.init.rsplit("/", 1)[1], 0.0)] + [(n.rsplit("/", 1)[1], d) for n, d in pl.segments]
    return out


def segment_spans(site: Path, files: list[str]) -> list[tuple[float, float]]:
    init = (site / "cmaf" / files[0]).read_bytes()
    return [presentation(init, (site / "cmaf" / name).read_bytes()) for name in files[1:]]


def test_mpd_is_valid_and_claims_no_false_bitstream_switching(site):
    mpd = mpd_of(site)
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    assert schema.validate(mpd), schema.error_log
    for aset in mpd.iterfind(".//m:AdaptationSet", MPD_NS):
        if aset.get("bitstreamSwitching") != "true":
            continue
        # the claim needs one init usable for all: in-band parameter sets (avc3) and identical sample entries
        inits = {(site / "cmaf" / f"init-{r.get('id')}.m4s").read_bytes()
                 for r in aset.iterfind("m:Representation", MPD_NS)}
        entries = set()
        for init in inits:
            stsd = init.find(b"stsd")
            entries.add(init[stsd + 16:stsd + 20])
        assert entries == {b"avc3"}, f"bitstreamSwitching claimed with sample entries {entries}"


def test_every_adaptation_set_has_a_dash_role_and_audio_is_main(site):
    mpd = mpd_of(site)
    for aset in mpd.iterfind(".//m:AdaptationSet", MPD_NS):
        roles = [(r.get("schemeIdUri"), r.get("value")) for r in aset.iterfind("m:Role", MPD_NS)]
        assert len(roles) == 1 and roles[0][0] == "urn:mpeg:dash:role:2011", roles
        if aset.get("contentType") == "audio":
            assert roles[0][1] == "main"


def test_durations_come_from_the_real_segments(site):
    mpd = mpd_of(site)
    declared_max = xs_seconds(mpd.get("maxSegmentDuration"))
    declared_total = xs_seconds(mpd.get("mediaPresentationDuration"))
    ends, longest = [], 0.0
    for files in template_files(mpd).values():
        spans = segment_spans(site, files)
        longest = max(longest, *(b - a for a, b in spans))
        ends.append(spans[-1][1])
    assert declared_max >= longest - 1e-6
    assert declared_max - longest < 0.002
    # the presentation lasts as long as its longest track (no 0.1 s truncation), within one AAC frame
    assert abs(declared_total - max(ends)) <= AAC_FRAME + 1e-6, (declared_total, ends)


def test_hls_and_dash_reference_exactly_the_same_files(site):
    from_mpd = {name for files in template_files(mpd_of(site)).values() for name in files}
    from_hls = {name for segs in hls_tracks(site).values() for name, _ in segs}
    assert from_mpd == from_hls
    assert from_mpd == {p.name for p in (site / "cmaf").iterdir()}


def test_bandwidths_are_not_below_what_is_measured(site):
    tracks = hls_tracks(site)
    audio_name = "audio.m3u8" if "audio.m3u8" in tracks else None

    def peak_and_avg(segs: list[tuple[str, float]]) -> tuple[float, float]:
        sizes = [((site / "cmaf" / n).stat().st_size * 8, d) for n, d in segs[1:]]
        return max(b / d for b, d in sizes), sum(b for b, _ in sizes) / sum(d for _, d in sizes)

    audio_peak, audio_avg = peak_and_avg(tracks[audio_name]) if audio_name else (0, 0)
    for attrs, uri in master_variants(site / "hls/master.m3u8"):
        peak, avg = peak_and_avg(tracks[uri])
        assert int(attrs["BANDWIDTH"]) >= math.ceil(peak + audio_peak) - 1  # sum of ceilings >= ceiling of sum
        assert int(attrs["AVERAGE-BANDWIDTH"]) >= math.ceil(avg + audio_avg) - 1
        for name, dur in tracks[uri][1:]:
            assert round(dur) <= media_playlist(site / "hls" / uri).target, name
    mpd = mpd_of(site)
    files = template_files(mpd)
    for rep in mpd.iterfind(".//m:Representation", MPD_NS):
        sizes = sum((site / "cmaf" / n).stat().st_size * 8 for n in files[rep.get("id")][1:])
        spans = segment_spans(site, files[rep.get("id")])
        assert int(rep.get("bandwidth")) >= sizes / (spans[-1][1] - spans[0][0]) - 1


def test_audio_segments_start_where_video_segments_start(site, request):
    mpd = mpd_of(site)
    by_type = {}
    for aset in mpd.iterfind(".//m:AdaptationSet", MPD_NS):
        rid = aset.find("m:Representation", MPD_NS).get("id")
        by_type[aset.get("contentType")] = template_files(mpd)[rid]
    video, audio = (segment_spans(site, by_type[k]) for k in ("video", "audio"))
    assert len(video) == len(audio) >= 2
    exact = "25fps" in request.node.callspec.id
    for (vs, _), (as_, _) in zip(video[1:], audio[1:], strict=True):
        if exact:  # 3.84 s is 96 frames and 180 AAC frames: the same instant
            assert abs(vs - as_) < 1e-6, (vs, as_)
        else:  # nearest AAC frame to each video boundary: never more than half a frame, never accumulating
            assert abs(vs - as_) <= AAC_FRAME / 2 + 1e-6, (vs, as_)


def test_segments_carry_cmaf_brands_and_sap_type(site):
    for init in (site / "cmaf").glob("init-*.m4s"):
        data = init.read_bytes()
        start, end = boxes(data)[b"ftyp"]
        brands = {data[i:i + 4] for i in range(start + 8, end, 4)}
        assert b"cmfc" in brands and b"iso6" in brands, brands
    for seg in (site / "cmaf").glob("seg-*.m4s"):
        data = seg.read_bytes()
        found = boxes(data)
        start, end = found[b"styp"]
        brands = {data[i:i + 4] for i in range(start + 8, end, 4)}
        assert {b"msdh", b"cmfs"} <= brands, (seg.name, brands)
        sidx, _ = found[b"sidx"]
        v1 = data[sidx] == 1
        ref = sidx + 4 + 8 + (16 if v1 else 8) + 4
        sap = int.from_bytes(data[ref + 8:ref + 12], "big")
        assert sap >> 31 == 1 and (sap >> 28) & 0x7 == 1, (seg.name, hex(sap))


def test_sd_rungs_signal_an_sd_level(site):
    mpd = mpd_of(site)
    for aset in mpd.iterfind(".//m:AdaptationSet[@contentType='video']", MPD_NS):
        for rep in aset.iterfind("m:Representation", MPD_NS):
            init = (site / "cmaf" / f"init-{rep.get('id')}.m4s").read_bytes()
            avcc = init.find(b"avcC") + 4
            level_idc = init[avcc + 3]
            assert rep.get("codecs") == f"avc1.{init[avcc + 1]:02x}{init[avcc + 2]:02x}{level_idc:02x}"
            if int(rep.get("height")) <= 576:
                assert level_idc in (30, 31), (rep.get("height"), level_idc)


def test_iframe_playlists_address_each_segments_key_frame(site):
    master = (site / "hls/master.m3u8").read_text()
    iframes = [dict(re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1]))
               for line in master.splitlines() if line.startswith("#EXT-X-I-FRAME-STREAM-INF:")]
    variants = master_variants(site / "hls/master.m3u8")
    assert len(iframes) == len(variants) >= 1
    for attrs, (variant, uri) in zip(iframes, variants, strict=True):
        text = (site / "hls" / attrs["URI"].strip('"')).read_text()
        assert "#EXT-X-I-FRAMES-ONLY" in text and attrs["RESOLUTION"] == variant["RESOLUTION"]
        ranges = [int(n) for n, off in re.findall(r"#EXT-X-BYTERANGE:(\d+)@(\d+)", text) if off == "0"]
        rung = media_playlist(site / "hls" / uri)
        frames = media_playlist(site / "hls" / attrs["URI"].strip('"'))
        assert [n for n, _ in frames.segments] == [n for n, _ in rung.segments] and len(ranges) == len(rung.segments)
        init = (site / "hls" / rung.init).read_bytes()
        peak = 0.0
        for (name, dur), length in zip(rung.segments, ranges, strict=True):
            whole = (site / "hls" / name).read_bytes()
            with av.open(io.BytesIO(init + whole), format="mp4") as c:
                first = next(p for p in c.demux(video=0) if p.size)
                key_size = first.size
            with av.open(io.BytesIO(init + whole[:length]), format="mp4") as c:
                packets = [p for p in c.demux(video=0) if p.size]
            # exactly the segment's key frame, whole
            assert len(packets) == 1 and packets[0].is_keyframe and packets[0].size == key_size, name
            peak = max(peak, length * 8 / dur)
        assert int(attrs["BANDWIDTH"]) >= math.ceil(peak) - 1
