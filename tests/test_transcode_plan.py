"""Pure planning: ladder, GOP/segment choice, ffmpeg argv, storyboard track."""

from __future__ import annotations

import re
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image

from transcode import commands, images
from transcode.ladder import LadderConfig, PlanError, gop_for, output_fps, plan
from transcode.probe import Facts
from transcode.tasks import TRANSCODE_SPAN, transcode_percent

BASE = Facts(duration=10.0, width=1920, height=1080, display_width=1920, display_height=1080, fps=25.0, vfr=False,
             video_codec="h264", pix_fmt="yuv420p", rotation=0, sar="1:1", interlaced=False, frames=250,
             audio_codec="aac", audio_channels=2, audio_sample_rate=48000, format="mp4", size_bytes=1_000_000)


def test_full_hd_gets_five_rungs_and_tv_safe_settings():
    p = plan(BASE)
    assert [(r.width, r.height) for r in p.rungs] == [(1920, 1080), (1280, 720), (960, 540), (640, 360), (480, 270)]
    assert [r.level for r in p.rungs] == ["4.0", "3.1", "3.1", "3.0", "3.0"]
    assert all(r.profile in ("main", "high") for r in p.rungs)
    assert [r.video_bitrate for r in p.rungs] == sorted((r.video_bitrate for r in p.rungs), reverse=True)
    assert p.gop == 96 and p.segment_seconds == pytest.approx(3.84)


def test_never_upscales_and_keeps_portrait_and_tiny_sources():
    small = plan(replace(BASE, width=640, height=360, display_width=640, display_height=360))
    assert [r.height for r in small.rungs] == [360, 270]
    portrait = plan(replace(BASE, width=1080, height=1920, display_width=1080, display_height=1920))
    assert portrait.rungs[0].width == 1080 and portrait.rungs[0].height == 1920
    assert all(r.height > r.width for r in portrait.rungs)
    tiny = plan(replace(BASE, width=320, height=180, display_width=320, display_height=180))
    assert [(r.width, r.height) for r in tiny.rungs] == [(320, 180)]
    odd = plan(replace(BASE, width=721, height=405, display_width=721, display_height=405))
    assert all(r.width % 2 == 0 and r.height % 2 == 0 for r in odd.rungs)


def test_anamorphic_uses_display_aspect():
    # 1440x1080 with SAR 4:3 displays as 1920x1080
    p = plan(replace(BASE, width=1440, height=1080, display_width=1920, display_height=1080, sar="4:3"))
    assert (p.rungs[0].width, p.rungs[0].height) == (1920, 1080)


@pytest.mark.parametrize(("fps", "expected", "gop", "seg"), [
    (25.0, Fraction(25), 96, 3.84), (50.0, Fraction(25), 96, 3.84), (30.0, Fraction(30), 120, 4.0),
    (29.97, Fraction(30000, 1001), 120, 4.004), (59.94, Fraction(30000, 1001), 120, 4.004),
    (23.4, Fraction(24000, 1001), 96, 4.004), (20.0, Fraction(24000, 1001), 96, 4.004),
    (15.0, Fraction(24000, 1001), 96, 4.004), (48.0, Fraction(24), 96, 4.0), (100.0, Fraction(25), 96, 3.84)])
def test_frame_rate_and_gop(fps, expected, gop, seg):
    out = output_fps(fps, 30.0)
    assert out == expected
    g, s = gop_for(out, 4.0)
    assert g == gop and s == pytest.approx(seg, abs=1e-3)


@pytest.mark.parametrize(("facts", "reason"), [
    (replace(BASE, video_codec=None, width=0, height=0, display_width=0, display_height=0), "audio-only"),
    (replace(BASE, width=7680, height=4320, display_width=7680, display_height=4320), "larger than the limit"),
    (replace(BASE, duration=10 * 24 * 3600.0), "claims a duration"),
    (replace(BASE, frames=1, duration=0.04), "only 1 frame"),
])
def test_refusals_name_the_reason(facts, reason):
    with pytest.raises(PlanError, match=reason):
        plan(facts)


def _transcode_argv(facts: Facts = BASE) -> list[str]:
    spec = images.storyboard_spec(10.0, 1920, 1080)
    return commands.transcode_argv("ffmpeg", Path("in.mp4"), Path("out"), plan(facts), (spec, Path("tiles")),
                                   ((25, 75), 1280, 720, Path("work")))


def _chain(graph: str, label: str) -> list[str]:
    """The filters that lead to `label` in a filter_complex of single-input filters (`[in]filter[out...]`)."""
    producer = {}
    for part in graph.split(";"):
        m = re.fullmatch(r"\[([^\]]+)\](.*?)((?:\[[^\]]+\])+)", part)
        assert m, part
        for out in re.findall(r"\[([^\]]+)\]", m.group(3)):
            producer[out] = (m.group(2), m.group(1))
    chain, at = [], label.strip("[]")
    while at in producer:
        name, at = producer[at]
        chain.append(name)
    return chain


