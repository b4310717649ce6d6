"""Output verification on real ffmpeg CMAF output: a whole file passes; the damage a full disk does
(a 0-byte segment, a segment cut short, a missing init box) is caught with a reason."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from transcode.ffmpeg import ffmpeg_binary
from transcode.verify import OutputInvalid, verify


@pytest.fixture(scope="module")
def cmaf(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | bytes]:
    out = tmp_path_factory.mktemp("cmaf")
    subprocess.run([ffmpeg_binary(None), "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=160x90:r=25:d=2",
                    "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-f", "hls", "-hls_time", "1",
                    "-hls_segment_type", "fmp4", "-hls_playlist_type", "vod", "-hls_fmp4_init_filename",
                    "init.mp4", "-hls_segment_filename", str(out / "seg-%d.m4s"), str(out / "v.m3u8")],
                   check=True, timeout=60)
    playlist = (out / "v.m3u8").read_text().replace('URI="init.mp4"', 'URI="../cmaf/init.mp4"')
    playlist = "\n".join(f"../cmaf/{ln}" if ln.endswith(".m4s") else ln for ln in playlist.splitlines())
    objects: dict[str, Path | bytes] = {"hls/v.m3u8": playlist.encode(), "hls/master.m3u8": b"#EXTM3U\n"}
    for f in out.iterdir():
        if f.suffix in (".m4s", ".mp4"):
            objects[f"cmaf/{f.name}"] = f
    return objects


def test_whole_output_passes(cmaf: dict[str, Path | bytes]) -> None:
    (track,) = verify(cmaf, 2.0, 25.0)
    assert track.samples == 50 and track.segments == 2


@pytest.mark.parametrize("damage, reason", [
    (lambda b: b"", r"empty \(0 bytes\)"),
    (lambda b: b[: len(b) // 2], "overruns the file"),
])
def test_damaged_segment_is_caught(cmaf: dict[str, Path | bytes], damage, reason: str) -> None:
    key = "cmaf/seg-1.m4s"
    broken = {**cmaf, key: damage(Path(cmaf[key]).read_bytes())}  # type: ignore[arg-type]
    with pytest.raises(OutputInvalid, match=reason):
        verify(broken, 2.0, 25.0)


def test_wrong_duration_and_bad_init_are_caught(cmaf: dict[str, Path | bytes]) -> None:
    with pytest.raises(OutputInvalid, match=r"planned 6\.00 s"):
        verify(cmaf, 6.0, 25.0)
    with pytest.raises(OutputInvalid, match="frames"):
        verify(cmaf, 2.0, 50.0)
    with pytest.raises(OutputInvalid, match="lacks moov"):
        verify({**cmaf, "cmaf/init.mp4": b"\0\0\0\x10ftypiso6\0\0\0\0"}, 2.0, 25.0)
