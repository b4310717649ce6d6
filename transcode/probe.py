"""Media facts from a real demuxer (PyAV), never from regexes over ffmpeg's stderr."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import langcodes

# AVColorSpace values (libavutil/pixfmt.h) to swscale's matrix names.
MATRICES = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020", 10: "bt2020"}


@dataclass(frozen=True)
class AudioTrack:
    """One audio stream of the source, in container order."""

    index: int               # among the source's audio streams (ffmpeg's a:N)
    language: str            # BCP 47 (RFC 5646) shortest form of the container's ISO 639 tag; "und" if unknown
    channels: int
    codec: str
    title: str = ""          # the container's track title, if any


def language_tag(raw: str | None) -> str:
    """ISO 639-2/B or /T (MP4, Matroska, TS) or 639-1 to the shortest BCP 47 tag HLS and DASH expect
    ("ger" and "deu" become "de"); "und" when absent or not a language code."""
    value = (raw or "").strip()
    if not value or not langcodes.tag_is_valid(value):
        return "und"
    return langcodes.standardize_tag(value)


class ProbeError(ValueError):
    """The file is not usable media; the message is shown to the user as the failure reason."""


@dataclass(frozen=True)
class Facts:
    duration: float
    width: int               # coded size, before rotation and SAR
    height: int
    display_width: int       # what a viewer sees: SAR applied, rotation applied
    display_height: int
    fps: float
    vfr: bool
    video_codec: str | None
    pix_fmt: str | None
    rotation: int            # display-matrix rotation in degrees (ffmpeg applies it when decoding)
    sar: str                 # "num:den"
    interlaced: bool
    frames: int              # as declared by the container (0 = unknown)
    audio_codec: str | None
    audio_channels: int
    audio_sample_rate: int
    format: str
    size_bytes: int
    color_matrix: str = ""   # bt709 | bt601 | bt2020 as tagged; "" when the source does not say
    audio_tracks: tuple[AudioTrack, ...] = ()   # every audio stream (audio_codec/channels describe the first)

    @property
    def assumed_matrix(self) -> str:
        """The YCbCr matrix to decode with. Untagged sources follow the broadcast convention (ITU-R BT.709 for
        HD, i.e. 1280 wide or 720 high and above; BT.601 for SD) instead of swscale's BT.601 default, which
        shifts the hue of untagged HD."""
        if self.color_matrix:
            return self.color_matrix
        return "bt709" if self.width >= 1280 or self.height >= 720 else "bt601"

    @property
    def has_video(self) -> bool:
        return self.video_codec is not None

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Facts:
        tracks = tuple(AudioTrack(**t) for t in data.get("audio_tracks") or ())
        return cls(**{**data, "audio_tracks": tracks})


def _first_frames(container: Any, stream: Any, limit: int = 5) -> tuple[int, bool]:
    """(rotation, interlaced) from the first decoded frames: the display matrix travels as frame side data."""
    rotation, interlaced = 0, False
    try:
        for i, frame in enumerate(container.decode(stream)):
            if i == 0:
                rotation = round(getattr(frame, "rotation", 0) or 0) % 360
            interlaced = interlaced or bool(frame.interlaced_frame)
            if i >= limit:
                break
    except (av.FFmpegError, ValueError):
        pass
    return rotation, interlaced


def _mp4_damage(path: Path, size: int) -> str | None:
    """For ISO-BMFF files FFmpeg cannot open, name the damage: walk the top-level boxes."""
    with path.open("rb") as f:
        if f.read(8)[4:8] != b"ftyp":
            return None
        pos, types = 0, []
        while pos + 8 <= size:
            f.seek(pos)
            header = f.read(16)
            box_size, box_type = int.from_bytes(header[:4], "big"), header[4:8]
            if box_size == 1 and len(header) == 16:
                box_size = int.from_bytes(header[8:16], "big")
            elif box_size == 0:
                box_size = size - pos
            if box_size < 8 or not box_type.isascii():
                break
            types.append(box_type)
            if pos + box_size > size:
                return f"the '{box_type.decode(errors='replace')}' box is cut off; moov atom not found" \
                    if b"moov" not in types else "a box is cut off"
            pos += box_size
    if types and types[0] == b"ftyp" and b"moov" not in types:
        return "moov atom not found"
    return None


def probe(path: Path) -> Facts:
    size = path.stat().st_size
    if size == 0:
        raise ProbeError("the file is empty (0 bytes)")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as exc:
        hint = _mp4_damage(path, size)
        if hint:
            raise ProbeError(f"the MP4 is incomplete ({hint}): the upload was probably truncated") from None
        raise ProbeError(f"not a recognised audio/video file ({exc.strerror or 'unknown format'})") from None
    with container:
        video = next((s for s in container.streams.video if s.codec_context is not None), None)
        audio = next(iter(container.streams.audio), None)
        tracks = _audio_tracks(container)
        if video is None and audio is None:
            raise ProbeError("the file contains no audio or video stream")
        duration = _duration(container, video or audio)
        audio_facts = (audio.codec_context.name, audio.codec_context.channels or 0,
                       audio.codec_context.sample_rate or 0) if audio else (None, 0, 0)
        if video is None:
            return Facts(duration, 0, 0, 0, 0, 0.0, False, None, None, 0, "1:1", False, 0, *audio_facts,
                         container.format.name, size, audio_tracks=tracks)
        cc = video.codec_context
        width, height = cc.width or 0, cc.height or 0
        if not width or not height:
            raise ProbeError("the video stream has no picture size (corrupt or unsupported codec)")
        avg = video.average_rate or video.guessed_rate or video.base_rate
        fps = float(avg) if avg else 0.0
        base = video.base_rate or video.guessed_rate
        vfr = bool(avg and base and abs(float(avg) - float(base)) > 0.01 * float(base))
        sar = cc.sample_aspect_ratio or Fraction(1, 1)
        if not sar or sar <= 0:
            sar = Fraction(1, 1)
        rotation, interlaced = _first_frames(container, video)
        dw, dh = round(width * float(sar)), height
        if rotation in (90, 270):
            dw, dh = dh, dw
        return Facts(duration, width, height, dw, dh, fps, vfr, cc.name, cc.format.name if cc.format else None,
                     rotation, f"{sar.numerator}:{sar.denominator}", interlaced, video.frames or 0, *audio_facts,
                     container.format.name, size, MATRICES.get(int(cc.colorspace or 2), ""), tracks)


def _audio_tracks(container: Any) -> tuple[AudioTrack, ...]:
    return tuple(
        AudioTrack(i, language_tag(s.metadata.get("language")), s.codec_context.channels or 0,
                   s.codec_context.name or "", (s.metadata.get("title") or "")[:100])
        for i, s in enumerate(container.streams.audio))


def _duration(container: Any, stream: Any) -> float:
    if container.duration:
        return container.duration / av.time_base
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return math.nan
