"""The live encoder: one job per encoder run (queue "live"), claimed like any job so any worker can take a channel.

The ingest front end (streaming/live) has checked the stream key and holds the publisher; it offers the stream
(FLV from RTMP, MPEG-TS from SRT) on a loopback TCP relay named in the payload. This job reads the first
second, probes it, plans a live ladder with transcode/ladder.py (never upscaling, top rung capped), and runs ONE
ffmpeg: one decode, x264 per rung with a fixed GOP of one segment, each rung and the audio written as fragmented
MP4 to its own pipe. We cut segments from those fragments ourselves (transcode/fmp4_stream.py) and publish them to the
object store, then the playlists that list them (transcode/live_publisher.py, transcode/live_manifests.py). A
low-latency channel gets fragments of a part each (~0.5 s, whole frames dividing the GOP), published as LL-HLS parts
and grouped into the same segments. Progress: {"stage": "live",
"input": facts, "ladder": ...} once the first segment is out; the result ends the run (the channel domain decides
between reconnecting and ended).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import ffmpeg

from onair.core import job_kinds
from onair.core.jobs import Handler, JobContext, PermanentJobError
from onair.core.metrics import METRICS
from onair.core.storage import ObjectNotFound
from transcode import commands, fmp4_stream, live_adapt, live_input, live_manifests, live_storage
from transcode.ffmpeg import die_with_parent, ffmpeg_binary
from transcode.ladder import LadderConfig, Plan, PlanError, plan
from transcode.live_publisher import Publisher, load_state
from transcode.probe import Facts, ProbeError, probe

log = logging.getLogger("onair.transcode.live")

PROBE_SECONDS = 1.0        # of input buffered before probing (adds to the time to the first segment)
PROBE_BYTES = 2 * 1024 * 1024
RELAY_CONNECT_SECONDS = 10.0


def live_plan(facts: Facts, segment_seconds: float, max_height: int, preset: str) -> tuple[Plan, dict[str, Any]]:
    """The VOD ladder without rungs above `max_height`; GOP = one segment (never the VOD 3.84 s at 25 fps)."""
    base = LadderConfig()
    rungs = tuple(r for r in base.rungs if r.short_side <= max_height)
    config = dataclasses.replace(base, rungs=rungs or base.rungs[-1:], preset=preset, max_b_frames=0,
                                 segment_target=segment_seconds)
    p = plan(dataclasses.replace(facts, duration=3600.0), config)
    gop = max(1, round(float(p.fps) * segment_seconds))
    p = dataclasses.replace(p, gop=gop, segment_seconds=float(gop / p.fps))
    capped = [r.name for r in base.rungs if r.short_side > max_height and r.short_side <= min(
        facts.display_width, facts.display_height)]
    ladder = {"rungs": [{"name": r.name, "width": r.width, "height": r.height, "bitrate": r.video_bitrate}
                        for r in p.rungs],
              "capped": capped, "max_height": max_height, "preset": preset, "gop": gop,
              "fps": round(float(p.fps), 3), "segment_seconds": round(p.segment_seconds, 3)}
    return p, ladder


# Fragmented MP4 on a pipe: every keyframe starts a fragment, and each is flushed as soon as it is written.
FRAGMENTED = {"f": "mp4", "movflags": "+frag_keyframe+empty_moov+default_base_moof", "flush_packets": 1}
AAC_FRAME = 1024 / 48000


@dataclasses.dataclass(frozen=True)
class Parts:
    """Low latency: fragment lengths that tile the segment. ffmpeg's -frag_duration cuts before the first packet
    at or past the limit, so a limit 1 ms short of N frames gives fragments of exactly N frames."""
    video_frames: int
    audio_frames: int
    fps: float

    @property
    def video_seconds(self) -> float:
        return self.video_frames / self.fps

    @property
    def target(self) -> float:
        """EXT-X-PART-INF:PART-TARGET: no part (video or audio) is longer."""
        return max(self.video_seconds, self.audio_frames * AAC_FRAME)


def low_latency_parts(p: Plan, part_seconds: float) -> Parts:
    """The divisor of the GOP closest to `part_seconds` (ties: the longer part), and audio parts of at least that."""
    fps = float(p.fps)
    divisors = [d for d in range(1, p.gop + 1) if p.gop % d == 0]
    frames = min(divisors, key=lambda d: (abs(d / fps - part_seconds), -d))
    return Parts(frames, max(1, -(-round(frames / fps / AAC_FRAME * 1000) // 1000)), fps)


def encoder_argv(binary: str, fmt: str, p: Plan, video_fds: list[int], audio_fd: int | None,
                 parts: Parts | None = None) -> list[str]:
    """The VOD ladder's graph (commands.ladder_graph), encoded for live: zerolatency, no B-frames, one fMP4 pipe
    per rung and one for audio; with `parts` (low latency), fragments of a part each."""
    video_frag = {"frag_duration": int(parts.video_seconds * 1e6) - 1000} if parts else {}
    audio_seconds = parts.audio_frames * AAC_FRAME if parts else p.segment_seconds
    src = ffmpeg.input("pipe:0", f=fmt)
    graph = commands.ladder_graph(src, p)
    outputs = []
    for i, (stream, fd) in enumerate(zip(graph.rungs, video_fds, strict=True)):
        opts = {**commands.encoder_options(commands.single_rung(p, i, audio=False)), "tune": "zerolatency",
                "bf": 0, "an": None, **FRAGMENTED, **video_frag}
        outputs.append(ffmpeg.output(stream, f"pipe:{fd}", **opts))
    if audio_fd is not None:
        outputs.append(ffmpeg.output(src["a:0"], f"pipe:{audio_fd}", vn=None, **{
            "c:a": "aac", "b:a": p.audio_bitrate, "ar": 48000, "ac": 2, **FRAGMENTED,
            "frag_duration": int(audio_seconds * 1e6) - 1000}))
    return commands.compile_argv(binary, *outputs)


async def _read_head(reader: asyncio.StreamReader, path: Path) -> bytes:
    """The first PROBE_SECONDS of input (by arrival; publishers send in real time) for the probe."""
    head = bytearray(await reader.read(65536))
    deadline = time.monotonic() + PROBE_SECONDS
    while len(head) < PROBE_BYTES and (left := deadline - time.monotonic()) > 0:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), left)
        except TimeoutError:
            break
        if not chunk:
            break
        head += chunk
    await asyncio.to_thread(path.write_bytes, bytes(head))
    return bytes(head)


async def _output(fd: int, tids: list[str], meta: dict[str, Any], pub: Publisher) -> None:
    """One encoder pipe, published as each of `tids` (after a dropped rung, the next rung also feeds its URL)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb"))
    try:
        async for kind, item in fmp4_stream.read_stream(reader):
            for tid in tids:
                if kind == "init":
                    await pub.init(tid, item, meta)
                else:
                    await pub.fragment(tid, item)
    finally:
        transport.close()


