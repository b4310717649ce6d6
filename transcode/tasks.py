"""Job handlers of the transcode domain.

`transcode.asset` payload: {"source_key": str, "prefix": "assets/<id>/"}. It reports its stage and percent with
JobContext.report and returns {"facts", "outputs", "duration"}; the job's `on_done` hands that to whichever domain
asked (the catalogue), so this package never imports it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from onair.core import job_kinds
from onair.core.jobs import Handler, JobContext, PermanentJobError, TransientJobError
from onair.core.metrics import METRICS
from onair.core.settings import Settings
from transcode import (
    commands,
    dash_thumbnails,
    generations,
    images,
    loudness,
    manifest_tracks,
    packaging,
    per_title,
    verify,
)
from transcode.ffmpeg import FFmpegError, die_with_parent, ffmpeg_binary, run_ffmpeg, within
from transcode.ladder import LadderConfig, Plan, PlanError, plan
from transcode.probe import Facts, ProbeError, probe

log = logging.getLogger("onair.transcode")

KIND = job_kinds.TRANSCODE_ASSET
PUBLISH_CONCURRENCY = 8

MPD_KEY = "dash/manifest.mpd"
MASTER_KEY = "hls/master.m3u8"

# Overall percent: probing 0-2, transcoding 2-90, packaging/publishing 90-100.
TRANSCODE_SPAN = (2.0, 90.0)


def transcode_percent(seconds: float, duration: float) -> float:
    """ffmpeg's out_time against the probed duration, mapped onto TRANSCODE_SPAN."""
    lo, hi = TRANSCODE_SPAN
    frac = min(max(seconds / duration, 0.0), 1.0) if duration > 0 else 0.0
    return round(lo + (hi - lo) * frac, 1)


def scratch_dir(ctx: JobContext) -> Path:
    return ctx.resources.settings.data_dir / "scratch" / f"job-{ctx.job.id}"


def disk_short(path: Path, settings: Settings) -> bool:
    """Below the free-space threshold: a failure now is the disk's fault, not the media's."""
    try:
        return shutil.disk_usage(path).free < settings.min_free_bytes
    except OSError:
        return True


def _not_the_media(what: str, exc: Exception, scratch: Path, settings: Settings) -> Exception | None:
    if disk_short(scratch, settings) or "No space left" in str(exc):
        return TransientJobError(f"{what} with the data disk full ({exc})")
    return None


def timeout_for(duration: float) -> float:
    """Generous but bounded: 20x realtime plus a minute of start-up (veryfast x264 runs faster than 1x)."""
    return 60.0 + 20.0 * duration


async def _source(ctx: JobContext, key: str, scratch: Path) -> Path:
    store = ctx.resources.store
    local = store.local_path(key)
    if local is not None and local.exists():
        return local
    dest = scratch / "source"
    await store.download(key, dest)
    return dest


async def _publish(store: Any, prefix: str, objects: dict[str, Path | bytes], order: list[str],
                   first_manifest: int) -> None:
    """Segments concurrently, then manifests one by one in order (each manifest after what it references)."""
    sem = asyncio.Semaphore(PUBLISH_CONCURRENCY)

    async def put(key: str) -> None:
        async with sem:
            value = objects[key]
            if isinstance(value, bytes):
                await store.put_bytes(prefix + key, value)
            else:
                await store.put_file(prefix + key, value)

    await asyncio.gather(*(put(k) for k in order[:first_manifest]))
    for key in order[first_manifest:]:
        await put(key)


def _pin(objects: dict[str, Path | bytes], generation: int) -> None:
    """A replacement's top manifests are served at the public URLs: their references name the generation."""
    for key, pin in ((MASTER_KEY, generations.pin_master), (MPD_KEY, generations.pin_mpd)):
        value = objects.get(key)
        if generation and value is not None:
            raw = value if isinstance(value, bytes) else value.read_bytes()
            objects[key] = pin(raw.decode(), generation).encode() if key == MASTER_KEY else pin(raw, generation)


