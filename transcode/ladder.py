"""Ladder planning: a pure function of the probed facts and a ladder config (data, not code).

Default rungs (16:9, up to 30 fps; 50/60 fps sources are halved so every rung stays within H.264 level 4.0
for TV decoders):

    name   size        video     why
    1080p  1920x1080   4.5 Mb/s  ~0.072 bits/pixel at 30 fps, close to PeerTube's bpp curve at 1080p
    720p   1280x720    2.4 Mb/s  ~0.087 bpp; above the HbbTV reference dasher's 2.1 Mb/s top rung
    540p   960x540     1.5 Mb/s  the HbbTV reference's middle rung
    360p   640x360     0.8 Mb/s  mobile on a weak network
    270p   480x270     0.4 Mb/s  close to the HbbTV reference's 512 kb/s floor (incl. audio) for bad lines

H.264 level per rung: the lowest of 3.0 / 3.1 / 3.2 / 4.0 whose frame size and macroblock rate fit (SD rungs at
3.0, 540p/720p at 3.1, 1080p at 4.0), so an SD-only decoder is not told it needs a level 4.0 decoder.

Sizes: 16:9 landscape rungs are all in the DVB-DASH (ETSI TS 103 285) resolution table. Policy for other
shapes: keep the picture's display aspect with square pixels, short side from the table (4:3 gives 1440x1080,
960x720, 720x540, 480x360, 360x270; portrait 9:16 gives 1080x1920 ...), never pillarbox or letterbox into a
16:9 table size; those sizes are outside the table, which DVB-DASH terminals decode anyway (any size within
the signalled level) but which a strict validator reports as a warning.

Bitrates scale with the pixel count for other aspect ratios (portrait 9:16 gets the same bits for the same
short side). PeerTube derives bitrate from a bits-per-pixel curve; a fixed table is easier to reason about for
TV delivery, where the HbbTV Association's reference dasher uses a small fixed set (512k/1.5M/2.1M).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import langcodes

from transcode.probe import AudioTrack, Facts


class PlanError(ValueError):
    """The media is readable but outside what we accept; the message is the user's failure reason."""


@dataclass(frozen=True)
class RungSpec:
    name: str
    short_side: int        # height for landscape, width for portrait
    video_bitrate: int     # at 16:9 and <= 30 fps
    profile: str           # H.264 profile


@dataclass(frozen=True)
class LadderConfig:
    rungs: tuple[RungSpec, ...] = (
        RungSpec("1080p", 1080, 4_500_000, "high"),
        RungSpec("720p", 720, 2_400_000, "high"),
        RungSpec("540p", 540, 1_500_000, "high"),
        RungSpec("360p", 360, 800_000, "main"),
        RungSpec("270p", 270, 400_000, "main"),
    )
    level: str = "4.0"             # the highest level any rung may signal
    max_fps: float = 30.0
    audio_bitrate: int = 128_000
    audio_sample_rate: int = 48_000
    audio_channels: int = 2
    max_width: int = 4096
    max_height: int = 4096
    max_duration: float = 12 * 3600.0
    min_duration: float = 0.5
    min_frames: int = 2
    segment_target: float = 4.0
    preset: str = "veryfast"
    max_b_frames: int = 3


@dataclass(frozen=True)
class Rung:
    name: str
    width: int
    height: int
    video_bitrate: int
    maxrate: int
    bufsize: int
    profile: str
    level: str


@dataclass(frozen=True)
class AudioRendition:
    source_index: int      # the source's a:N
    language: str          # BCP 47, "und" when unknown
    name: str              # what a player's menu shows
    role: str              # a key of manifest_tracks.AUDIO_ROLES; one "main" per codec
    channels: int          # output channels
    codec: str = "aac"     # aac (stereo, every device) | eac3 (5.1, see SURROUND)
    bitrate: int = 0       # 0: the ladder's audio bitrate
    filters: tuple = ()    # loudness normalisation (loudness.normalisation), applied before the encoder


def track_name(language: str, title: str = "") -> str:
    """The container's title if it has one, else the language's own name ("Deutsch"), else "Audio"."""
    if title:
        return title
    if language == "und":
        return "Audio"
    return langcodes.Language.get(language).autonym().capitalize()


# Surround: a source track with 5.1 (or more) channels keeps a stereo AAC rendition, which every device plays,
# and gains a 5.1 E-AC-3 rendition (Dolby Digital Plus, 384 kb/s): DVB/HbbTV TVs, Apple devices, Edge and
# AV receivers (passed through over HDMI) decode it; Chrome and Firefox do not, and keep the stereo AAC.
# E-AC-3 rather than AAC 5.1 because TV decoders and receivers handle it natively, where AAC 5.1 is often
# downmixed or refused by HbbTV terminals.
SURROUND = ("eac3", 6, 384_000)


def audio_renditions(tracks: tuple[AudioTrack, ...], channels: int) -> tuple[AudioRendition, ...]:
    """Every source audio track, in source order; the first is main, the others alternates; 5.1 tracks add
    an E-AC-3 rendition after the stereo ones (same language and role). Names made unique (two unlabelled
    English tracks become "English" and "English 2"): HLS requires distinct NAMEs."""
    out: list[AudioRendition] = []
    seen: dict[str, int] = {}
    for i, t in enumerate(tracks):
        name = track_name(t.language, t.title)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} {seen[name]}"
        out.append(AudioRendition(t.index, t.language, name, "main" if i == 0 else "alternate",
                                  channels))  # stereo renditions at the ladder's channel count
    codec, surround, bitrate = SURROUND
    out += [AudioRendition(r.source_index, r.language, f"{r.name} 5.1", r.role, surround, codec, bitrate)
            for r, t in zip(list(out), tracks, strict=True) if t.channels >= surround]
    return tuple(out)


