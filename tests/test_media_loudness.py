"""Loudness normalisation: an asset's `loudness_target` (broadcast -23 LUFS, web -16 LUFS) is applied by the
audio encode from the measured figures (a plain gain while the true peak allows, the gain and a peak limiter
when it does not), and the asset API reports the source's and the encoded track's loudness."""

from __future__ import annotations

import subprocess

import pytest
from aiohttp import FormData

from tests.conftest import ADMIN
from tests.ingest_tools import wait_for
from transcode import loudness
from transcode.ffmpeg import ffmpeg_binary

# ITU-R BS.1770: a 1 kHz sine at -20 dBFS peak measures -23 LUFS, so 0.04467 (-27 dBFS) measures -30 LUFS.
TONE = "0.04467*sin(2*PI*1000*t)"
# The same tone with a one-sample near full-scale click every half second: as loud (the clicks carry ~3% of
# the energy), but its true peak (~0 dBTP) leaves no room for a +14 dB gain.
CLICKS = TONE + "+0.85*lt(mod(t,0.5),1/48000)"


def test_a_gain_when_the_peak_allows_a_limiter_after_it_when_it_does_not():
    quiet = {"integrated_lufs": -30.0, "true_peak_dbtp": -27.0, "range_lu": 0.0, "threshold_lufs": -40.0}
    assert loudness.normalisation(quiet, "broadcast") == (("volume", (("volume", "7.00dB"),)),)
    assert loudness.method(loudness.normalisation(quiet, "web")) == "gain"
    peaky = {**quiet, "true_peak_dbtp": -3.0}
    chain = loudness.normalisation(peaky, "web")
    assert [name for name, _ in chain] == ["volume", "alimiter"]
    assert dict(chain[0][1])["volume"] == "14.00dB"
    assert dict(chain[1][1])["level"] == "disabled"
    assert loudness.method(chain) == "gain+limiter"
    assert loudness.normalisation(quiet, "off") == ()
    assert loudness.normalisation({**quiet, "integrated_lufs": None}, "web") == ()   # silence: left alone
    assert loudness.normalisation(None, "web") == ()


def _clip(path) -> bytes:
    argv = [ffmpeg_binary(None), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=160x90:r=25:d=4",
            "-f", "lavfi", "-i", f"aevalsrc={TONE}:s=48000:d=4",
            "-f", "lavfi", "-i", f"aevalsrc='{CLICKS}':s=48000:d=4",
            "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast",
            "-c:a", "aac", "-b:a", "192k", str(path)]
    subprocess.run(argv, check=True, timeout=60)
    return path.read_bytes()


async def _upload(client, data: bytes, **fields: str):
    form = FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("file", data, filename="tones.mp4", content_type="video/mp4")
    return await client.post("/api/v1/assets", data=form, headers=ADMIN)


async def test_web_target_is_reached_by_gain_and_by_gain_and_limiter(client, tmp_path):
    resp = await _upload(client, _clip(tmp_path / "tones.mp4"), title="Quiet", loudness_target="web",
                         ladder="per_title")
    assert resp.status == 202, await resp.text()
    body = await wait_for(client, (await resp.json())["id"], within=180)
    assert body["status"] == "ready", body["error"]
    assert body["loudness_target"] == "web"
    # the asset's other media choice travels the same way: the ladder was planned per title
    assert body["ladder"] == "per_title" and body["ladder_applied"]["kind"] == "per_title"
    assert 0 < body["ladder_applied"]["factor"] <= 1.0
    plain, peaky = (t["loudness"] for t in body["audio_tracks"])
    assert plain["integrated_lufs"] == pytest.approx(-30.0, abs=0.5)   # the source, as measured
    assert (plain["method"], peaky["method"]) == ("gain", "gain+limiter")
    for track in (plain, peaky):
        assert track["target_lufs"] == -16.0
        assert track["output"]["integrated_lufs"] == pytest.approx(-16.0, abs=1.0)   # the encoded track
        assert track["output"]["true_peak_dbtp"] <= -0.5   # within the -1 dBTP ceiling, plus AAC overshoot


async def test_a_bad_loudness_target_is_refused_naming_the_field(client, tmp_path):
    resp = await _upload(client, b"not even media", loudness_target="loud")
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    assert "loudness_target" in await resp.text()
    resp = await client.post("/api/v1/assets", headers=ADMIN, json={"source_url": "https://example.com/a.mp4",
                                                                    "ladder": "huge"})
    assert resp.status == 400 and "ladder" in await resp.text()
