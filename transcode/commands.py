"""ffmpeg argv builders: pure functions of a plan, unit-tested without running anything."""

from __future__ import annotations

from pathlib import Path

from transcode.images import StoryboardSpec
from transcode.ladder import Plan

INIT_NAME = "init-$RepresentationID$.m4s"
MEDIA_NAME = "seg-$RepresentationID$-$Number%05d$.m4s"
MPD_NAME = "manifest.mpd"


def filter_graph(plan: Plan, storyboard: StoryboardSpec | None = None,
                 poster: tuple[tuple[int, ...], int, int] | None = None) -> str:
    """One decode, one normalisation chain, then split to every rung (and the storyboard sprite and the poster
    candidates, so images cost no second decode)."""
    head = []
    if plan.deinterlace:
        head.append("bwdif=mode=send_frame:deint=interlaced")
    head.append(f"fps={plan.fps.numerator}/{plan.fps.denominator}")
    n = len(plan.rungs) + (1 if storyboard else 0) + (1 if poster else 0)
    head.append(f"split={n}" + "".join(f"[s{i}]" for i in range(n)) if n > 1 else "null[s0]")
    parts = ["[0:v:0]" + ",".join(head)]
    for i, r in enumerate(plan.rungs):
        # BT.709 conversion and tags in the same scale pass: with matching frame tags, ffmpeg adds no extra
        # colour-conversion pass in front of each encoder.
        parts.append(f"[s{i}]scale={r.width}:{r.height}:flags=bicubic:out_color_matrix=bt709:out_range=tv,"
                     f"setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv,"
                     f"setsar=1,format=yuv420p[v{i}]")
    extra = len(plan.rungs)
    if storyboard:
        sb = storyboard
        parts.append(f"[s{extra}]fps=1/{sb.interval:g},scale={sb.tile_width}:{sb.tile_height},setsar=1,"
                     f"tile={sb.columns}x{sb.rows}[sb]")
        extra += 1
    if poster:
        frames, w, h = poster
        pick = "+".join(f"eq(n,{f})" for f in frames)
        parts.append(f"[s{extra}]select='{pick}',scale={w}:{h}:force_original_aspect_ratio=decrease,setsar=1[poster]")
    return ";".join(parts)


def encoder_args(plan: Plan) -> list[str]:
    """x264 with closed, fixed GOPs so every rung has keyframes at the same instants."""
    args = ["-c:v", "libx264", "-preset", plan.preset, "-g", str(plan.gop), "-keyint_min", str(plan.gop),
            "-sc_threshold", "0", "-bf", str(plan.max_b_frames),
            "-x264-params", f"open_gop=0:scenecut=0:keyint={plan.gop}:min-keyint={plan.gop}",
            "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709"]
    for i, r in enumerate(plan.rungs):
        args += [f"-b:v:{i}", str(r.video_bitrate), f"-maxrate:v:{i}", str(r.maxrate),
                 f"-bufsize:v:{i}", str(r.bufsize), f"-profile:v:{i}", r.profile, f"-level:v:{i}", r.level]
    if plan.audio:
        args += ["-c:a", "aac", "-b:a", str(plan.audio_bitrate), "-ar", str(plan.audio_sample_rate),
                 "-ac", str(plan.audio_channels)]
    return args


def maps(plan: Plan) -> list[str]:
    args: list[str] = []
    for i in range(len(plan.rungs)):
        args += ["-map", f"[v{i}]"]
    if plan.audio:
        args += ["-map", "0:a:0"]
    return args


def transcode_argv(ffmpeg: str, source: Path, out_dir: Path, plan: Plan,
                   storyboard: tuple[StoryboardSpec, Path] | None = None,
                   poster: tuple[tuple[int, ...], int, int, Path] | None = None) -> list[str]:
    """Single process: decode once, encode every rung, package CMAF with the DASH muxer (DVB-DASH profile),
    and (optionally) tile the storyboard sprite and grab poster candidates (`poster-%d.jpg`) from the same frames."""
    adaptation = "id=0,streams=v" + (" id=1,streams=a" if plan.audio else "")
    images: list[str] = []
    if storyboard:
        images += ["-map", "[sb]", "-frames:v", "1", "-update", "1", "-q:v", "4", str(storyboard[1])]
    if poster:
        images += ["-map", "[poster]", "-fps_mode", "passthrough", "-frames:v", str(len(poster[0])), "-q:v", "3",
                   str(poster[3] / "poster-%d.jpg")]
    return [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y",
            "-i", str(source),
            "-filter_complex", filter_graph(plan, storyboard[0] if storyboard else None,
                                            poster[:3] if poster else None),
            *images, *maps(plan), *encoder_args(plan),
            "-map_metadata", "-1", "-map_chapters", "-1",
            "-f", "dash", "-seg_duration", f"{plan.segment_seconds:.6f}", "-use_template", "1",
            "-use_timeline", "0", "-hls_playlist", "1", "-mpd_profile", "dvb_dash",
            "-init_seg_name", INIT_NAME, "-media_seg_name", MEDIA_NAME, "-adaptation_sets", adaptation,
            "-progress", "pipe:1",
            str(out_dir / MPD_NAME)]


def reference_rung_argv(ffmpeg: str, source: Path, out: Path, plan: Plan, index: int) -> list[str]:
    """Benchmark reference: one process per rung, each decoding the source (PeerTube/MediaCMS style)."""
    one = Plan(**{**plan.__dict__, "rungs": (plan.rungs[index],)})
    return [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y", "-i", str(source),
            "-filter_complex", filter_graph(one), *maps(one), *encoder_args(one), "-f", "mp4", str(out)]


def multi_output_argv(ffmpeg: str, source: Path, out_dir: Path, plan: Plan) -> list[str]:
    """Benchmark lower bound: the same rungs from one decode to plain MP4 files, no packaging."""
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y", "-i", str(source),
            "-filter_complex", filter_graph(plan)]
    for i, r in enumerate(plan.rungs):
        argv += ["-map", f"[v{i}]", "-c:v", "libx264", "-preset", plan.preset, "-g", str(plan.gop),
                 "-keyint_min", str(plan.gop),
                 "-sc_threshold", "0", "-bf", str(plan.max_b_frames),
                 "-x264-params", f"open_gop=0:scenecut=0:keyint={plan.gop}:min-keyint={plan.gop}",
                 "-b:v", str(r.video_bitrate), "-maxrate", str(r.maxrate), "-bufsize", str(r.bufsize),
                 "-profile:v", r.profile, "-level:v", r.level]
        if plan.audio and i == 0:
            argv += ["-map", "0:a:0", "-c:a", "aac", "-b:a", str(plan.audio_bitrate),
                     "-ar", str(plan.audio_sample_rate), "-ac", str(plan.audio_channels)]
        argv.append(str(out_dir / f"rung{i}.mp4"))
    return argv

