"""Helpers for the conformance tests: run the real transcode+packaging on a generated clip and read what came out
with independent tools (lxml for manifests, PyAV's demuxer for segment timing, a small box walker for labels)."""

from __future__ import annotations

import io
import math
import re
import struct
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from lxml import etree

from transcode import commands, packaging
from transcode.ffmpeg import ffmpeg_binary
from transcode.ladder import plan
from transcode.probe import probe

MPD_NS = {"m": "urn:mpeg:dash:schema:mpd:2011"}


def generate(path: Path, *, size: str, rate: str, video_s: float, audio_s: float | None,
             extra: list[str] | None = None, languages: tuple[str, ...] = ()) -> Path:
    """testsrc2 + sine; audio and video lengths set independently (real files rarely match exactly).
    `languages`: one sine track per entry (440 Hz, 880 Hz, ...), each tagged with that language ("" = untagged)."""
    argv = [ffmpeg_binary(None), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=s={size}:r={rate}:d={video_s}"]
    tracks = languages or (("",) if audio_s else ())
    for i, _ in enumerate(tracks):
        argv += ["-f", "lavfi", "-i", f"sine=f={440 * (i + 1)}:d={audio_s}:r=48000"]
    argv += ["-map", "0:v", *(a for i in range(len(tracks)) for a in ("-map", f"{i + 1}:a"))]
    argv += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if tracks:
        argv += ["-c:a", "aac"]
    for i, lang in enumerate(tracks):
        if lang:
            argv += [f"-metadata:s:a:{i}", f"language={lang}"]
    subprocess.run([*argv, *(extra or []), str(path)], check=True, timeout=120)
    return path


def transcode_and_package(source: Path, work: Path) -> Path:
    """The job's pipeline without the database: probe, plan, one ffmpeg, package; objects laid out by key."""
    the_plan = plan(probe(source))
    out = work / "out"
    out.mkdir(parents=True)
    subprocess.run(commands.transcode_argv(ffmpeg_binary(None), source, out, the_plan), check=True,
                   stdout=subprocess.DEVNULL, timeout=300)
    objects, _, _ = packaging.package(out, the_plan)
    site = work / "site"
    for key, value in objects.items():
        dest = site / key
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(value if isinstance(value, bytes) else value.read_bytes())
    return site


def xs_seconds(value: str) -> float:
    m = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", value)
    assert m, value
    h, mi, s = m.groups()
    return int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


@dataclass(frozen=True)
class Playlist:
    init: str
    segments: list[tuple[str, float]]
    target: int


def media_playlist(path: Path) -> Playlist:
    init, segs, dur, target = "", [], 0.0, 0
    for line in path.read_text().splitlines():
        if line.startswith("#EXT-X-MAP:"):
            init = re.search(r'URI="([^"]+)"', line).group(1)  # type: ignore[union-attr]
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            target = int(line.split(":")[1])
        elif line.startswith("#EXTINF:"):
            dur = float(line[8:].split(",")[0])
        elif line and not line.startswith("#"):
            segs.append((line, dur))
    return Playlist(init, segs, target)


def master_variants(path: Path) -> list[tuple[dict[str, str], str]]:
    lines = path.read_text().splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attrs = dict(re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1]))
            out.append(({k: v.strip('"') for k, v in attrs.items()}, lines[i + 1]))
    return out


def presentation(init: bytes, segment: bytes) -> tuple[float, float]:
    """(start, end) seconds of a segment as a demuxer presents it (edit list applied), start clipped at 0."""
    with av.open(io.BytesIO(init + segment), format="mp4") as c:
        stream = c.streams[0]
        packets = [p for p in c.demux(stream) if p.size]
        tb = stream.time_base
        start = min(p.pts for p in packets) * tb
        end = max(p.pts + p.duration for p in packets) * tb
    return max(float(start), 0.0), float(end)


def boxes(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, tuple[int, int]]:
    end = len(data) if end is None else end
    found, pos = {}, start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        found.setdefault(kind, (pos + 8, pos + size))
        pos += size
    return found


def template_files(mpd: etree._Element) -> dict[str, list[str]]:
    """Every file the MPD's SegmentTemplate@duration addresses, per representation (ceil(duration/segment))."""
    total = xs_seconds(mpd.get("mediaPresentationDuration"))
    files = {}
    for rep in mpd.iterfind(".//m:Representation", MPD_NS):
        tpl = rep.find("m:SegmentTemplate", MPD_NS)
        seg = Fraction(int(tpl.get("duration")), int(tpl.get("timescale")))
        count = math.ceil(Fraction(total).limit_denominator(10**6) / seg)
        rid = rep.get("id")
        first = int(tpl.get("startNumber", "1"))
        files[rid] = [tpl.get("initialization").replace("$RepresentationID$", rid)] + [
            re.sub(r"\$Number%0(\d)d\$", lambda m, n=n: f"{n:0{m.group(1)}d}",
                   tpl.get("media").replace("$RepresentationID$", rid)) for n in range(first, first + count)]
    return files