def _has_content(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


def _poster_candidates(work: Path, frames: tuple[int, ...]) -> list[Path]:
    primer = work / commands.POSTER_PRIMER if 0 not in frames else None  # frame 0 only primed the output
    return [p for p in sorted(work.glob("poster-*.jpg")) if _has_content(p) and p != primer]


async def _images(facts: Facts, work: Path, frames: tuple[int, ...], tiles: Path,
                  spec: images.StoryboardSpec) -> tuple[dict[str, Path | bytes], dict[str, Any]]:
    candidates = _poster_candidates(work, frames)
    objects: dict[str, Path | bytes] = {}
    doc: dict[str, Any] = {"poster": None, "thumbnails": [], "storyboard": None}
    if candidates:
        poster = await asyncio.to_thread(images.pick_poster, candidates)
        objects["images/poster.jpg"] = poster
        doc["poster"] = "images/poster.jpg"
        doc["poster_size"] = dict(zip(("width", "height"), images.image_size(poster), strict=True))
        for w, h, path in await asyncio.to_thread(images.make_thumbnails, poster, work):
            key = f"images/{path.name}"
            objects[key] = path
            doc["thumbnails"].append({"width": w, "height": h, "key": key})
    sprite = await asyncio.to_thread(images.tile_sprite, tiles, spec, work / "storyboard.jpg")
    if sprite is not None:
        objects["images/storyboard.jpg"] = sprite
        objects["images/storyboard.vtt"] = images.storyboard_vtt(spec, facts.duration, "storyboard.jpg").encode()
        doc["storyboard"] = {"vtt": "images/storyboard.vtt", "image": "images/storyboard.jpg",
                             "tile_width": spec.tile_width, "tile_height": spec.tile_height,
                             "interval": spec.interval}
    return objects, doc


def _add_images(objects: dict[str, Path | bytes], image_objects: dict[str, Path | bytes],
                spec: images.StoryboardSpec) -> None:
    """The images join the outputs; the storyboard sprite is also listed in the MPD (DASH thumbnails)."""
    objects.update(image_objects)
    sprite, mpd = image_objects.get("images/storyboard.jpg"), objects.get(MPD_KEY)
    if isinstance(sprite, Path) and isinstance(mpd, bytes):
        objects[MPD_KEY] = dash_thumbnails.add_image_set(mpd, spec, "images/storyboard.jpg", sprite.stat().st_size)


async def transcode_asset(ctx: JobContext) -> dict[str, Any]:
    settings, store = ctx.resources.settings, ctx.resources.store
    source_key, prefix = ctx.payload["source_key"], ctx.payload["prefix"]
    ffmpeg = ffmpeg_binary(settings.ffmpeg)
    scratch = scratch_dir(ctx)
    await asyncio.to_thread(shutil.rmtree, scratch, True)  # what a killed earlier attempt left behind
    scratch.mkdir(parents=True)
    published = False
    measuring: asyncio.Task | None = None
    try:
        await ctx.report({"stage": "probing", "percent": 0.0}, force=True)
        source = await _source(ctx, source_key, scratch)
        facts, the_plan = await _planned(ffmpeg, source, ctx.payload.get("ladder") or settings.ladder)
        await ctx.report({"stage": "transcoding", "percent": TRANSCODE_SPAN[0], "facts": facts.to_json()},
                         force=True)
        out = scratch / "out"
        out.mkdir()
        spec = images.storyboard_spec(facts.duration, facts.display_width, facts.display_height)
        tiles = scratch / "tiles"
        tiles.mkdir()

        poster_frames = tuple(sorted({int(t * float(the_plan.fps)) for t in images.poster_times(facts.duration)}))
        poster = (poster_frames, *images.fit_within(facts.display_width, facts.display_height, 1280, 720), scratch)
        target = ctx.payload.get("loudness_target") or settings.loudness_target
        measuring = asyncio.create_task(_loudness(ffmpeg, source, the_plan, facts.duration))
        if target in loudness.TARGETS and the_plan.audio_tracks:
            # normalising needs the figures before the encode: the gain is part of its filter graph
            the_plan = _normalised(the_plan, await measuring, target)
        argv = commands.transcode_argv(ffmpeg, source, out, the_plan, (spec, tiles), poster, os.cpu_count() or 1)
        await _encode(ctx, argv, facts.duration, scratch)
        await ctx.report({"stage": "packaging", "percent": TRANSCODE_SPAN[1]}, force=True)
        objects, order, outputs = _package(out, the_plan, scratch, settings)
        image_objects, image_doc = await _images(facts, scratch, poster_frames, tiles, spec)
        first_manifest = next(i for i, k in enumerate(order) if not k.startswith(packaging.SEGMENTS_DIR + "/"))
        order = order[:first_manifest] + list(image_objects) + order[first_manifest:]
        _add_images(objects, image_objects, spec)
        try:  # nothing is published unless every output reads back whole (a full disk truncates silently)
            await asyncio.to_thread(verify.verify, objects, facts.duration, float(the_plan.fps))
        except verify.OutputInvalid as exc:
            raise (_not_the_media("outputs failed verification", exc, scratch, settings) or exc) from None
        _pin(objects, int(ctx.payload.get("generation") or 0))
        published = True
        await _publish(store, prefix, objects, order, first_manifest + len(image_objects))
        outputs.update(image_doc, ladder={"kind": the_plan.extra.get("ladder", "fixed"),
                                          "factor": the_plan.extra.get("per_title_factor", 1.0)})
        results = await _loudness_report(ffmpeg, out, the_plan, await measuring, target, facts.duration)
        for track, report in zip(outputs["audio_tracks"], results, strict=False):
            track["loudness"] = report
        await ctx.report({"stage": "packaging", "percent": 100.0}, force=True)
        return {"facts": facts.to_json(), "outputs": outputs, "duration": facts.duration}
    except PermanentJobError:
        if published:  # never leave half an asset behind for input that will not get better
            await store.delete_prefix(prefix)
        raise
    finally:
        if measuring is not None and not measuring.done():
            measuring.cancel()
        await asyncio.to_thread(shutil.rmtree, scratch, True)


async def _planned(binary: str, source: Path, ladder: str) -> tuple[Facts, Plan]:
    try:
        facts = await asyncio.to_thread(probe, source)
        the_plan = plan(facts, LadderConfig())
    except (ProbeError, PlanError) as exc:
        raise PermanentJobError(str(exc)) from None
    if ladder == "per_title":
        the_plan = await _per_title(binary, source, facts, the_plan)
    return facts, the_plan


async def _per_title(binary: str, source: Path, facts: Facts, the_plan: Plan) -> Plan:
    """The fixed plan scaled by the complexity probe; a failed probe keeps the fixed ladder (it costs bits,
    never the asset)."""
    argv = per_title.probe_argv(binary, str(source), facts.duration, facts.display_width, facts.display_height,
                                float(the_plan.fps))
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, preexec_fn=die_with_parent if os.name == "posix" else None)
        coded, _ = await within(proc, proc.communicate(), timeout_for(per_title.PROBE_WINDOWS *
                                                                      per_title.PROBE_WINDOW_SECONDS))
    except (TimeoutError, OSError) as exc:
        log.warning("per-title probe failed, fixed ladder kept: %s", exc)
        return the_plan
    if proc.returncode != 0 or not coded:
        log.warning("per-title probe exited with %s, fixed ladder kept", proc.returncode)
        return the_plan
    bpp = per_title.bits_per_pixel(len(coded), facts.duration, facts.display_width, facts.display_height,
                                   float(the_plan.fps))
    return per_title.scaled(the_plan, per_title.factor(bpp))