@dataclasses.dataclass
class _Run:
    """One ffmpeg over one ladder; a ladder change starts the next run (a new init, an HLS discontinuity)."""
    proc: asyncio.subprocess.Process
    pub: Publisher
    work: asyncio.Future[list[Any]]   # stderr, then each output pipe


class _Encoder:
    """The encoder of one publish: the current run, the input meter, and the step down when it falls behind."""

    def __init__(self, ctx: JobContext, the_plan: Plan, ladder: dict[str, Any], state: dict[str, Any],
                 parts: Parts | None, input_doc: dict[str, Any]) -> None:
        self.ctx, self.plan, self.ladder, self.state, self.parts = ctx, the_plan, ladder, state, parts
        self.p = ctx.payload
        self.input_doc = input_doc
        self.meter = live_input.InputMeter(self.p["format"])
        self.pending: live_adapt.Step | None = None
        self.degraded: dict[str, Any] | None = None
        self.exhausted = False
        self.dropped = 0
        self.run: _Run | None = None

    async def start(self) -> None:
        self.state["runs"] = run = self.state.get("runs", 0) + 1
        pub = Publisher(self.ctx, self.state, run)
        pl = self.plan
        pipes = [os.pipe() for _ in range(len(pl.rungs) + (1 if pl.audio else 0))]
        video_w = [w for _, w in pipes[:len(pl.rungs)]]
        audio_w = pipes[-1][1] if pl.audio else None
        argv = encoder_argv(ffmpeg_binary(self.ctx.resources.settings.ffmpeg), self.p["format"], pl, video_w,
                            audio_w, self.parts)
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, pass_fds=[w for _, w in pipes], preexec_fn=die_with_parent)
        for _, w in pipes:
            os.close(w)
        outputs = []
        for i, rung in enumerate(pl.rungs):
            meta = {"kind": "video", "name": rung.name, "width": rung.width, "height": rung.height,
                    "bandwidth": rung.video_bitrate, "frame_rate": round(float(pl.fps), 3)}
            tids = [f"v{i + self.dropped}", *([f"v{j}" for j in range(self.dropped)] if i == 0 else [])]
            outputs.append(_output(pipes[i][0], tids, meta, pub))
        if pl.audio:
            outputs.append(_output(pipes[-1][0], ["a"], {"kind": "audio", "name": "audio",
                                                         "bandwidth": pl.audio_bitrate}, pub))
        assert proc.stderr is not None
        self.run = _Run(proc, pub, asyncio.gather(proc.stderr.read(), *outputs, return_exceptions=True))

    async def finish(self) -> tuple[int, str]:
        """Wait for the current run to drain; its open segments become (short) segments."""
        assert self.run is not None
        results = await self.run.work
        rc = await self.run.proc.wait()
        await self.run.pub.flush()
        problems = [r for r in results[1:] if isinstance(r, BaseException)]
        if problems:
            log.warning("live %s: output error %r", self.p["channel_id"], problems[0])
        tail = results[0][-300:].decode(errors="replace").strip() if isinstance(results[0], bytes) else ""
        return rc, tail

    async def pump(self, reader: asyncio.StreamReader, head: bytes) -> None:
        """Relay to ffmpeg unit by unit; a pending step restarts the encoder on the next input keyframe."""
        received = METRICS.live_input.labels(self.p["channel_id"])
        assert self.run is not None
        data = head
        try:
            while data:
                received.inc(len(data))
                stdin = self.run.proc.stdin
                assert stdin is not None
                for unit in self.meter.feed(data):   # one unit per input keyframe
                    if unit.keyframe and self.pending is not None:
                        await self._switch()
                        stdin = self.run.proc.stdin
                        assert stdin is not None
                        stdin.write(self.meter.prelude())
                    stdin.write(unit.data)
                await stdin.drain()
                data = await reader.read(65536)
        except (ConnectionError, BrokenPipeError):
            pass
        finally:
            with contextlib.suppress(Exception):
                self.run.proc.stdin.close()  # type: ignore[union-attr]

    async def _switch(self) -> None:
        step = self.pending
        assert step is not None and self.run is not None and self.run.proc.stdin is not None
        self.run.proc.stdin.close()
        rc, tail = await self.finish()
        if rc != 0:
            log.warning("live %s: encoder stopped for a ladder change: %s", self.p["channel_id"], tail or rc)
        self.plan = step.plan
        self.dropped += 1 if step.dropped else 0
        self.ladder = live_adapt.ladder_after(self.ladder, step)
        await self.start()
        self.pending = None   # judged again once the new run has a window of its own
        if self.degraded is not None:
            self.degraded["applied"] = True
        log.warning("live %s: %s", self.p["channel_id"], (self.degraded or {}).get("reason"))
        await self.ctx.report({"ladder": self.ladder, "degraded": self.degraded}, force=True)

    def _judge(self, min_speed: float, window: float) -> None:
        assert self.run is not None
        measured = self.run.pub.measured
        if self.pending is not None or self.exhausted or measured is None or measured[1] < 0.9 * window:
            return
        speed, span = measured
        if not live_adapt.behind(speed, self.meter.speed(window), min_speed):
            return
        why = f"the encoder ran at {speed:.2f}x realtime over {span:.0f} s (below {min_speed:g}x the input's pace)"
        step = live_adapt.next_step(self.plan)
        steps = (self.degraded or {}).get("steps", [])
        if step is None:
            self.exhausted = True
            reason = f"{why}; nothing left to drop, viewers fall behind the live edge"
        else:
            self.pending = step
            steps = [*steps, step.description]
            reason = f"{why}: {step.description}"
        # applied: the step waits for the next input keyframe (at once when nothing is left to drop)
        self.degraded = {"reason": reason, "speed": round(speed, 3), "steps": steps, "applied": step is None,
                         "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    async def watch(self) -> None:
        """Once a second: judge the speed; every other second, refresh the input facts, warnings and `degraded`
        the channel shows."""
        settings = self.ctx.resources.settings
        min_speed, window = settings.live_min_speed, settings.live_speed_window_seconds
        tick = 0
        while True:
            await asyncio.sleep(1.0)
            tick += 1
            try:
                self._judge(min_speed, window)
                if tick % 2:
                    continue   # the facts every 2 s (a step is reported when it is applied)
                assert self.run is not None
                measured = self.run.pub.measured
                input_speed = self.meter.speed(window)
                facts = {**self.input_doc, **self.meter.facts(),
                         "encoder_speed": round(measured[0], 3) if measured else None,
                         "input_speed": round(input_speed, 3) if input_speed else None}
                facts["warnings"] = live_input.warnings(self.input_doc, facts, self.ladder)
                await self.ctx.report({"input": facts, **({"degraded": self.degraded} if self.degraded else {})})
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("live %s: could not refresh the input facts", self.p["channel_id"], exc_info=True)


async def encode_live(ctx: JobContext) -> dict[str, Any]:
    """One encoder run. long: on purpose, it is the run's whole life, start to drain, in one place."""
    p, settings = ctx.payload, ctx.resources.settings
    scratch = settings.data_dir / "scratch" / f"live-{ctx.job.id}"
    await asyncio.to_thread(shutil.rmtree, scratch, True)
    scratch.mkdir(parents=True)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(p["relay_host"], p["relay_port"]),
                                                RELAY_CONNECT_SECONDS)
    except (OSError, TimeoutError):
        raise PermanentJobError("the ingest relay is gone (publisher left before the encoder started)") from None
    writer.write(p.get("relay_token", "").encode() + b"\n")   # the relay hands the stream only to this job
    enc: _Encoder | None = None
    chores: list[asyncio.Task[None]] = []   # live_storage: DVR pruning and the poster, beside the encode
    try:
        head = await _read_head(reader, scratch / "head")
        try:
            facts = await asyncio.to_thread(probe, scratch / "head")
            the_plan, ladder = live_plan(facts, p["segment_seconds"], p["max_height"], p["preset"])
        except (ProbeError, PlanError) as exc:
            raise PermanentJobError(f"unusable input: {exc}") from None
        input_doc = {k: getattr(facts, k) for k in ("video_codec", "audio_codec", "width", "height", "fps",
                                                    "pix_fmt", "audio_channels", "audio_sample_rate")}
        input_doc["warnings"] = live_input.warnings(input_doc, {}, ladder)
        await ctx.report({"stage": "starting", "input": input_doc, "ladder": ladder}, force=True)
        state = await load_state(ctx.resources.store, p["state_key"], p)
        parts = low_latency_parts(the_plan, p["part_seconds"]) if p.get("latency") == "low" else None
        state["part_target"] = round(parts.target, 5) if parts else None
        enc = _Encoder(ctx, the_plan, ladder, state, parts, input_doc)
        chores.append(asyncio.create_task(live_storage.poster_loop(
            ctx.resources.store, state, p, ffmpeg_binary(settings.ffmpeg), scratch)))
        if not p.get("asset_id"):   # a recording keeps every segment
            chores.append(asyncio.create_task(live_storage.prune_loop(ctx.resources.store, state, p)))
        await enc.start()
        chores.append(asyncio.create_task(enc.watch()))
        await enc.pump(reader, head)
        rc, tail = await enc.finish()
        reason = "publisher disconnected" if rc == 0 else f"encoder stopped ({tail or rc})"
        return {"channel_id": p["channel_id"], "event": p["event"], "run": state["runs"], "reason": reason,
                "segments": {t: len(v["segments"]) for t, v in state["tracks"].items()}}
    finally:
        for chore in chores:
            chore.cancel()
        await asyncio.gather(*chores, return_exceptions=True)
        METRICS.encoder_speed.labels(p["channel_id"]).set(0)  # off air: the alert ignores 0
        writer.close()
        proc = enc.run.proc if enc is not None and enc.run is not None else None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        await asyncio.to_thread(shutil.rmtree, scratch, True)


