"""Per-title ladder: pure planning (windows, probe size, factor, scaling) and the real probe on two generated
extremes (a still card and full-frame noise), which must land on the floor and the ceiling."""

from __future__ import annotations

import subprocess
from fractions import Fraction

import pytest

from transcode import commands, per_title
from transcode.ffmpeg import ffmpeg_binary
from transcode.ladder import plan
from transcode.probe import Facts


def test_windows_spread_over_the_asset_or_take_all_of_a_short_one():
    assert per_title.windows(4.0) == [(0.0, 4.0)]
    wins = per_title.windows(60.0)
    assert [length for _, length in wins] == [2.0, 2.0, 2.0]
    assert [start for start, _ in wins] == [9.0, 29.0, 49.0]


def test_probe_size_keeps_the_shape_and_never_upscales():
    assert per_title.probe_size(1920, 1080) == (480, 270)
    assert per_title.probe_size(1080, 1920) == (270, 480)
    assert per_title.probe_size(320, 180) == (320, 180)


def test_factor_is_clamped_between_floor_and_the_fixed_table():
    assert per_title.factor(10.0) == 1.0
    assert per_title.factor(0.0) == per_title.FLOOR_FACTOR
    mid = per_title.factor(per_title.REFERENCE_BPP / 2)
    assert per_title.FLOOR_FACTOR < mid < 1.0


def _facts(w: int, h: int) -> Facts:
    return Facts(duration=10.0, width=w, height=h, display_width=w, display_height=h, fps=25.0, vfr=False,
                 video_codec="h264", pix_fmt="yuv420p", rotation=0, sar="1:1", interlaced=False, frames=250,
                 audio_codec=None, audio_channels=0, audio_sample_rate=0, format="mp4", size_bytes=1)


def test_scaling_keeps_sizes_levels_and_gop_and_shows_in_the_argv():
    fixed = plan(_facts(1280, 720))
    half = per_title.scaled(fixed, 0.5)
    assert [(r.width, r.height, r.level) for r in half.rungs] == [(r.width, r.height, r.level) for r in fixed.rungs]
    assert half.gop == fixed.gop and half.fps == Fraction(25)
    assert [r.video_bitrate for r in half.rungs] == [int(r.video_bitrate * 0.5) for r in fixed.rungs]
    assert half.extra["per_title_factor"] == 0.5
    opts = commands.encoder_options(half)
    assert opts["b:v:0"] == half.rungs[0].video_bitrate and opts["maxrate:v:0"] == half.rungs[0].maxrate


@pytest.mark.parametrize(("source", "expected"), [("color=c=0x336699:s=640x360:r=25:d=3", "floor"),
                                                  ("nullsrc=s=640x360:r=25:d=3,geq=random(1)*255:128:128",
                                                   "ceiling")])
def test_the_probe_tells_a_still_card_from_noise(tmp_path, source, expected):
    path = tmp_path / "src.mp4"
    subprocess.run([ffmpeg_binary(None), "-v", "error", "-y", "-f", "lavfi", "-i", source, "-c:v", "libx264",
                    "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", str(path)], check=True, timeout=60)
    argv = per_title.probe_argv(ffmpeg_binary(None), str(path), 3.0, 640, 360, 25.0)
    coded = subprocess.run(argv, check=True, capture_output=True, timeout=60).stdout
    share = per_title.factor(per_title.bits_per_pixel(len(coded), 3.0, 640, 360, 25.0))
    assert share == (per_title.FLOOR_FACTOR if expected == "floor" else 1.0)
