"""Bad inputs: each ends `failed` with a specific reason (or a correct ladder), no 500, nothing left in storage."""

from __future__ import annotations

import asyncio
import random
import struct
import subprocess
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from tests.conftest import ADMIN
from tests.ingest_tools import make_audio_only, make_clip, upload, wait_for
from tests.test_ingest import objects_of
from transcode.ffmpeg import ffmpeg_binary


def absurd_duration(src: Path, dest: Path) -> Path:
    """A Matroska file whose header claims ~31,700 years (the Segment Info Duration element)."""
    subprocess.run([ffmpeg_binary(None), "-v", "error", "-y", "-i", str(src), "-c", "copy", str(dest)], check=True)
    data = bytearray(dest.read_bytes())
    at = data.find(b"\x44\x89\x88")  # Duration, 8-byte float, in the timecode scale (ms)
    data[at + 3:at + 11] = struct.pack(">d", 1e15)
    dest.write_bytes(bytes(data))
    return dest


def rotate(src: Path, dest: Path) -> Path:
    """A phone clip: landscape pixels with a 90-degree display matrix."""
    subprocess.run([ffmpeg_binary(None), "-v", "error", "-y", "-display_rotation:v:0", "90", "-i", str(src),
                    "-c", "copy", str(dest)], check=True)
    return dest


