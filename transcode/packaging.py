"""CMAF packaging: ONE set of fMP4 segments (cmaf/) referenced by the HLS playlists (hls/) and the DASH MPD (dash/).

ffmpeg's DASH muxer writes the segments and a DVB-DASH MPD; we read every segment's real timing from its boxes,
re-cut the audio on the video's boundaries (transcode/fmp4.py), rewrite the MPD (BaseURL to the shared segments,
HbbTV 1.5 profile, roles, durations and bandwidths from the segments) and write the HLS playlists ourselves from
the same segments, so BANDWIDTH/AVERAGE-BANDWIDTH are measured, not guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from transcode import fmp4
from transcode.ladder import AudioRendition, Plan
from transcode.manifest_tracks import audio_media_lines, audio_playlist_key, label_audio_set, set_role

MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
PROFILES = "urn:dvb:dash:profile:dvb-dash:2014,urn:hbbtv:dash:profile:isoff-live:2012"
MAX_MPD_BYTES = 100 * 1024
SEGMENTS_DIR = "cmaf"


class PackagingError(RuntimeError):
    pass


@dataclass(frozen=True)
class Segment:
    name: str
    start: float          # presentation time of its first sample, seconds (>= 0)
    duration: float       # seconds, from the boxes
    size: int             # bytes
    iframe_bytes: int = 0  # video: bytes from the segment's start to the end of its first (key) frame


@dataclass(frozen=True)
class Track:
    rep_id: str
    kind: str                    # video | audio
    codecs: str
    init: str
    segments: list[Segment]
    width: int = 0
    height: int = 0
    nominal_bandwidth: int = 0

    @property
    def end(self) -> float:
        return self.segments[-1].start + self.segments[-1].duration


def _segment_files(out_dir: Path, rid: str) -> list[Path]:
    files = sorted(out_dir.glob(f"seg-{rid}-*.m4s"))
    if not files:
        raise PackagingError(f"representation {rid} has no segments")
    return files


def _span(info: fmp4.InitInfo, samples: list[fmp4.Sample]) -> tuple[int, int]:
    """Presentation (start, end) in the track timescale, the start clipped at 0 (AAC priming lies before it)."""
    if not samples:
        raise PackagingError("a segment has no samples")
    a, b = fmp4.presentation_span(samples, info.media_time)
    return max(a, 0), b


def _init(out_dir: Path, rid: str) -> tuple[Path, fmp4.InitInfo]:
    path = out_dir / f"init-{rid}.m4s"
    data = path.read_bytes()
    info = fmp4.read_init(data)
    path.write_bytes(fmp4.add_cmaf_brand(data))
    return path, info


def _video_track(out_dir: Path, rep: etree._Element) -> Track:
    rid = rep.get("id", "")
    init_path, info = _init(out_dir, rid)
    segments = []
    for path in _segment_files(out_dir, rid):
        relabelled = fmp4.relabel_segment(path.read_bytes())
        samples = fmp4.read_samples(relabelled)
        a, b = _span(info, samples)
        path.write_bytes(relabelled)
        key = samples[0]  # closed GOPs, one per segment: every segment starts with its key frame
        segments.append(Segment(path.name, a / info.timescale, (b - a) / info.timescale, len(relabelled),
                                key.offset + len(key.payload)))
    return Track(rid, "video", rep.get("codecs", ""), init_path.name, segments, int(rep.get("width", 0)),
                 int(rep.get("height", 0)), int(rep.get("bandwidth", 0)))


def _audio_track(out_dir: Path, rep: etree._Element, boundaries: list[float], video_end: float) -> Track:
    """Re-cut ffmpeg's audio at the video's segment starts (nearest AAC frame, so the error never accumulates)
    and drop frames that would start after the video ends: one audio segment per video segment, same numbers,
    so HLS and the MPD's template reference exactly the same files."""
    rid = rep.get("id", "")
    init_path, info = _init(out_dir, rid)
    files = _segment_files(out_dir, rid)
    samples = [s for path in files for s in fmp4.read_samples(path.read_bytes(), fmp4.SYNC_SAMPLE_FLAGS)]
    for path in files:
        path.unlink()
    ts = info.timescale

    def mid(s: fmp4.Sample) -> float:  # a frame goes where most of it plays
        return s.decode_time + s.cto - info.media_time + s.duration / 2

    end_ts = round(video_end * ts)
    samples = [s for s in samples if mid(s) <= end_ts] or samples[:1]
    cuts = [round(b * ts) for b in boundaries[1:]]
    groups: list[list[fmp4.Sample]] = [[] for _ in boundaries]
    k = 0
    for s in samples:
        while k < len(cuts) and mid(s) >= cuts[k]:
            k += 1
        groups[k].append(s)
    segments = []
    for number, group in enumerate((g for g in groups if g), start=1):
        name = f"seg-{rid}-{number:05d}.m4s"
        data = fmp4.write_audio_segment(info, group, number)
        (out_dir / name).write_bytes(data)
        a, b = _span(info, group)
        segments.append(Segment(name, a / ts, (b - a) / ts, len(data)))
    return Track(rid, "audio", rep.get("codecs", ""), init_path.name, segments,
                 nominal_bandwidth=int(rep.get("bandwidth", 0)))


