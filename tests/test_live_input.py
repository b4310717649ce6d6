"""The live input meter reads FLV and MPEG-TS as they arrive in arbitrary chunks: keyframes (where the encoder may
restart), the keyframe interval, a variable frame rate, and what a restarted decoder needs first."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from transcode.ffmpeg import ffmpeg_binary
from transcode.live_input import InputMeter, Unit, warnings


def _stream(path: Path, fmt: str, *video: str) -> bytes:
    subprocess.run([ffmpeg_binary(None), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=s=160x90:r=25:d=3", "-f", "lavfi", "-i", "sine=d=3:r=48000", "-c:v", "libx264",
                    "-preset", "ultrafast", "-sc_threshold", "0", *video, "-c:a", "aac", "-f", fmt, str(path)],
                   check=True, timeout=60)
    return path.read_bytes()


def _feed(meter: InputMeter, data: bytes, chunk: int = 1000) -> list[Unit]:
    return [u for i in range(0, len(data), chunk) for u in meter.feed(data[i:i + chunk])]


@pytest.mark.parametrize(("fmt", "video"), [("flv", ("-g", "25")), ("mpegts", ("-g", "25")),
                                          ("flv", ("-c:v", "libx265", "-x265-params", "log-level=error:keyint=25"))],
                         ids=["flv", "mpegts", "enhanced-flv-hevc"])
def test_keyframes_intervals_and_prelude(tmp_path: Path, fmt: str, video: tuple[str, ...]) -> None:
    data = _stream(tmp_path / "in", fmt, *video)
    meter = InputMeter(fmt)
    units = _feed(meter, data)
    assert b"".join(u.data for u in units) == data[:len(b"".join(u.data for u in units))]
    assert sum(u.keyframe for u in units) == 3     # 0 s, 1 s, 2 s
    assert meter.keyframe_interval() == pytest.approx(1.0, abs=0.05)
    assert meter.variable_frame_rate() is False
    prelude = meter.prelude()
    assert prelude.startswith(b"FLV") if fmt == "flv" else (len(prelude) == 376 and prelude[0] == 0x47)


def test_a_variable_frame_rate_and_a_long_gop_are_told(tmp_path: Path) -> None:
    data = _stream(tmp_path / "in.flv", "flv", "-g", "250", "-vf", r"select=not(eq(mod(n\,4)\,1))",
                   "-fps_mode", "vfr")
    meter = InputMeter("flv")
    _feed(meter, data)
    facts = meter.facts()
    assert facts["variable_frame_rate"] is True and facts["keyframe_interval"] > 2.5
    probed = {"video_codec": "h264", "pix_fmt": "yuv420p", "width": 160, "height": 90, "fps": 25.0}
    ladder = {"rungs": [{"name": "90p"}], "capped": [], "fps": 25.0, "segment_seconds": 1.0, "max_height": 720}
    facts["keyframe_interval"] = 10.0
    told = warnings(probed, facts, ladder)
    assert len(told) == 2 and "variable frame rate" in told[0] and "10.0 s" in told[1]