async def test_each_bad_input_fails_with_its_reason_and_leaves_only_the_original(client, settings, tmp_path):
    good = make_clip(tmp_path / "good.mp4", size="320x180", seconds=2)
    one_frame = make_clip(tmp_path / "one.mp4", size="320x180", seconds=1, audio=False, frames=1)
    huge = make_clip(tmp_path / "8k.mp4", size="7680x4320", seconds=0.2, rate=10, audio=False)
    audio_only = make_audio_only(tmp_path / "audio.m4a")
    junk = random.Random(7).randbytes  # seeded: urandom occasionally looks like an MPEG stream to a demuxer
    # Whether the demuxer rejects junk outright or finds no stream in it depends on the bytes, not on us:
    # either reason tells the editor the same thing.
    unrecognised = ("not a recognised", "no audio or video stream")
    cases = {
        "zero bytes": (b"", "clip.mp4", "video/mp4", "empty"),
        "random bytes": (junk(50_000), "clip.mp4", "video/mp4", unrecognised),
        "truncated mp4": (good.read_bytes()[: good.stat().st_size // 2], "clip.mp4", "video/mp4", "moov atom"),
        "audio only": (audio_only.read_bytes(), "clip.m4a", "audio/mp4", "audio-only"),
        "one frame": (one_frame.read_bytes(), "one.mp4", "video/mp4", "only 1 frame"),
        "8K": (huge.read_bytes(), "8k.mp4", "video/mp4", "7680x4320, larger than the limit"),
        "absurd duration": (absurd_duration(good, tmp_path / "long.mkv").read_bytes(), "long.mkv",
                            "video/x-matroska", "claims a duration"),
        "wrong content type": (b"just some notes\n" * 100, "notes.txt", "text/plain", unrecognised),
        "path traversal name": (junk(1000), "../../etc/passwd.mp4", "video/mp4", unrecognised),
    }
    ids = {}
    for name, (data, filename, ctype, _) in cases.items():
        ids[name] = await upload(client, data, filename=filename, content_type=ctype, title=name)
    for name, (_, _, _, reason) in cases.items():
        body = await wait_for(client, ids[name])
        assert body["status"] == "failed", (name, body)
        reasons = reason if isinstance(reason, tuple) else (reason,)
        assert any(r in body["error"] for r in reasons), (name, body["error"])
        # no media; the original stays until the user deletes the asset (a failure never destroys an upload)
        assert objects_of(settings, ids[name]) == [f"sources/{ids[name]}/original"], name
    resp = await client.post(f"/api/v1/assets/{ids['random bytes']}/retry", headers=ADMIN)
    assert resp.status == 202  # bad input stays bad, but retrying it is the editor's call
    assert (await wait_for(client, ids["random bytes"]))["status"] == "failed"
    assert (await client.delete(f"/api/v1/assets/{ids['random bytes']}", headers=ADMIN)).status == 204
    assert objects_of(settings, ids["random bytes"]) == []
    # the stored key never came from the client's name
    assert not (settings.data_dir / "etc").exists() and not (settings.data_dir.parent / "etc").exists()
    # the worker is still fine: a good clip after all that is ready
    good_id = await upload(client, good.read_bytes())
    assert (await wait_for(client, good_id))["status"] == "ready"


async def test_video_without_audio_and_rotated_phone_clip(client, settings, tmp_path):
    silent = make_clip(tmp_path / "silent.mp4", size="320x180", seconds=2, audio=False)
    sid = await upload(client, silent.read_bytes())
    rotated = rotate(make_clip(tmp_path / "phone.mp4", size="640x360", seconds=2), tmp_path / "rotated.mp4")
    pid = await upload(client, rotated.read_bytes())
    body = await wait_for(client, sid)
    assert body["status"] == "ready", body["error"]
    assert body["audio"] is None and body["facts"]["audio_codec"] is None
    master = (settings.data_dir / "objects" / f"assets/{sid}/hls/master.m3u8").read_text()
    assert "mp4a" not in master and "#EXT-X-MEDIA:TYPE=AUDIO" not in master
    body = await wait_for(client, pid)
    assert body["status"] == "ready", body["error"]
    assert body["facts"]["rotation"] in (90, 270)
    assert [(r["width"], r["height"]) for r in body["renditions"]] == [(360, 640), (270, 480)]


@pytest.fixture
async def small_limit_client(settings):
    app = create_app(settings.with_(max_upload_bytes=100_000), settings.database_url or "", run_worker=False)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_too_large_is_refused_before_it_is_all_read(small_limit_client, settings, db):
    from aiohttp import FormData

    form = FormData()
    form.add_field("file", b"\0" * 200_000, filename="big.mp4", content_type="video/mp4")
    resp = await small_limit_client.post("/api/v1/assets", data=form, headers=ADMIN)
    assert resp.status == 413 and resp.content_type == "application/problem+json"

    async def chunks():  # no Content-Length: refused while streaming, once past the limit
        yield b'--xx\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'
        for _ in range(100):
            yield b"\0" * 10_000

    resp = await small_limit_client.post("/api/v1/assets", data=chunks(), headers={
        **ADMIN, "Content-Type": "multipart/form-data; boundary=xx"})
    assert resp.status == 413
    assert await db.fetchval("SELECT count(*) FROM assets") == 0
    staged = settings.data_dir / "uploads"
    assert not staged.exists() or not any(staged.iterdir())  # the partial upload was removed


async def test_wrong_request_types_are_4xx_problems(client):
    resp = await client.post("/api/v1/assets", data=b"hello", headers={**ADMIN, "Content-Type": "text/plain"})
    assert resp.status == 415 and resp.content_type == "application/problem+json"
    form_without_file = {"title": "x"}
    from aiohttp import FormData

    form = FormData(form_without_file)
    form.add_field("other", b"x", filename="x.bin")
    resp = await client.post("/api/v1/assets", data=form, headers=ADMIN)
    assert resp.status == 400
    for url in ("ftp://example.org/a.mp4", "file:///etc/passwd", "not a url"):
        resp = await client.post("/api/v1/assets", json={"source_url": url}, headers=ADMIN)
        assert resp.status == 400, url
    resp = await client.post("/api/v1/assets", data=form, headers={})
    assert resp.status == 401


async def test_delete_while_transcoding_leaves_no_objects(client, settings, db, tmp_path):
    clip = make_clip(tmp_path / "long.mp4", size="640x360", seconds=10)
    asset_id = await upload(client, clip.read_bytes())
    await wait_for(client, asset_id, ("transcoding", "packaging", "ready"), within=60)
    assert (await client.delete(f"/api/v1/assets/{asset_id}", headers=ADMIN)).status == 204
    # the transcode is cancelled (or finishes); either way its hand-back runs and sweeps what it published
    async with asyncio.timeout(60):
        while True:
            if await db.fetchval("SELECT count(*) FROM jobs WHERE kind = 'catalog.transcoded' AND status = 'done'"):
                break
            await asyncio.sleep(0.2)
    assert objects_of(settings, asset_id) == []
    assert (await client.get(f"/api/v1/assets/{asset_id}", headers=ADMIN)).status == 404
