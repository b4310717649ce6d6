"""Publishers whose media is awkward or broken: 4K60, 10-bit HEVC (enhanced RTMP), a variable frame rate, a 10 s
keyframe interval, garbage after a valid start. Each is handled and said so (input facts, warnings, ladder) or
ends with a reason; afterwards the server has the children and sockets it had before, and a good publish on the
same channel goes live."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from onair.app import create_app
from tests.live_helpers import channel, create, live_settings, open_sockets, publish, server_children, wait_status
from transcode.ffmpeg import ffmpeg_binary

FFMPEG = ffmpeg_binary(None)


@pytest.fixture
async def live(settings) -> AsyncIterator[TestClient]:
    s = live_settings(settings, live_stall_seconds=3.0, live_reconnect_seconds=3.0, live_latency="standard")
    async with TestClient(TestServer(create_app(s, s.database_url or ""))) as c:
        yield c


def _clip(path: Path, *args: str) -> Path:
    """A short clip made once, published with -c copy (costs the publisher nothing)."""
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args, str(path)], check=True, timeout=120)
    return path


def _send(url: str, clip: Path, loops: int = -1) -> subprocess.Popen:
    return subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", str(loops), "-i",
                             str(clip), "-c", "copy", "-f", "flv", url],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _stop(pub: subprocess.Popen) -> None:
    pub.kill()
    await asyncio.to_thread(pub.wait, 30)


async def _until(client: TestClient, cid: str, check: Callable[[dict], bool], within: float = 30) -> dict:
    async with asyncio.timeout(within):
        while not check(body := await channel(client, cid)):
            await asyncio.sleep(0.3)
    return body


async def _bad_input(client: TestClient, run: Callable[[dict], Awaitable[None]]) -> None:
    """Create a channel, take the baseline, run the bad publish, then: the channel ends, children and sockets are
    back to the baseline, and a good publisher goes live on the same channel."""
    body = await create(client)
    pooled = {5432, client.server.port or 0}
    await asyncio.sleep(1.0)   # the SRT gatekeeper is up
    children, sockets = server_children(), open_sockets(pooled)
    await run(body)
    await wait_status(client, body["id"], "ended", within=30)
    async with asyncio.timeout(20):
        while (server_children(), open_sockets(pooled)) != (children, sockets):
            await asyncio.sleep(0.3)
    assert (await client.get("/healthz")).status == 200
    good = publish(body["ingest"]["rtmp"], 30)
    try:
        await wait_status(client, body["id"], "live")
    finally:
        await _stop(good)


async def test_4k60_is_capped_and_said_so(live: TestClient, tmp_path: Path) -> None:
    clip = _clip(tmp_path / "uhd.flv", "-f", "lavfi", "-i", "color=c=0x336699:s=3840x2160:r=60:d=1",
                 "-f", "lavfi", "-i", "sine=d=1:r=48000", "-c:v", "libx264", "-preset", "ultrafast", "-g", "60",
                 "-pix_fmt", "yuv420p", "-c:a", "aac")

    async def run(body: dict) -> None:
        # one second of it: what the channel says comes from the probe, before the (slow) first 4K decode is out
        pub = _send(body["ingest"]["rtmp"], clip, loops=0)
        try:
            on = await _until(live, body["id"], lambda b: bool((b["input"] or {}).get("width")))
        finally:
            await asyncio.to_thread(pub.wait, 30)
        assert (on["input"]["width"], on["input"]["height"], on["input"]["fps"]) == (3840, 2160, 60), on["input"]
        ladder = on["ladder"]
        assert ladder["rungs"][0]["name"] == "360p" and ladder["fps"] == 30, ladder
        assert {"1080p", "720p", "540p"} <= set(ladder["capped"]), ladder
        assert any("3840x2160 at 60 fps" in w and "360p" in w for w in on["input"]["warnings"]), on["input"]

    await _bad_input(live, run)


async def test_10_bit_hevc_over_enhanced_rtmp_is_reencoded(live: TestClient, tmp_path: Path) -> None:
    clip = _clip(tmp_path / "hevc.flv", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=2",
                 "-f", "lavfi", "-i", "sine=d=2:r=48000", "-c:v", "libx265", "-preset", "ultrafast",
                 "-x265-params", "log-level=error:keyint=25", "-pix_fmt", "yuv420p10le", "-c:a", "aac")

    async def run(body: dict) -> None:
        pub = _send(body["ingest"]["rtmp"], clip)
        try:
            on = await wait_status(live, body["id"], "live")
            master = await (await live.get(f"/live/{body['id']}/hls/master.m3u8")).text()
        finally:
            await _stop(pub)
        assert (on["input"]["video_codec"], on["input"]["pix_fmt"]) == ("hevc", "yuv420p10le"), on["input"]
        assert any("re-encoded as 8-bit H.264" in w for w in on["input"]["warnings"]), on["input"]
        assert 'CODECS="avc1.' in master, master

    await _bad_input(live, run)


async def test_variable_frame_rate_is_made_constant(live: TestClient) -> None:
    async def run(body: dict) -> None:
        # every 4th frame dropped and the gaps kept: 40 and 80 ms frame intervals
        pub = publish(body["ingest"]["rtmp"], 30, video_args=(
            "-g", "25", "-vf", r"select=not(eq(mod(n\,4)\,1))", "-fps_mode", "vfr"))
        try:
            await wait_status(live, body["id"], "live")
            on = await _until(live, body["id"], lambda b: bool((b["input"] or {}).get("variable_frame_rate")))
        finally:
            await _stop(pub)
        assert any("variable frame rate" in w and "constant at 25 fps" in w for w in on["input"]["warnings"]), on

    await _bad_input(live, run)


async def test_a_10_s_keyframe_interval_is_rekeyed(live: TestClient) -> None:
    async def run(body: dict) -> None:
        pub = publish(body["ingest"]["srt"], 30, fmt="mpegts",
                      video_args=("-g", "250", "-keyint_min", "250", "-sc_threshold", "0"))
        try:
            await wait_status(live, body["id"], "live")
            on = await _until(live, body["id"], lambda b: ((b["input"] or {}).get("keyframe_interval") or 0) > 4)
            # our segments stay one (1 s) GOP long: the encoder keys them itself
            async with asyncio.timeout(20):
                while len(durations := await _durations(live, body["id"])) < 3:
                    await asyncio.sleep(0.5)
        finally:
            await _stop(pub)
        assert any("keyframe interval" in w and "re-keys every 1" in w for w in on["input"]["warnings"]), on
        assert all(abs(d - 1.0) < 0.05 for d in durations), durations

    await _bad_input(live, run)


async def _durations(client: TestClient, cid: str) -> list[float]:
    playlist = await (await client.get(f"/live/{cid}/hls/v0.m3u8")).text()
    return [float(line[8:].rstrip(",")) for line in playlist.splitlines() if line.startswith("#EXTINF:")]


class _Garbler:
    """A TCP proxy in front of the RTMP port: passes the publisher's bytes through until `garble` is set, then
    sends random bytes of the same length (garbage after a valid start)."""

    def __init__(self, port: int) -> None:
        self.port, self.garble = port, False
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.port)

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter, garble: bool) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(bytes(i * 37 % 251 for i in range(len(data))) if garble and self.garble else data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(copy(reader, up_w, True), copy(up_r, writer, False), return_exceptions=True)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_garbage_after_a_valid_start_is_refused_with_a_reason(live: TestClient) -> None:
    async def run(body: dict) -> None:
        ingest = body["ingest"]["rtmp"]
        port = int(ingest.split(":")[2].split("/")[0])
        proxy = _Garbler(port)
        url = ingest.replace(f":{port}/", f":{await proxy.start()}/")
        pub = publish(url, 30)
        try:
            await wait_status(live, body["id"], "live")
            proxy.garble = True
            dropped = await wait_status(live, body["id"], "reconnecting", within=15)
        finally:
            await _stop(pub)
            await proxy.close()
        assert "invalid RTMP data" in dropped["status_reason"], dropped

    await _bad_input(live, run)