def _value(argv: list[str], option: str) -> str:
    return argv[argv.index(option) + 1]


def test_one_decode_split_to_all_rungs_with_closed_fixed_gop():
    argv = _transcode_argv()
    assert argv == _transcode_argv()  # pure: the same plan compiles to the same argv
    assert argv.count("-i") == 1  # one decode feeds the rungs, the storyboard and the poster candidates
    graph = _value(argv, "-filter_complex")
    assert graph.startswith("[0:v:0]fps=25/1[") and "split=7" in graph and graph.count("scale=") == 7
    # every rung: BT.709 conversion and tags in one scale pass, square pixels, 4:2:0
    assert graph.count("scale=1920:1080:flags=bicubic:in_color_matrix=bt709:out_color_matrix=bt709:out_range=tv[") == 1
    assert graph.count("setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv[") == 5
    assert graph.count("format=yuv420p[") == 5 and graph.count("setsar=1[") == 7
    assert r"select=eq(n\,0)+eq(n\,25)+eq(n\,75)" in graph  # the candidates plus the primer frame 0
    assert _value(argv, "-sc_threshold") == "0"
    assert _value(argv, "-g") == "96" and _value(argv, "-keyint_min") == "96"
    assert "open_gop=0" in _value(argv, "-x264-params")
    assert int(_value(argv, "-bf")) <= 3
    assert _value(argv, "-mpd_profile") == "dvb_dash"
    assert _value(argv, "-ar") == "48000" and _value(argv, "-ac") == "2"
    interlaced = _value(_transcode_argv(replace(BASE, interlaced=True)), "-filter_complex")
    assert interlaced.startswith("[0:v:0]bwdif=deint=interlaced:mode=send_frame[")


def test_outputs_map_rungs_in_ladder_order_with_their_encoder_settings():
    argv = _transcode_argv()
    p = plan(BASE)
    assert argv[:9] == ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y",
                        "-progress", "pipe:1"]  # global options before the input, progress on stdout
    dash = argv[:argv.index("out/manifest.mpd") + 1]
    maps = [dash[i + 1] for i, a in enumerate(dash) if a == "-map"]
    assert len(maps) == 6 and maps[-1] == "0:a:0" and all(m.startswith("[s") for m in maps[:5])
    graph = _value(argv, "-filter_complex")
    for i, r in enumerate(p.rungs):  # the i-th map is the i-th rung's chain, with the i-th rung's settings
        assert any(f.startswith(f"scale={r.width}:{r.height}:flags=bicubic") for f in _chain(graph, maps[i]))
        assert (_value(dash, f"-b:v:{i}"), _value(dash, f"-maxrate:v:{i}"), _value(dash, f"-bufsize:v:{i}"),
                _value(dash, f"-profile:v:{i}"), _value(dash, f"-level:v:{i}")) == (
            str(r.video_bitrate), str(r.maxrate), str(r.bufsize), r.profile, r.level)
    assert _value(dash, "-f") == "dash" and _value(dash, "-map_metadata") == "-1"
    assert _value(dash, "-adaptation_sets") == "id=0,streams=v id=1,streams=5"  # each audio track its own set
    images_out = argv[len(dash):]
    assert images_out[images_out.index("tiles/storyboard-%04d.png") - 1] == "10"  # -frames:v: one per tile
    poster = images_out[images_out.index("tiles/storyboard-%04d.png") + 1:]
    assert _value(poster, "-frames:v") == "3" and _value(poster, "-start_number") == "0"
    assert poster[-1] == "work/poster-%d.jpg" and commands.POSTER_PRIMER == "poster-0.jpg"


def test_benchmark_argvs_compile_from_the_same_graph():
    p = plan(BASE)
    one = commands.reference_rung_argv("ffmpeg", Path("in.mp4"), Path("r.mp4"), p, 1)
    assert "scale=1280:720" in _value(one, "-filter_complex") and "split" not in _value(one, "-filter_complex")
    many = commands.multi_output_argv("ffmpeg", Path("in.mp4"), Path("out"), p)
    assert many.count("-i") == 1 and sum(a.endswith(".mp4") for a in many) == 6  # input + 5 rungs
    assert many.count("0:a:0") == 1


def test_progress_maps_out_time_onto_the_transcode_span():
    assert transcode_percent(0.0, 10.0) == TRANSCODE_SPAN[0]
    assert transcode_percent(5.0, 10.0) == pytest.approx(sum(TRANSCODE_SPAN) / 2, abs=0.1)
    assert transcode_percent(12.0, 10.0) == TRANSCODE_SPAN[1] and transcode_percent(3.0, 0.0) == TRANSCODE_SPAN[0]


