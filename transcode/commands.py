"""ffmpeg argv builders: pure functions of a plan, unit-tested without running anything.

The filter graph (one decode, split to every rung, the storyboard tiles and the poster candidates) is built with
ffmpeg-python and compiled to argv here; nothing in this module runs ffmpeg (transcode/ffmpeg.py does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ffmpeg

from transcode.images import StoryboardSpec
from transcode.ladder import Plan

INIT_NAME = "init-$RepresentationID$.m4s"
MEDIA_NAME = "seg-$RepresentationID$-$Number%05d$.m4s"
MPD_NAME = "manifest.mpd"
STORYBOARD_TILES = "storyboard-%04d.png"  # one small lossless frame per tile; images.tile_sprite joins them
POSTER_NAME = "poster-%d.jpg"
# ffmpeg prints no -progress block until every output has written its header, i.e. received its first frame.
# The poster candidates start 10% in, so the poster output also takes frame 0 (this file) and the job drops it.
POSTER_PRIMER = "poster-0.jpg"

_GLOBAL = ("-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y")
Stream = Any  # ffmpeg-python's FilterableStream (the library ships no type hints)


@dataclass(frozen=True)
class Tuning:
    """How the one-decode ladder spends CPU. Each knob was measured on its own by bench/ladder_tuning.py (the
    table, with what did not help, is "tried" in bench/results/transcode.json); BASELINE is the graph before
    that work, which the benchmark references keep so they stay the same yardstick."""

    cascade: bool = False                 # each rung scaled from the next larger rung rather than the source
    x264_threads: int | None = None       # per encoder; None: x264's own (1.5x cores, per encoder)
    lookahead_threads: int | None = None  # None: x264's own
    rc_lookahead: int | None = None       # None: the preset's
    filter_threads: int | None = None     # -filter_complex_threads; None: ffmpeg's (one per core)
    scale_flags: str = "bicubic"
    share_cores: bool = False             # encoder threads from rung_threads (overrides x264_threads)


BASELINE = Tuning()
# Adopted (bench/results/transcode.json "tried"): x264's default gives each of five encoders 1.5 threads per
# core, 15 frame threads on 2 cores, and their synchronisation costs 2-11% of the CPU (VMAF within 0.1).
# Cascaded scaling saved ~2%, inside the run-to-run noise, and moved the 540p VMAF by -0.25: not adopted.
TUNED = Tuning(share_cores=True)


def rung_threads(plan: Plan, cores: int) -> tuple[int, ...]:
    """x264 threads per rung: the cores shared in proportion to each rung's pixels, at least one. On a small
    machine every encoder gets one (no frame-thread overhead; the five encoders already keep the cores busy);
    on a large one the big rungs get more, so the 1080p encoder does not become the job's wall time."""
    total = sum(r.width * r.height for r in plan.rungs)
    return tuple(max(1, round(cores * r.width * r.height / total)) for r in plan.rungs)


@dataclass(frozen=True)
class Branches:
    """The filter graph's outputs: one stream per rung, then the optional image branches."""

    rungs: tuple[Stream, ...]
    storyboard: Stream | None
    poster: Stream | None


def poster_selection(frames: tuple[int, ...]) -> tuple[int, ...]:
    """The frames the poster branch selects: the candidates plus the primer frame 0 (see POSTER_PRIMER)."""
    return tuple(sorted({0, *frames}))


def _to_rung(stream: Stream, r: Any, matrix: str, tuning: Tuning) -> Stream:
    # BT.709 conversion and tags in the same scale pass: with matching frame tags, ffmpeg adds no extra
    # colour-conversion pass in front of each encoder.
    return (stream.filter("scale", r.width, r.height, flags=tuning.scale_flags, in_color_matrix=matrix,
                          out_color_matrix="bt709", out_range="tv")
            .filter("setparams", colorspace="bt709", color_primaries="bt709", color_trc="bt709", range="tv")
            .filter("setsar", 1).filter("format", "yuv420p"))


def _cascade(video: Stream, plan: Plan, tuning: Tuning) -> tuple[Stream, ...]:
    """Rung i+1 scaled from rung i: a 1080p frame is converted once, and each smaller rung filters a picture
    a quarter or half the size instead of the source."""
    out: list[Stream] = []
    matrix = plan.source_matrix
    for i, r in enumerate(plan.rungs):
        video = _to_rung(video, r, matrix, tuning)
        matrix = "bt709"  # converted by the first pass
        if i == len(plan.rungs) - 1:
            out.append(video)
        else:
            pair = video.filter_multi_output("split")
            out.append(pair.stream(0))
            video = pair.stream(1)
    return tuple(out)


