"""CMAF packaging: ONE set of fMP4 segments (cmaf/) referenced by the HLS playlists (hls/) and the DASH MPD (dash/).

ffmpeg's DASH muxer writes the segments and a DVB-DASH MPD; we rewrite the MPD (BaseURL to the shared segments,
HbbTV 1.5 profile, no empty elements) and write the HLS playlists ourselves from the segments' real sizes, so
BANDWIDTH/AVERAGE-BANDWIDTH are measured, not guessed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from transcode.ladder import Plan

MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
PROFILES = "urn:dvb:dash:profile:dvb-dash:2014,urn:hbbtv:dash:profile:isoff-live:2012"
MAX_MPD_BYTES = 100 * 1024
SEGMENTS_DIR = "cmaf"


class PackagingError(RuntimeError):
    pass


@dataclass(frozen=True)
class Track:
    rep_id: str
    kind: str                    # video | audio
    codecs: str
    init: str
    segments: list[tuple[str, float]]   # (file name, duration)
    width: int = 0
    height: int = 0


def _parse_media_playlist(path: Path) -> tuple[str, list[tuple[str, float]]]:
    init, segs, dur = "", [], 0.0
    for line in path.read_text().splitlines():
        if line.startswith("#EXT-X-MAP:"):
            init = re.search(r'URI="([^"]+)"', line).group(1)  # type: ignore[union-attr]
        elif line.startswith("#EXTINF:"):
            dur = float(line[8:].split(",")[0])
        elif line and not line.startswith("#"):
            segs.append((line.strip(), dur))
    return init, segs


def read_tracks(out_dir: Path, mpd: etree._Element) -> list[Track]:
    tracks = []
    ns = {"m": MPD_NS}
    for aset in mpd.iterfind(".//m:AdaptationSet", ns):
        kind = aset.get("contentType") or ("video" if aset.get("maxWidth") else "audio")
        for rep in aset.iterfind("m:Representation", ns):
            rid = rep.get("id")
            playlist = out_dir / f"media_{rid}.m3u8"
            if not playlist.exists():
                raise PackagingError(f"packager wrote no playlist for representation {rid}")
            init, segs = _parse_media_playlist(playlist)
            if not segs:
                raise PackagingError(f"representation {rid} has no segments")
            tracks.append(Track(rid, kind, rep.get("codecs", ""), init, segs, int(rep.get("width", 0)),
                                int(rep.get("height", 0))))
    return tracks


def rewrite_mpd(raw: bytes) -> bytes:
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(raw, parser)
    for tag in ("ProgramInformation", "ServiceDescription"):
        for el in root.findall(f"{{{MPD_NS}}}{tag}"):
            if len(el) == 0 and not (el.text or "").strip():
                root.remove(el)
    root.set("profiles", PROFILES)
    for aset in root.iter(f"{{{MPD_NS}}}AdaptationSet"):
        if aset.get("contentType") == "audio" and not aset.get("lang"):
            aset.set("lang", "und")  # DVB-DASH players pick audio by language
    base = etree.Element(f"{{{MPD_NS}}}BaseURL")
    base.text = f"../{SEGMENTS_DIR}/"
    root.insert(0, base)
    out = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    if len(out) > MAX_MPD_BYTES:
        raise PackagingError(f"MPD is {len(out)} bytes, above the {MAX_MPD_BYTES} byte limit for HbbTV")
    return out


def _media_playlist(track: Track) -> str:
    target = max(math.ceil(d) for _, d in track.segments)
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-MEDIA-SEQUENCE:1",
             "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS",
             f'#EXT-X-MAP:URI="../{SEGMENTS_DIR}/{track.init}"']
    for name, dur in track.segments:
        lines += [f"#EXTINF:{dur:.6f},", f"../{SEGMENTS_DIR}/{name}"]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _rates(out_dir: Path, track: Track) -> tuple[int, int]:
    """(peak, average) bits per second over the segments."""
    total_bits, total_dur, peak = 0, 0.0, 0.0
    for name, dur in track.segments:
        bits = (out_dir / name).stat().st_size * 8
        total_bits += bits
        total_dur += dur
        if dur >= 0.5:
            peak = max(peak, bits / dur)
    avg = total_bits / total_dur if total_dur else 0
    return int(max(peak, avg)), int(avg)


def package(out_dir: Path, plan: Plan) -> tuple[dict[str, Path | bytes], list[str], dict[str, Any]]:
    """Return (objects by key relative to the asset prefix, keys in publish order, outputs document).

    Publish order: every segment first, then media playlists, then the MPD and the HLS master, so a manifest is
    never visible before the segments it references."""
    mpd_path = out_dir / "manifest.mpd"
    if not mpd_path.exists():
        raise PackagingError("packager wrote no MPD")
    mpd_bytes = rewrite_mpd(mpd_path.read_bytes())
    tracks = read_tracks(out_dir, etree.fromstring(mpd_bytes))
    videos = [t for t in tracks if t.kind == "video"]
    audio = next((t for t in tracks if t.kind == "audio"), None)
    objects: dict[str, Path | bytes] = {}
    order: list[str] = []
    for t in tracks:
        for name in [t.init, *(n for n, _ in t.segments)]:
            key = f"{SEGMENTS_DIR}/{name}"
            objects[key] = out_dir / name
            order.append(key)
    master = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    audio_peak = audio_avg = 0
    if audio:
        audio_peak, audio_avg = _rates(out_dir, audio)
        key = "hls/audio.m3u8"
        objects[key] = _media_playlist(audio).encode()
        order.append(key)
        master.append(f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="Main",LANGUAGE="und",DEFAULT=YES,'
                      f'AUTOSELECT=YES,CHANNELS="{plan.audio_channels}",URI="audio.m3u8"')
    video_out = []
    fps = float(plan.fps)
    for rung, t in zip(plan.rungs, videos, strict=True):
        peak, avg = _rates(out_dir, t)
        key = f"hls/{rung.name}.m3u8"
        objects[key] = _media_playlist(t).encode()
        order.append(key)
        codecs = t.codecs + (f",{audio.codecs}" if audio else "")
        attrs = (f"BANDWIDTH={peak + audio_peak},AVERAGE-BANDWIDTH={avg + audio_avg},CODECS=\"{codecs}\","
                 f"RESOLUTION={t.width}x{t.height},FRAME-RATE={fps:.3f}" + (',AUDIO="aac"' if audio else ""))
        master += [f"#EXT-X-STREAM-INF:{attrs}", f"{rung.name}.m3u8"]
        video_out.append({"name": rung.name, "width": t.width, "height": t.height, "bitrate": avg,
                          "peak_bitrate": peak, "codecs": t.codecs, "frame_rate": round(fps, 3),
                          "profile": rung.profile, "level": rung.level,
                          "playlist": key, "init": f"{SEGMENTS_DIR}/{t.init}"})
    objects["dash/manifest.mpd"] = mpd_bytes
    objects["hls/master.m3u8"] = ("\n".join(master) + "\n").encode()
    order += ["dash/manifest.mpd", "hls/master.m3u8"]
    outputs: dict[str, Any] = {
        "hls": "hls/master.m3u8", "dash": "dash/manifest.mpd", "video": video_out,
        "audio": ({"codecs": audio.codecs, "bitrate": audio_avg, "channels": plan.audio_channels,
                   "sample_rate": plan.audio_sample_rate} if audio else None),
        "segment_duration": round(plan.segment_seconds, 6),
    }
    return objects, order, outputs