@dataclass(frozen=True)
class Plan:
    rungs: tuple[Rung, ...]
    fps: Fraction              # constant output frame rate (VFR sources are made CFR)
    gop: int                   # frames per GOP == frames per segment
    segment_seconds: float
    deinterlace: bool
    audio: bool
    audio_bitrate: int
    audio_sample_rate: int
    audio_channels: int
    preset: str
    max_b_frames: int
    duration: float
    extra: dict = field(default_factory=dict)
    source_matrix: str = "bt709"   # YCbCr matrix the source is decoded with (converted to BT.709 for output)
    audio_tracks: tuple[AudioRendition, ...] = ()   # one per source audio track, in output order


# (level, max macroblocks per frame, max macroblocks per second), ITU-T H.264 Table A-1; from 3.0 up because
# that is the floor TV decoders are certified against.
LEVELS = (("3.0", 1620, 40_500), ("3.1", 3600, 108_000), ("3.2", 5120, 216_000), ("4.0", 8192, 245_760),
          ("4.1", 8192, 245_760), ("4.2", 8704, 522_240))


def level_for(width: int, height: int, fps: Fraction, cap: str) -> str:
    mbs = -(-width // 16) * -(-height // 16)
    for name, max_fs, max_mbps in LEVELS:
        if mbs <= max_fs and mbs * float(fps) <= max_mbps:
            return name if float(name) <= float(cap) else cap
    return cap


def _even(x: float) -> int:
    return max(2, round(x / 2) * 2)


# ETSI TS 101 154 (DVB) frame rates, the only ones DVB/HbbTV terminals are required to decode.
LEGAL_RATES = (Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
               Fraction(50), Fraction(60000, 1001), Fraction(60))


def output_fps(fps: float, max_fps: float) -> Fraction:
    """A constant legal rate near the source: anything above the cap halved, then the nearest TS 101 154 rate
    (a variable-rate phone clip averaging 20 fps becomes 23.976, not 20)."""
    if fps <= 0:
        fps = 25.0
    while fps > max_fps + 0.01:
        fps /= 2
    allowed = [r for r in LEGAL_RATES if float(r) <= max_fps + 0.01] or [LEGAL_RATES[0]]
    return min(allowed, key=lambda r: (abs(float(r) - fps), r))


def gop_for(fps: Fraction, target: float) -> tuple[int, float]:
    """Frames per GOP and the segment length. 25 fps gets 96 frames = 3.84 s, which is also exactly 180 AAC
    frames at 48 kHz, so audio and video segments end on the same instant."""
    if fps in (Fraction(25), Fraction(50)):
        gop = int(fps * Fraction(384, 100))
    else:
        gop = max(1, round(float(fps) * target))
    return gop, float(gop / fps)


def plan(facts: Facts, config: LadderConfig = LadderConfig()) -> Plan:
    if not facts.has_video:
        raise PlanError("audio-only files are not supported: the file has no video stream")
    if facts.duration != facts.duration:  # NaN: no duration anywhere
        raise PlanError("the file does not declare a duration (unsupported or damaged container)")
    if facts.duration > config.max_duration:
        raise PlanError(f"the file claims a duration of {facts.duration / 3600:.1f} h, above the limit of "
                        f"{config.max_duration / 3600:.0f} h")
    if facts.width > config.max_width or facts.height > config.max_height:
        raise PlanError(f"the picture is {facts.width}x{facts.height}, larger than the limit of "
                        f"{config.max_width}x{config.max_height}")
    if 0 < facts.frames < config.min_frames:
        raise PlanError(f"the video has only {facts.frames} frame(s); at least {config.min_frames} are needed")
    if facts.duration < config.min_duration:
        raise PlanError(f"the video is {facts.duration:.2f} s long; at least {config.min_duration} s is needed")
    dw, dh = facts.display_width, facts.display_height
    portrait = dh > dw
    short, long_ = (dw, dh) if portrait else (dh, dw)
    aspect = long_ / short
    ref_pixels = lambda s: (s * 16 / 9) * s  # noqa: E731  (bitrates in the table are for 16:9)
    fps = output_fps(facts.fps, config.max_fps)
    fps_factor = 1.0 if fps <= 30 else 1.5
    rungs: list[Rung] = []
    for spec in config.rungs:
        if spec.short_side > short:  # never upscale
            continue
        s, lg = _even(spec.short_side), _even(spec.short_side * aspect)
        w, h = (s, lg) if portrait else (lg, s)
        bitrate = int(spec.video_bitrate * (w * h) / ref_pixels(spec.short_side) * fps_factor)
        rungs.append(Rung(spec.name, w, h, bitrate, int(bitrate * 1.5), bitrate * 2, spec.profile,
                          level_for(w, h, fps, config.level)))
    if not rungs:  # smaller than the smallest rung: one rung at the source size
        spec = config.rungs[-1]
        w, h = _even(dw), _even(dh)
        bitrate = max(150_000, int(spec.video_bitrate * (w * h) / ref_pixels(spec.short_side)))
        rungs.append(Rung(f"{min(w, h)}p", w, h, bitrate, int(bitrate * 1.5), bitrate * 2, "main",
                          level_for(w, h, fps, config.level)))
    gop, seg = gop_for(fps, config.segment_target)
    sources = facts.audio_tracks or ((AudioTrack(0, "und", facts.audio_channels, facts.audio_codec or ""),)
                                     if facts.has_audio else ())
    return Plan(tuple(rungs), fps, gop, seg, facts.interlaced, facts.has_audio, config.audio_bitrate,
                config.audio_sample_rate, config.audio_channels, config.preset, config.max_b_frames,
                facts.duration, source_matrix=facts.assumed_matrix,
                audio_tracks=audio_renditions(sources, config.audio_channels))