def ladder_graph(source: Stream, plan: Plan, storyboard: StoryboardSpec | None = None,
                 poster: tuple[tuple[int, ...], int, int] | None = None, tuning: Tuning = BASELINE) -> Branches:
    """One decode, one normalisation chain, then split to every rung (and the storyboard and the poster
    candidates, so images cost no second decode)."""
    video = source["v:0"]
    if plan.deinterlace:
        video = video.filter("bwdif", mode="send_frame", deint="interlaced")
    video = video.filter("fps", f"{plan.fps.numerator}/{plan.fps.denominator}")
    n = (1 if tuning.cascade else len(plan.rungs)) + (1 if storyboard else 0) + (1 if poster else 0)
    split = video.filter_multi_output("split") if n > 1 else None
    branches = [split.stream(i) for i in range(n)] if split is not None else [video]
    rungs = _cascade(branches[0], plan, tuning) if tuning.cascade else tuple(
        _to_rung(s, r, plan.source_matrix, tuning) for s, r in zip(branches, plan.rungs, strict=False))
    extra = iter(branches[1 if tuning.cascade else len(plan.rungs):])
    sb = None
    if storyboard:
        sb = next(extra).filter("fps", f"1/{storyboard.interval:g}") \
            .filter("scale", storyboard.tile_width, storyboard.tile_height).filter("setsar", 1)
    shot = None
    if poster:
        frames, w, h = poster
        pick = "+".join(f"eq(n,{f})" for f in poster_selection(frames))
        # w:h already has the display aspect (images.fit_within): scale to it exactly, so anamorphic pixels are
        # made square instead of kept squeezed
        shot = next(extra).filter("select", pick).filter("scale", w, h).filter("setsar", 1)
    return Branches(rungs, sb, shot)


def filter_graph(plan: Plan) -> str:
    """The ladder's -filter_complex as ffmpeg gets it (for tests and for reading a plan by eye)."""
    args = ffmpeg.get_args(ffmpeg.output(*ladder_graph(ffmpeg.input("-"), plan).rungs, "-"))
    return args[args.index("-filter_complex") + 1]


def single_rung(plan: Plan, index: int, *, audio: bool) -> Plan:
    return Plan(**{**plan.__dict__, "rungs": (plan.rungs[index],), "audio": plan.audio and audio,
                    "audio_tracks": plan.audio_tracks[:1]})


def x264_params(plan: Plan, tuning: Tuning = BASELINE) -> str:
    params = [f"open_gop=0:scenecut=0:keyint={plan.gop}:min-keyint={plan.gop}"]
    fixed_threads = None if tuning.share_cores else tuning.x264_threads
    for key, value in (("threads", fixed_threads), ("lookahead-threads", tuning.lookahead_threads),
                       ("rc-lookahead", tuning.rc_lookahead)):
        if value is not None:
            params.append(f"{key}={value}")
    return ":".join(params)


def encoder_options(plan: Plan, tuning: Tuning = BASELINE, cores: int = 1) -> dict[str, Any]:
    """x264 with closed, fixed GOPs so every rung has keyframes at the same instants (per-output options)."""
    opts: dict[str, Any] = {
        "c:v": "libx264", "preset": plan.preset, "g": plan.gop, "keyint_min": plan.gop, "sc_threshold": 0,
        "bf": plan.max_b_frames, "x264-params": x264_params(plan, tuning),
        "color_primaries": "bt709", "color_trc": "bt709", "colorspace": "bt709"}
    if tuning.share_cores:
        opts.update({f"threads:v:{i}": n for i, n in enumerate(rung_threads(plan, cores))})
    for i, r in enumerate(plan.rungs):
        opts.update({f"b:v:{i}": r.video_bitrate, f"maxrate:v:{i}": r.maxrate, f"bufsize:v:{i}": r.bufsize,
                     f"profile:v:{i}": r.profile, f"level:v:{i}": r.level})
    if plan.audio:
        opts.update({"c:a": "aac", "b:a": plan.audio_bitrate, "ar": plan.audio_sample_rate,
                     "ac": plan.audio_channels})
        for j, r in enumerate(plan.audio_tracks):  # surround renditions: their own codec, channels, bitrate
            if r.codec != "aac":
                opts.update({f"c:a:{j}": r.codec, f"ac:a:{j}": r.channels, f"b:a:{j}": r.bitrate})
    return opts


def audio_inputs(src: Stream, plan: Plan) -> list[Stream]:
    """Every source audio track the plan keeps, in plan order (they follow the rungs in the output), through
    its loudness normalisation filters when it has any."""
    if not plan.audio:
        return []
    streams = []
    for t in plan.audio_tracks:
        stream = src[f"a:{t.source_index}"]
        for name, options in t.filters:
            stream = stream.filter(name, **dict(options))
        streams.append(stream)
    return streams or [src["a:0"]]


