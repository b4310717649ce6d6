"""Pure planning: ladder, GOP/segment choice, ffmpeg argv, storyboard track."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest

from transcode import commands, images
from transcode.ladder import LadderConfig, PlanError, gop_for, output_fps, plan
from transcode.probe import Facts

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


def test_one_decode_split_to_all_rungs_with_closed_fixed_gop():
    p = plan(BASE)
    spec = images.storyboard_spec(10.0, 1920, 1080)
    argv = commands.transcode_argv("ffmpeg", Path("in.mp4"), Path("out"), p, (spec, Path("sb.jpg")),
                                   ((25, 75), 1280, 720, Path("work")))
    assert argv.count("-i") == 1  # one decode feeds the rungs, the storyboard and the poster candidates
    graph = argv[argv.index("-filter_complex") + 1]
    assert "split=7" in graph and graph.count("scale=") == 7 and "setsar=1" in graph
    assert "select='eq(n,25)+eq(n,75)'" in graph
    assert argv[argv.index("-sc_threshold") + 1] == "0"
    assert argv[argv.index("-g") + 1] == "96" and argv[argv.index("-keyint_min") + 1] == "96"
    assert "open_gop=0" in argv[argv.index("-x264-params") + 1]
    assert int(argv[argv.index("-bf") + 1]) <= 3
    assert argv[argv.index("-mpd_profile") + 1] == "dvb_dash"
    assert argv[argv.index("-ar") + 1] == "48000" and argv[argv.index("-ac") + 1] == "2"
    interlaced = commands.filter_graph(plan(replace(BASE, interlaced=True)))
    assert interlaced.startswith("[0:v:0]bwdif")


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