def test_storyboard_sprite_is_tiled_row_by_row(tmp_path):
    spec = images.StoryboardSpec(interval=1.0, tile_width=16, tile_height=8, columns=2, rows=2, count=3)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    for i, colour in enumerate(colours):
        Image.new("RGB", (16, 8), colour).save(tmp_path / f"storyboard-{i + 1:04d}.png")
    sprite = images.tile_sprite(tmp_path, spec, tmp_path / "sprite.jpg")
    with Image.open(sprite) as img:
        assert img.size == (32, 16)
        got = [img.getpixel((x, y)) for x, y in ((8, 4), (24, 4), (8, 12), (24, 12))]
    for pixel, want in zip(got, [*colours, (0, 0, 0)], strict=True):
        assert all(abs(a - b) < 40 for a, b in zip(pixel, want, strict=True)), (got, want)
    assert images.tile_sprite(tmp_path / "none", spec, tmp_path / "x.jpg") is None


def test_storyboard_track_points_at_tiles():
    spec = images.storyboard_spec(25.0, 1280, 720)
    vtt = images.storyboard_vtt(spec, 25.0, "storyboard.jpg")
    assert vtt.startswith("WEBVTT")
    assert "00:00:00.000 --> 00:00:01.000\nstoryboard.jpg#xywh=0,0,160,90" in vtt
    assert f"#xywh={160 * 4},90,160,90" in vtt  # the 15th tile: second row, fifth column
    assert vtt.count("-->") == 25


def test_ladder_config_is_data():
    cfg = LadderConfig(rungs=LadderConfig().rungs[1:2])
    assert [r.name for r in plan(BASE, cfg).rungs] == ["720p"]


def test_cascaded_scaling_feeds_each_rung_from_the_next_larger_one():
    p = replace(plan(BASE), source_matrix="bt470bg")
    argv = commands.multi_output_argv("ffmpeg", Path("in.mp4"), Path("out"), p, commands.Tuning(cascade=True))
    graph = _value(argv, "-filter_complex")
    maps = [argv[i + 1] for i, a in enumerate(argv) if a == "-map" and argv[i + 1].startswith("[")]
    for i in range(len(p.rungs)):
        scales = [f.split(":flags")[0] for f in _chain(graph, maps[i]) if f.startswith("scale=")]
        assert scales == [f"scale={q.width}:{q.height}" for q in reversed(p.rungs[:i + 1])]
    # the source's matrix is converted once, by the largest rung's pass; the others scale BT.709 pictures
    assert graph.count("in_color_matrix=bt470bg") == 1 and graph.count("in_color_matrix=bt709") == 4
    assert graph.count("setparams=color_primaries=bt709") == 5 and graph.count("format=yuv420p[") == 5


def test_tuning_reaches_x264_and_the_filter_threads_and_baseline_stays_bare():
    p = plan(BASE)
    tuned = commands.multi_output_argv("ffmpeg", Path("in.mp4"), Path("out"), p,
                                       commands.Tuning(x264_threads=1, lookahead_threads=1, rc_lookahead=5,
                                                       filter_threads=1))
    params = [tuned[i + 1] for i, a in enumerate(tuned) if a == "-x264-params"]
    assert len(params) == 5 and all(x.endswith(":threads=1:lookahead-threads=1:rc-lookahead=5") for x in params)
    assert all("open_gop=0:scenecut=0:keyint=96:min-keyint=96" in x for x in params)
    assert _value(tuned, "-filter_complex_threads") == "1"
    assert tuned.index("-filter_complex_threads") < tuned.index("-i")  # a global option
    bare = commands.multi_output_argv("ffmpeg", Path("in.mp4"), Path("out"), p)  # the benchmark's reference
    assert "-filter_complex_threads" not in bare and "threads=" not in " ".join(bare)
    assert "split=5" in _value(bare, "-filter_complex")


def test_encoder_threads_share_the_cores_by_pixels():
    p = plan(BASE)
    assert commands.rung_threads(p, 2) == (1, 1, 1, 1, 1)  # a small machine: one thread per encoder
    assert commands.rung_threads(p, 16) == (9, 4, 2, 1, 1)  # a large one: the big rungs get more
    argv = commands.transcode_argv("ffmpeg", Path("in.mp4"), Path("out"), p, cores=16)
    assert [_value(argv, f"-threads:v:{i}") for i in range(5)] == ["9", "4", "2", "1", "1"]
    assert "threads=" not in _value(argv, "-x264-params")  # x264-params would override the per-rung count