def adaptation_sets(plan: Plan) -> str:
    """The DASH muxer's grouping: all rungs in one video set, each audio track its own set (one per language,
    as DVB-DASH players choose audio by adaptation set)."""
    sets = ["id=0,streams=v"]
    n = len(plan.rungs)
    for j in range(len(audio_inputs(ffmpeg.input("-"), plan))):
        sets.append(f"id={j + 1},streams={n + j}")
    return " ".join(sets)


def compile_argv(binary: str, *outputs: Any, progress: bool = False, tuning: Tuning = BASELINE) -> list[str]:
    # Global options first (ffmpeg-python would append them last); the rest is ffmpeg-python's compile.
    head = [binary, *_GLOBAL, *(("-progress", "pipe:1") if progress else ())]
    if tuning.filter_threads is not None:
        head += ["-filter_complex_threads", str(tuning.filter_threads)]
    return head + ffmpeg.get_args(ffmpeg.merge_outputs(*outputs) if len(outputs) > 1 else outputs[0])


def transcode_argv(binary: str, source: Path, out_dir: Path, plan: Plan,
                   storyboard: tuple[StoryboardSpec, Path] | None = None,
                   poster: tuple[tuple[int, ...], int, int, Path] | None = None, cores: int = 1) -> list[str]:
    """Single process: decode once, encode every rung, package CMAF with the DASH muxer (DVB-DASH profile),
    and (optionally) write the storyboard tiles (STORYBOARD_TILES in storyboard[1]) and the poster candidates
    (POSTER_NAME in poster[3], numbered from 1; 0 is the primer) from the same frames."""
    src = ffmpeg.input(str(source))
    g = ladder_graph(src, plan, storyboard[0] if storyboard else None, poster[:3] if poster else None, TUNED)
    media = [*g.rungs, *audio_inputs(src, plan)]
    adaptation = adaptation_sets(plan)
    outputs = [ffmpeg.output(
        *media, str(out_dir / MPD_NAME), format="dash", **encoder_options(plan, TUNED, cores), map_metadata=-1,
        map_chapters=-1,
        seg_duration=f"{plan.segment_seconds:.6f}", use_template=1, use_timeline=0, hls_playlist=1,
        mpd_profile="dvb_dash", init_seg_name=INIT_NAME, media_seg_name=MEDIA_NAME, adaptation_sets=adaptation)]
    if storyboard and g.storyboard is not None:
        outputs.append(ffmpeg.output(g.storyboard, str(storyboard[1] / STORYBOARD_TILES), fps_mode="passthrough",
                                     **{"frames:v": storyboard[0].count}))
    if poster and g.poster is not None:
        outputs.append(ffmpeg.output(g.poster, str(poster[3] / POSTER_NAME), fps_mode="passthrough",
                                     start_number=0, **{"frames:v": len(poster_selection(poster[0])), "q:v": 3}))
    return compile_argv(binary, *outputs, progress=True, tuning=TUNED)


def reference_rung_argv(binary: str, source: Path, out: Path, plan: Plan, index: int) -> list[str]:
    """Benchmark reference: one process per rung, each decoding the source (PeerTube/MediaCMS style)."""
    one = single_rung(plan, index, audio=True)
    src = ffmpeg.input(str(source))
    g = ladder_graph(src, one)
    media = [*g.rungs, *([src["a:0"]] if one.audio else [])]
    return compile_argv(binary, ffmpeg.output(*media, str(out), format="mp4", **encoder_options(one)))


def multi_output_argv(binary: str, source: Path, out_dir: Path, plan: Plan,
                      tuning: Tuning = BASELINE, cores: int = 1) -> list[str]:
    """Benchmark lower bound: the same rungs from one decode to plain MP4 files, no packaging (BASELINE: bare
    ffmpeg multi-output as anyone would write it; bench/ladder_tuning.py passes each tried Tuning)."""
    src = ffmpeg.input(str(source))
    g = ladder_graph(src, plan, tuning=tuning)
    outputs = []
    threads = rung_threads(plan, cores)
    for i, stream in enumerate(g.rungs):
        one = single_rung(plan, i, audio=i == 0)
        media = [stream, *([src["a:0"]] if one.audio else [])]
        opts = encoder_options(one, tuning)
        if tuning.share_cores:  # this rung's share of the whole ladder's cores
            opts["threads:v:0"] = threads[i]
        outputs.append(ffmpeg.output(*media, str(out_dir / f"rung{i}.mp4"), **opts))
    return compile_argv(binary, *outputs, tuning=tuning)