def read_tracks(out_dir: Path, mpd: etree._Element) -> list[Track]:
    ns = {"m": MPD_NS}
    videos: list[Track] = []
    audio_reps: list[etree._Element] = []
    for aset in mpd.iterfind(".//m:AdaptationSet", ns):
        kind = aset.get("contentType") or ("video" if aset.get("maxWidth") else "audio")
        for rep in aset.iterfind("m:Representation", ns):
            if kind == "video":
                videos.append(_video_track(out_dir, rep))
            else:
                audio_reps.append(rep)
    if not videos:
        raise PackagingError("packager wrote no video representation")
    reference = videos[0]
    boundaries = [0.0] + [s.start for s in reference.segments[1:]]
    audios = [_audio_track(out_dir, rep, boundaries, reference.end) for rep in audio_reps]
    counts = {len(t.segments) for t in videos + audios}
    if len(counts) != 1:
        raise PackagingError(f"representations have different segment counts {sorted(counts)}")
    return videos + audios


def _xs_duration(seconds: float) -> str:
    return f"PT{seconds:.6f}".rstrip("0").rstrip(".") + "S"


def _ceil_us(seconds: float) -> float:
    return math.ceil(round(seconds * 1e6, 3)) / 1e6


def _measured(root: etree._Element, tracks: list[Track], segment_seconds: float | None) -> None:
    by_id = {t.rep_id: t for t in tracks}
    for rep in root.iter(f"{{{MPD_NS}}}Representation"):
        track = by_id.get(rep.get("id", ""))
        if track:
            rep.set("bandwidth", str(max(track.nominal_bandwidth, rates(track)[1])))
    # The template numbers ceil(duration / segment) segments: never claim more than every representation has.
    end = _ceil_us(max(t.end for t in tracks))
    if segment_seconds:
        end = min(end, len(tracks[0].segments) * segment_seconds)
    root.set("mediaPresentationDuration", _xs_duration(end))
    longest = max(s.duration for t in tracks for s in t.segments)
    root.set("maxSegmentDuration", _xs_duration(_ceil_us(longest)))