async def _loudness(binary: str, source: Path, the_plan: Plan, duration: float) -> list[dict[str, Any] | None]:
    """EBU R128 figures per output audio track, beside the encode; a failed measurement costs the figures
    (None), never the asset."""
    tracks = [t.source_index for t in the_plan.audio_tracks] if the_plan.audio else []
    try:
        return await loudness.measure(binary, str(source), tracks, timeout_for(duration))
    except (FFmpegError, TimeoutError, OSError) as exc:
        log.warning("loudness measurement failed: %s", exc)
        return [None] * len(tracks)


def _normalised(the_plan: Plan, measured: list[dict[str, Any] | None], target: str) -> Plan:
    tracks = tuple(replace(t, filters=loudness.normalisation(m, target))
                   for t, m in zip(the_plan.audio_tracks, measured, strict=False))
    return replace(the_plan, audio_tracks=tracks)


def _whole_track(out: Path, rep: int) -> Path:
    """A representation's init and media segments joined: one playable fragmented MP4."""
    whole = out.parent / f"loudness-{rep}.mp4"
    with whole.open("wb") as f:
        for part in [out / f"init-{rep}.m4s", *sorted(out.glob(f"seg-{rep}-*.m4s"))]:
            f.write(part.read_bytes())
    return whole


async def _loudness_report(binary: str, out: Path, the_plan: Plan, measured: list[dict[str, Any] | None],
                           target: str, duration: float) -> list[dict[str, Any] | None]:
    """Per output track: the source's figures, the target and how it was reached, and (when normalised) the
    loudness of the encoded track itself, measured from its published segments."""
    normalised = [t.filters for t in the_plan.audio_tracks]
    after: list[dict[str, Any] | None] = [None] * len(normalised)
    if any(normalised):
        reps = [len(the_plan.rungs) + j for j in range(len(normalised))]  # the DASH muxer numbers audio last
        files = await asyncio.to_thread(lambda: [str(_whole_track(out, rep)) for rep in reps])
        try:
            after = await loudness.measure(binary, files, [0] * len(files), timeout_for(duration))
        except (FFmpegError, TimeoutError, OSError) as exc:
            log.warning("loudness measurement of the outputs failed: %s", exc)
    reports: list[dict[str, Any] | None] = []
    for m, filters, result in zip(measured, normalised, after, strict=False):
        if m is None:
            reports.append(None)
            continue
        reports.append({**m, "target": target, "target_lufs": loudness.TARGETS.get(target),
                        "method": loudness.method(filters), "output": result if filters else None})
    return reports


