"""Live benchmark: onair's live encoder job against bare ffmpeg producing the same rungs, in the same run.

The publisher costs almost nothing: a pre-encoded 1080p30 clip (H.264 + AAC, 2 s GOP) is sent with
`ffmpeg -re -c copy` (real time, no encode), as OBS would send it. Its CPU is measured (wait4) and left out.

(a) onair: the real `transcode.live` handler (probe, the live ladder in one ffmpeg, our fMP4 segmenter, CMAF
    segments + HLS playlists + dynamic MPD published to a local object store, the poster refresh), fed through a
    loopback relay like the ingest's;
(b) bare ffmpeg: the same argv (same graph, rungs, x264 options, fragmented MP4 per rung), its outputs thrown
    away, fed the same way;
(c) speed: (b) fed as fast as it reads, no `-re`: the realtime factor this machine has for the default ladder.

Also: time from the publisher's first packet to the first playable segment (the job's "live" report: master
playlist, every track's first segment and the MPD are in the store). Glass-to-glass latency in a browser is not
measured here (see the report of issue 13). `ONAIR_BENCH_QUICK=1` uses a 12 s clip instead of 40 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import results_file
from onair.core import job_kinds
from onair.core.jobs import Job, JobContext, Resources
from onair.core.settings import Settings
from onair.core.storage import LocalStore
from transcode.ffmpeg import ffmpeg_binary
from transcode.live import encode_live, encoder_argv, live_plan
from transcode.probe import probe

SEGMENT_SECONDS, MAX_HEIGHT, PRESET = 2.0, 720, "veryfast"   # the defaults a channel gets


def make_source(path: Path, seconds: int) -> None:
    subprocess.run([ffmpeg_binary(None), "-v", "error", "-y", "-f", "lavfi",
                    "-i", f"testsrc2=s=1920x1080:r=30:d={seconds}", "-f", "lavfi",
                    "-i", f"sine=f=440:beep_factor=4:d={seconds}:r=48000", "-c:v", "libx264", "-preset", "veryfast",
                    "-b:v", "5M", "-g", "60", "-keyint_min", "60", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-b:a", "128k", "-shortest", "-f", "flv", str(path)], check=True)


def cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _reap(proc: subprocess.Popen) -> float:
    """Wait for a child and return its own CPU seconds (it still counts in RUSAGE_CHILDREN)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def _publisher(source: Path, realtime: bool = True) -> subprocess.Popen:
    return subprocess.Popen([ffmpeg_binary(None), "-v", "error", *(["-re"] if realtime else []), "-i", str(source),
                             "-c", "copy", "-f", "flv", "pipe:1"], stdout=subprocess.PIPE)


class _Relay(threading.Thread):
    """The ingest relay's part: accept the encoder, check its token line, forward the publisher's bytes."""

    def __init__(self, source: Path, token: str) -> None:
        super().__init__(daemon=True)
        self.source, self.token = source, token
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.first_packet: float | None = None
        self.publisher_cpu = 0.0

    def run(self) -> None:
        conn, _ = self.sock.accept()
        with conn, conn.makefile("rb") as lines:
            assert lines.readline().strip() == self.token.encode()
            pub = _publisher(self.source)
            assert pub.stdout is not None
            while chunk := pub.stdout.read1(65536):
                if self.first_packet is None:
                    self.first_packet = time.monotonic()
                conn.sendall(chunk)
            self.publisher_cpu = _reap(pub)
        self.sock.close()


class _BenchContext(JobContext):
    """The real handler without a database: the first "live" report is when viewers could start playing."""

    playable_at: float | None = None

    async def report(self, progress, *, force: bool = False) -> None:  # type: ignore[override]
        if progress.get("stage") == "live" and self.playable_at is None:
            self.playable_at = time.monotonic()