def rewrite_mpd(raw: bytes, tracks: list[Track] | None = None, segment_seconds: float | None = None,
                audio: tuple[AudioRendition, ...] = ()) -> bytes:
    """ffmpeg's MPD made true: durations and bandwidths from the real segments, roles, and no
    bitstreamSwitching claim: each representation has its own SPS/PPS in its own `avc1` init segment, so a
    decoder must be re-initialised on a switch (in-band `avc3` parameter sets would make the claim true, at the
    cost of parameter sets in every segment and a sample entry some HbbTV 1.5 sets reject)."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(raw, parser)
    for tag in ("ProgramInformation", "ServiceDescription"):
        for el in root.findall(f"{{{MPD_NS}}}{tag}"):
            if len(el) == 0 and not (el.text or "").strip():
                root.remove(el)
    root.set("profiles", PROFILES)
    renditions = iter(audio)
    for aset in root.iter(f"{{{MPD_NS}}}AdaptationSet"):
        aset.attrib.pop("bitstreamSwitching", None)
        if aset.get("contentType") != "audio":
            set_role(aset, "main")
            continue
        # DVB-DASH players pick audio by @lang and Role; the muxer's sets follow the plan's track order
        rendition = next(renditions, None)
        label_audio_set(aset, rendition.language if rendition else (aset.get("lang") or "und"),
                        rendition.role if rendition else "main")
    for acc in root.iter(f"{{{MPD_NS}}}AudioChannelConfiguration"):
        rep = acc.getparent()
        if rep.get("codecs", "").startswith("ec-3") and acc.get("value") == "6":
            # DVB-DASH 6.3: E-AC-3 signals its channels in Dolby's scheme, as a channel mask (5.1: L C R Ls Rs LFE)
            acc.set("schemeIdUri", "tag:dolby.com,2014:dash:audio_channel_configuration:2011")
            acc.set("value", "F801")
    if tracks:
        _measured(root, tracks, segment_seconds)
    base = etree.Element(f"{{{MPD_NS}}}BaseURL")
    base.text = f"../{SEGMENTS_DIR}/"
    root.insert(0, base)
    out = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    if len(out) > MAX_MPD_BYTES:
        raise PackagingError(f"MPD is {len(out)} bytes, above the {MAX_MPD_BYTES} byte limit for HbbTV")
    return out


def _media_playlist(track: Track) -> str:
    target = max(round(s.duration) for s in track.segments)  # RFC 8216: each EXTINF rounded <= TARGETDURATION
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-MEDIA-SEQUENCE:1",
             "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS",
             f'#EXT-X-MAP:URI="../{SEGMENTS_DIR}/{track.init}"']
    for s in track.segments:
        lines += [f"#EXTINF:{s.duration:.6f},", f"../{SEGMENTS_DIR}/{s.name}"]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _variants(name: str, t: Track, rate: tuple[int, int], fps: float, audio: list[dict[str, Any]]) -> list[str]:
    """The rung's EXT-X-STREAM-INF, once per audio group (stereo AAC; E-AC-3 5.1 when there is surround), so a
    player picks the variant whose CODECS it decodes. RFC 8216 4.3.4.2: BANDWIDTH covers the variant with
    whichever rendition of its group plays."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for a in audio:
        groups.setdefault(a.get("group", "aac"), []).append(a)
    out = []
    for group, members in (groups or {"": []}).items():
        codecs = ",".join(dict.fromkeys([t.codecs, *(a["codecs"] for a in members)]))
        peak = rate[0] + max((a["peak_bitrate"] for a in members), default=0)
        avg = rate[1] + max((a["bitrate"] for a in members), default=0)
        attrs = (f'BANDWIDTH={peak},AVERAGE-BANDWIDTH={avg},CODECS="{codecs}",RESOLUTION={t.width}x{t.height},'
                 f'FRAME-RATE={fps:.3f}' + (f',AUDIO="{group}"' if group else ""))
        out += [f"#EXT-X-STREAM-INF:{attrs}", f"{name}.m3u8"]
    return out


def _iframe_playlist(track: Track) -> tuple[str, int, int]:
    """RFC 8216 EXT-X-I-FRAMES-ONLY playlist of a rung (trick play, scrubbing previews): each segment's key
    frame as a byte range from the segment's start (styp, sidx, moof, mdat header, the frame). Returns
    (playlist, peak, average) bits per second, the byte ranges over their EXTINF durations."""
    target = max(round(s.duration) for s in track.segments)
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-MEDIA-SEQUENCE:1",
             "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-I-FRAMES-ONLY", f'#EXT-X-MAP:URI="../{SEGMENTS_DIR}/{track.init}"']
    for s in track.segments:
        lines += [f"#EXTINF:{s.duration:.6f},", f"#EXT-X-BYTERANGE:{s.iframe_bytes}@0", f"../{SEGMENTS_DIR}/{s.name}"]
    lines.append("#EXT-X-ENDLIST")
    timed = [s for s in track.segments if s.duration > 0]
    peak = max(math.ceil(s.iframe_bytes * 8 / s.duration) for s in timed)
    avg = math.ceil(sum(s.iframe_bytes for s in timed) * 8 / sum(s.duration for s in timed))
    return "\n".join(lines) + "\n", peak, avg


def _iframe_playlists(videos: list[Track], plan: Plan, objects: dict[str, Path | bytes],
                      order: list[str]) -> list[str]:
    """One I-frame playlist per rung (added to objects/order); returns the master's EXT-X-I-FRAME-STREAM-INF."""
    lines = []
    for rung, t in zip(plan.rungs, videos, strict=True):
        text, peak, avg = _iframe_playlist(t)
        key = f"hls/{rung.name}-iframes.m3u8"
        objects[key] = text.encode()
        order.append(key)
        lines.append(f'#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={avg},CODECS="{t.codecs}",'
                     f'RESOLUTION={t.width}x{t.height},URI="{rung.name}-iframes.m3u8"')
    return lines