async def package_recording(ctx: JobContext) -> dict[str, Any]:
    """After an event: its live playlists say ENDLIST; with a recording asset, VOD playlists and a static MPD
    over the very same segments (no encode), returned as the asset's outputs for the catalogue."""
    p, store = ctx.payload, ctx.resources.store
    try:
        state = json.loads(await store.get_bytes(p["state_key"]))
    except ObjectNotFound:
        raise PermanentJobError("the event produced no segments") from None
    ended_pub = Publisher(ctx, state, state.get("runs", 0))
    ended_pub.live_reported = True
    await ended_pub.publish(ended=True)
    if not p.get("asset_prefix"):
        return {"ended": True}
    vod = {**state, "media_url": "../"}
    prefix = p["asset_prefix"]
    for tid in vod["tracks"]:
        await store.put_bytes(f"{prefix}hls/{tid}.m3u8", live_manifests.media_playlist(vod, tid, vod=True).encode())
    await store.put_bytes(f"{prefix}dash/manifest.mpd", live_manifests.mpd(vod, now=time.time(), vod=True))
    await store.put_bytes(f"{prefix}hls/master.m3u8", live_manifests.master_playlist(vod).encode())
    poster = await live_storage.copy_poster(store, p["live_prefix"], prefix)
    tracks = vod["tracks"]
    videos = [t for t in tracks.values() if t["kind"] == "video"]
    duration = sum(s[3] for s in videos[0]["segments"]) / videos[0]["timescale"] if videos else 0.0
    outputs = {"hls": "hls/master.m3u8", "dash": "dash/manifest.mpd", "segment_duration": state["segment_seconds"],
               "video": [{"name": t["name"], "width": t["width"], "height": t["height"], "bitrate": t["bandwidth"],
                          "codecs": t["codecs"], "frame_rate": t["frame_rate"]} for t in videos],
               "audio": ({"codecs": tracks["a"]["codecs"], "bitrate": tracks["a"]["bandwidth"], "channels": 2,
                          "sample_rate": 48000} if "a" in tracks else None),
               "poster": poster, "thumbnails": [], "storyboard": None, "recorded_live": True}
    return {"facts": p.get("facts") or {}, "outputs": outputs, "duration": round(duration, 3)}


HANDLERS: dict[str, Handler] = {job_kinds.TRANSCODE_LIVE: encode_live, job_kinds.TRANSCODE_LIVE_VOD: package_recording}