async def _encode(ctx: JobContext, argv: list[str], duration: float, scratch: Path) -> None:
    """Run the one ffmpeg of the ladder, its -progress driving the asset's percentage."""
    shown = TRANSCODE_SPAN[0]

    async def progress(seconds: float) -> None:
        nonlocal shown
        percent = transcode_percent(seconds, duration)
        if percent > shown:  # out_time is the furthest stream's and can dip; the bar never goes back
            shown = percent
            await ctx.report({"stage": "transcoding", "percent": percent})

    started = time.monotonic()
    try:
        await run_ffmpeg(argv, time_limit=timeout_for(duration), on_progress=progress)
        wall = time.monotonic() - started
        METRICS.transcode_media.inc(duration)
        METRICS.transcode_wall.inc(wall)
        if wall > 0:
            METRICS.transcode_speed.observe(duration / wall)
    except FFmpegError as exc:
        if (transient := _not_the_media("ffmpeg failed", exc, scratch, ctx.resources.settings)) is not None:
            raise transient from None
        raise PermanentJobError(f"the video could not be decoded or encoded ({exc})") from None
    except TimeoutError:
        raise PermanentJobError(f"transcoding took longer than {timeout_for(duration):.0f} s") from None


def _package(out: Path, the_plan: Plan, scratch: Path, settings: Settings
             ) -> tuple[dict[str, Path | bytes], list[str], dict[str, Any]]:
    try:
        return packaging.package(out, the_plan)
    except packaging.PackagingError as exc:
        if (transient := _not_the_media("packaging failed", exc, scratch, settings)) is not None:
            raise transient from None
        raise PermanentJobError(f"packaging failed: {exc}") from None


async def relabel(ctx: JobContext) -> dict[str, Any]:
    """`transcode.relabel` payload: {"prefix", "audio_tracks", "captions"} (the outputs document's lists, as
    editors corrected and added them). Rewrites the audio labels and caption tracks of the published MPD and
    HLS master; segments are untouched (caption files are stored before the job is queued). The MPD goes
    first: both are whole-object writes, so a player sees the old or the new labels, never a mix in one."""
    store, prefix, tracks = ctx.resources.store, ctx.payload["prefix"], ctx.payload["audio_tracks"]
    captions, generation = ctx.payload.get("captions") or [], int(ctx.payload.get("generation") or 0)
    mpd = await store.get_bytes(prefix + MPD_KEY)
    await store.put_bytes(prefix + MPD_KEY,
                          generations.pin_mpd(manifest_tracks.relabel_mpd(mpd, tracks, captions), generation))
    master = (await store.get_bytes(prefix + MASTER_KEY)).decode()
    await store.put_bytes(prefix + MASTER_KEY, generations.pin_master(
        manifest_tracks.relabel_master(master, tracks, captions), generation).encode())
    return {"audio_tracks": tracks, "captions": [c["language"] + "-" + c["kind"] for c in captions]}


HANDLERS: dict[str, Handler] = {KIND: transcode_asset, job_kinds.TRANSCODE_RELABEL: relabel}