def rates(track: Track) -> tuple[int, int]:
    """(peak, average) bits per second, rounded up. Peak as RFC 8216 defines it: the largest segment bit rate
    over every segment, short last ones included."""
    peak = max(math.ceil(s.size * 8 / s.duration) for s in track.segments if s.duration > 0)
    total = sum(s.duration for s in track.segments)
    avg = math.ceil(sum(s.size for s in track.segments) * 8 / total)
    return max(peak, avg), avg


def _default_audio(plan: Plan) -> tuple[AudioRendition, ...]:
    return (AudioRendition(0, "und", "Audio", "main", plan.audio_channels),) if plan.audio else ()


def _audio_playlists(audios: list[Track], plan: Plan, objects: dict[str, Path | bytes],
                     order: list[str]) -> list[dict[str, Any]]:
    """One media playlist per audio track (added to objects/order); returns the outputs' `audio_tracks`."""
    out = []
    for j, (t, r) in enumerate(zip(audios, plan.audio_tracks or _default_audio(plan), strict=True)):
        peak, avg = rates(t)
        key = audio_playlist_key(j)
        objects[key] = _media_playlist(t).encode()
        order.append(key)
        out.append({"rep_id": t.rep_id, "language": r.language, "name": r.name, "role": r.role,
                    "channels": r.channels, "codecs": t.codecs, "bitrate": avg, "peak_bitrate": peak,
                    "sample_rate": plan.audio_sample_rate, "playlist": key, "source_index": r.source_index,
                    "group": "aac" if r.codec == "aac" else "ec3"})
    return out


def package(out_dir: Path, plan: Plan) -> tuple[dict[str, Path | bytes], list[str], dict[str, Any]]:
    """Return (objects by key relative to the asset prefix, keys in publish order, outputs document).

    Publish order: every segment first, then media playlists, then the MPD and the HLS master, so a manifest is
    never visible before the segments it references."""
    mpd_path = out_dir / "manifest.mpd"
    if not mpd_path.exists():
        raise PackagingError("packager wrote no MPD")
    raw = mpd_path.read_bytes()
    try:
        tracks = read_tracks(out_dir, etree.fromstring(raw))
    except fmp4.BoxError as exc:
        raise PackagingError(f"unreadable segment: {exc}") from None
    mpd_bytes = rewrite_mpd(raw, tracks, plan.segment_seconds, plan.audio_tracks)
    videos = [t for t in tracks if t.kind == "video"]
    audios = [t for t in tracks if t.kind == "audio"]
    audio = audios[0] if audios else None
    objects: dict[str, Path | bytes] = {}
    order: list[str] = []
    for t in tracks:
        for name in [t.init, *(seg.name for seg in t.segments)]:
            key = f"{SEGMENTS_DIR}/{name}"
            objects[key] = out_dir / name
            order.append(key)
    master = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    audio_out = _audio_playlists(audios, plan, objects, order)
    master += audio_media_lines(audio_out)
    video_out = []
    fps = float(plan.fps)
    for rung, t in zip(plan.rungs, videos, strict=True):
        peak, avg = rates(t)
        key = f"hls/{rung.name}.m3u8"
        objects[key] = _media_playlist(t).encode()
        order.append(key)
        master += _variants(rung.name, t, (peak, avg), fps, audio_out)
        video_out.append({"name": rung.name, "width": t.width, "height": t.height, "bitrate": avg,
                          "peak_bitrate": peak, "codecs": t.codecs, "frame_rate": round(fps, 3),
                          "profile": rung.profile, "level": rung.level,
                          "playlist": key, "init": f"{SEGMENTS_DIR}/{t.init}"})
    master += _iframe_playlists(videos, plan, objects, order)
    objects["dash/manifest.mpd"] = mpd_bytes
    objects["hls/master.m3u8"] = ("\n".join(master) + "\n").encode()
    order += ["dash/manifest.mpd", "hls/master.m3u8"]
    outputs: dict[str, Any] = {
        "hls": "hls/master.m3u8", "dash": "dash/manifest.mpd", "video": video_out,
        "audio": ({"codecs": audio.codecs, "bitrate": audio_out[0]["bitrate"], "channels": plan.audio_channels,
                   "sample_rate": plan.audio_sample_rate} if audio else None),
        "audio_tracks": audio_out,
        "segment_duration": round(plan.segment_seconds, 6),
    }
    return objects, order, outputs