async def run_onair(source: Path, work: Path) -> tuple[float, float, dict[str, Any], float]:
    store = LocalStore(work / "objects")
    await store.setup()
    relay = _Relay(source, "bench-token")
    payload = {"channel_id": "bench", "event": 1, "relay_host": "127.0.0.1", "relay_port": relay.port,
               "relay_token": "bench-token", "format": "flv", "media_prefix": "live/bench/e1/",
               "media_url": "../e1/", "live_prefix": "live/bench/", "state_key": "live-state/bench/e1.json",
               "segment_seconds": SEGMENT_SECONDS, "dvr_seconds": 7200, "max_height": MAX_HEIGHT, "preset": PRESET,
               "poster_seconds": 10.0, "utc_timing": "http://127.0.0.1/api/v1/time", "asset_id": None}
    job = Job(1, job_kinds.TRANSCODE_LIVE, "live", payload, 1, 1, None, datetime.now(UTC))
    ctx = _BenchContext(job, Resources(settings=Settings(data_dir=work / "data"), pool=None,  # type: ignore[arg-type]
                                       store=store))
    relay.start()
    start = time.perf_counter()
    result = await encode_live(ctx)
    wall = time.perf_counter() - start
    relay.join(10)
    assert relay.first_packet is not None and ctx.playable_at is not None, "no segment was published"
    return wall, ctx.playable_at - relay.first_packet, result, relay.publisher_cpu


def run_bare(source: Path, the_plan: Any, realtime: bool) -> tuple[float, float, float]:
    """(wall s, encoder CPU s, publisher CPU s) of bare ffmpeg with onair's live argv, outputs discarded."""
    n = len(the_plan.rungs) + (1 if the_plan.audio else 0)
    sinks = [os.open(os.devnull, os.O_WRONLY) for _ in range(n)]
    argv = encoder_argv(ffmpeg_binary(None), "flv", the_plan, sinks[:len(the_plan.rungs)],
                        sinks[-1] if the_plan.audio else None)
    pub = _publisher(source, realtime)
    start = time.perf_counter()
    enc = subprocess.Popen(argv, stdin=pub.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           pass_fds=sinks)
    assert pub.stdout is not None
    pub.stdout.close()
    for fd in sinks:
        os.close(fd)
    enc_cpu = _reap(enc)
    wall = time.perf_counter() - start
    return wall, enc_cpu, _reap(pub)


def run(results_dir: Path, quick: bool | None = None) -> dict:
    quick = os.environ.get("ONAIR_BENCH_QUICK", "") not in ("", "0") if quick is None else quick
    seconds = 12 if quick else 40
    with tempfile.TemporaryDirectory(prefix="onair-bench-live-") as tmp:
        work = Path(tmp)
        source = work / "source.flv"
        make_source(source, seconds)
        facts = probe(source)
        the_plan, ladder = live_plan(facts, SEGMENT_SECONDS, MAX_HEIGHT, PRESET)
        cpu0 = cpu_seconds()
        a_wall, first_playable, result, a_pub = asyncio.run(run_onair(source, work / "a"))
        a_cpu = cpu_seconds() - cpu0 - a_pub
        b_wall, b_cpu, _ = run_bare(source, the_plan, realtime=True)
        c_wall, c_cpu, _ = run_bare(source, the_plan, realtime=False)
    media = facts.duration
    figures = {
        "source": {"width": facts.width, "height": facts.height, "fps": facts.fps, "duration_s": media,
                   "publisher": "ffmpeg -re -c copy (its CPU left out)", "quick": quick},
        "ladder": [f"{r['name']} {r['width']}x{r['height']} {r['bitrate'] // 1000}k" for r in ladder["rungs"]],
        "capped": ladder["capped"], "preset": PRESET, "segment_seconds": SEGMENT_SECONDS,
        "cpu_s_per_media_s": {"a_onair": round(a_cpu / media, 3), "b_bare_ffmpeg": round(b_cpu / media, 3),
                              "c_bare_unpaced": round(c_cpu / media, 3)},
        "cpu_ratio_a_over_b": round(a_cpu / b_cpu, 3),
        "target_cpu_ratio": 1.10,
        "realtime_factor_unpaced": round(media / c_wall, 2),
        "target_realtime_factor": 1.15,
        "first_packet_to_first_playable_segment_s": round(first_playable, 2),
        "target_first_playable_s": 5.0,
        "segments_published": result.get("segments"),
        "wall_s": {"a_onair_paced": round(a_wall, 1), "b_bare_paced": round(b_wall, 1),
                   "c_bare_unpaced": round(c_wall, 1)},
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "machine": results_file.machine(),
        "measured_at": results_file.now_iso(),
    }
    return results_file.save(results_dir, "live", figures, quick=quick)


if __name__ == "__main__":
    out = run(Path(__file__).resolve().parent / "results", quick="--quick" in sys.argv[1:] or None)
    print(json.dumps(out, indent=2))
