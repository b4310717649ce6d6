"""Source conventions the ladder must follow, checked on generated files: colour matrix of untagged sources
(decoded pixels compared end to end) and TS 101 154 frame rates for variable-rate sources."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import av
import pytest
from PIL import Image

from tests.media_checks import transcode_and_package
from transcode import commands, images
from transcode.ffmpeg import ffmpeg_binary
from transcode.ladder import LEGAL_RATES, plan
from transcode.probe import probe

COLOUR = "0x3060C0"  # a saturated blue: a BT.601/BT.709 mix-up moves its chroma by > 10 code values


def solid(path: Path, size: str, matrix: str, *, tag: bool) -> Path:
    tags = "" if tag else ",setparams=colorspace=unknown:color_primaries=unknown:color_trc=unknown"
    vf = f"scale=out_color_matrix={matrix}:out_range=tv,format=yuv420p{tags}"
    lavfi = f"color=c={COLOUR}:s={size}:r=25:d=1"
    subprocess.run([ffmpeg_binary(None), "-v", "error", "-y", "-f", "lavfi", "-i", lavfi,
                    "-vf", vf, "-c:v", "libx264", "-preset", "ultrafast", str(path)], check=True, timeout=60)
    return path


def centre_yuv(frame: av.VideoFrame) -> list[int]:
    out = []
    for plane in frame.planes:
        data = bytes(plane)
        out.append(data[plane.line_size * (plane.height // 2) + plane.width // 2])
    return out


def first_frame(data: bytes) -> av.VideoFrame:
    with av.open(io.BytesIO(data)) as c:
        return next(c.decode(video=0))


@pytest.mark.parametrize(("size", "expected"), [("1280x720", "bt709"), ("1920x1080", "bt709"),
                                                ("720x576", "bt601"), ("640x360", "bt601")])
def test_untagged_sources_follow_the_hd_sd_convention(tmp_path, size, expected):
    facts = probe(solid(tmp_path / "u.mp4", size, expected, tag=False))
    assert facts.color_matrix == ""
    the_plan = plan(facts)
    assert the_plan.source_matrix == expected
    assert f"in_color_matrix={expected}:out_color_matrix=bt709" in commands.filter_graph(the_plan)
    tagged = probe(solid(tmp_path / "t.mp4", size, "bt601", tag=True))
    assert tagged.color_matrix == "bt601" and plan(tagged).source_matrix == "bt601"  # a tag always wins


def test_untagged_hd_keeps_its_colour_through_the_ladder(tmp_path):
    source = solid(tmp_path / "hd.mp4", "1280x720", "bt709", tag=False)
    site = transcode_and_package(source, tmp_path)
    before = centre_yuv(first_frame(source.read_bytes()))
    rendition = (site / "cmaf/init-0.m4s").read_bytes() + (site / "cmaf/seg-0-00001.m4s").read_bytes()
    frame = first_frame(rendition)
    assert frame.width == 1280
    after = centre_yuv(frame)
    assert all(abs(a - b) <= 2 for a, b in zip(before, after, strict=True)), (before, after)


def test_variable_frame_rate_becomes_the_nearest_dvb_rate(tmp_path):
    vfr = tmp_path / "vfr.mp4"
    # 30 fps with every third frame dropped: ~20 fps on average, irregular timestamps
    subprocess.run([ffmpeg_binary(None), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=3",
                    "-vf", "select='mod(n\\,3)'", "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast",
                    str(vfr)], check=True, timeout=60)
    facts = probe(vfr)
    assert 19 < facts.fps < 21
    the_plan = plan(facts)
    assert the_plan.fps in LEGAL_RATES and float(the_plan.fps) == pytest.approx(23.976, abs=1e-3)
    assert "fps=24000/1001" in commands.filter_graph(the_plan)


def test_anamorphic_sd_poster_is_shown_at_its_display_aspect(tmp_path):
    """720x576 with SAR 64:45 (16:9 PAL): a box 141 stored pixels wide and 200 high is a square on screen."""
    src = tmp_path / "pal169.mp4"
    subprocess.run([ffmpeg_binary(None), "-v", "error", "-y", "-f", "lavfi", "-i",
                    "color=black:s=720x576:r=25:d=2,drawbox=x=290:y=188:w=141:h=200:color=white:t=fill,setsar=64/45",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(src)], check=True, timeout=60)
    facts = probe(src)
    assert (facts.display_width, facts.display_height) == (1024, 576)
    the_plan = plan(facts)
    w, h = images.fit_within(facts.display_width, facts.display_height, 1280, 720)
    out = tmp_path / "out"
    out.mkdir()
    argv = commands.transcode_argv(ffmpeg_binary(None), src, out, the_plan, poster=((10,), w, h, tmp_path))
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, timeout=120)
    poster = tmp_path / "poster-1.jpg"
    assert images.image_size(poster) == (1024, 576)
    with Image.open(poster) as img:
        left, top, right, bottom = img.convert("L").point(lambda v: 255 if v > 128 else 0).getbbox()
    assert abs((right - left) - (bottom - top)) <= 4, (right - left, bottom - top)   # square, not squeezed
    thumbs = images.make_thumbnails(poster, tmp_path)
    assert [(tw, th) for tw, th, _ in thumbs] == [(320, 180), (640, 360)]
    assert all(images.image_size(p) == (tw, th) for tw, th, p in thumbs)   # declared size == the file's size
