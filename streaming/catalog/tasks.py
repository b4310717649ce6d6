"""Job handlers owned by the catalogue."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import asyncpg

from onair.core import events, job_kinds
from onair.core.jobs import Handler, Job, JobContext, ProgressHook, enqueue
from streaming import catalog
from streaming.delivery import purge

log = logging.getLogger("onair.catalog")


async def transcoded(ctx: JobContext) -> dict[str, Any]:
    """on_done of `transcode.asset`: publish the result in the catalogue, or record why it failed."""
    res = ctx.resources
    done = ctx.payload
    asset_id = done["payload"]["asset_id"]
    asset = await catalog.get_asset(res.pool, asset_id)
    if asset is None:
        # Deleted while transcoding: the job may have published objects after the delete removed the rest.
        await catalog.delete_objects(res.store, asset_id)
        return {"skipped": "asset deleted"}
    if done["payload"].get("replacement"):
        return await _replaced(ctx, asset)
    if asset.job_id != done["job_id"]:
        return {"skipped": "superseded by a newer job"}
    if done["status"] == "done":
        result = done["result"]
        async with res.pool.acquire() as conn, conn.transaction():
            await catalog.mark_ready(conn, asset_id, result["facts"], result["outputs"], result.get("duration"))
            await events.publish(conn, "asset.ready", {"asset_id": asset_id, "title": asset.title,
                                                       "duration": result.get("duration")})
            if (result.get("outputs") or {}).get("recorded_live"):  # a live event's recording, packaged
                await events.publish(conn, "recording.ready", {
                    "asset_id": asset_id, "title": asset.title, "duration": result.get("duration"),
                    "channel_id": done["payload"].get("channel_id")})
            if asset.outputs is not None:  # a re-transcode replaced published manifests: drop CDN copies
                await purge.purge(conn, asset_id, "re-transcoded")
                if asset.outputs.get("captions"):  # uploaded captions outlive a re-transcode: back in the manifests
                    await catalog.relabel_tracks(conn, asset_id, captions=asset.outputs["captions"])
        return {"asset_id": asset_id, "status": "ready"}
    reason = done.get("error") or f"transcode {done['status']}"
    # Nothing half-published: a failed asset keeps no media objects. They go before the status changes, so
    # whoever sees `failed` also sees no media. The original stays, whatever the cause: a bad file is the
    # user's to delete, and an outage that outlasted the retries must never cost the customer the upload
    # (`/retry` transcodes it again).
    await res.store.delete_prefix(catalog.media_prefix(asset_id))
    async with res.pool.acquire() as conn, conn.transaction():
        await catalog.mark_failed(conn, asset_id, reason)
        await events.publish(conn, "asset.failed", {"asset_id": asset_id, "title": asset.title, "error": reason})
    return {"asset_id": asset_id, "status": "failed"}


async def transcode_progress(conn: asyncpg.Connection, job: Job, progress: Mapping[str, Any]) -> None:
    """Progress hook of `transcode.asset`: its stage and percent become the asset's status and progress, in the
    transaction that records the report (the transcode domain only talks to its JobContext)."""
    asset_id = job.payload.get("asset_id")
    stage = progress.get("stage")
    if isinstance(asset_id, str) and isinstance(stage, str):
        percent = progress.get("percent")
        await catalog.record_progress(conn, asset_id, job.id, stage,
                                      percent if isinstance(percent, (int, float)) else None, progress.get("facts"))


async def relabelled(ctx: JobContext) -> dict[str, Any]:
    """on_done of `transcode.relabel`: drop CDN copies of the old manifests. Relabel jobs of one asset may
    finish out of order; if the tracks written are not the asset's latest, queue the latest again."""
    res, done = ctx.resources, ctx.payload
    asset_id = done["payload"]["asset_id"]
    asset = await catalog.get_asset(res.pool, asset_id)
    if asset is None or not asset.ready:
        return {"skipped": "asset gone or not ready"}
    outputs = asset.outputs or {}
    wrote = (done["payload"]["audio_tracks"], done["payload"].get("captions") or [])
    if wrote != (outputs.get("audio_tracks") or [], outputs.get("captions") or []):
        async with res.pool.acquire() as conn, conn.transaction():
            await catalog.relabel_tracks(conn, asset_id)
        return {"asset_id": asset_id, "requeued": True}
    if done["status"] != "done":  # the manifests keep their old labels; the editor sees the job's error
        log.warning("relabelling asset %s failed: %s", asset_id, done.get("error"))
        return {"asset_id": asset_id, "status": done["status"]}
    await purge.purge(res.pool, asset_id, "relabelled")
    return {"asset_id": asset_id, "purged": True}


async def _replaced(ctx: JobContext, asset: catalog.Asset) -> dict[str, Any]:
    """on_done of a replacement's transcode. Done: uploaded captions join the new generation, one UPDATE
    switches the public URLs to it, the CDN drops the old manifests, and the old generation is retired after
    the grace period (players mid-stream keep fetching its segments until then). Failed: the published
    generation keeps playing and the replacement says why."""
    res, done = ctx.resources, ctx.payload
    job, prefix = done["job_id"], done["payload"]["prefix"]
    if asset.replace_job_id != job:
        return {"skipped": "superseded replacement"}
    if done["status"] != "done":
        reason = done.get("error") or f"transcode {done['status']}"
        await res.store.delete_prefix(prefix)  # never the published generation: the job wrote only its own
        if (key := done["payload"]["source_key"]) != asset.source_key:  # the editor still has the file
            await res.store.delete(key)
        await catalog.fail_replacement(res.pool, asset.id, job, reason)
        return {"asset_id": asset.id, "replacement": "failed"}
    result = done["result"]
    captions = (asset.outputs or {}).get("captions") or []
    if captions:  # uploaded captions outlive the source: their files and HLS playlists join the new generation
        keys = await res.store.list(asset.prefix + "captions/")
        keys += [asset.prefix + c["playlist"] for c in captions if c.get("playlist")]
        for key in keys:
            await res.store.put_bytes(prefix + key.removeprefix(asset.prefix), await res.store.get_bytes(key))
    async with res.pool.acquire() as conn, conn.transaction():
        old = await catalog.finish_replacement(conn, asset.id, job, result["facts"], result["outputs"],
                                               result.get("duration"))
        if old is None:
            return {"skipped": "superseded replacement"}
        await events.publish(conn, "asset.ready", {"asset_id": asset.id, "title": asset.title,
                                                   "duration": result.get("duration"), "replaced": True})
        await purge.purge(conn, asset.id, "source replaced", delay_seconds=purge.settle_seconds(res.settings))
        if captions:
            await catalog.relabel_tracks(conn, asset.id, captions=captions)
        await enqueue(conn, job_kinds.CATALOG_RETIRE, {"asset_id": asset.id, "generation": old[0],
                                                       "source_key": old[1]},
                      delay_seconds=res.settings.media_generation_grace_seconds)
    return {"asset_id": asset.id, "status": "ready", "generation": done["payload"]["generation"]}


_GENERATION_DIR = re.compile(r"g\d+/")


async def retire_generation(ctx: JobContext) -> dict[str, Any]:
    """A replaced generation's objects (and its original) go once the grace period is over. Generation 0 is
    the original layout: everything under the media prefix but the g<N>/ folders."""
    res, p = ctx.resources, ctx.payload
    asset = await catalog.get_asset(res.pool, p["asset_id"])
    if asset is None or asset.media_generation == p["generation"]:
        return {"skipped": "asset gone or generation published again"}
    removed = 0
    if p["generation"]:
        removed = await res.store.delete_prefix(catalog.generation_prefix(asset.id, p["generation"]))
    else:
        root = catalog.media_prefix(asset.id)
        for key in await res.store.list(root):
            if not _GENERATION_DIR.match(key.removeprefix(root)):
                await res.store.delete(key)
                removed += 1
    if p.get("source_key") and p["source_key"] != asset.source_key:
        await res.store.delete(p["source_key"])
    return {"asset_id": asset.id, "generation": p["generation"], "removed": removed}


HANDLERS: dict[str, Handler] = {job_kinds.CATALOG_TRANSCODED: transcoded, job_kinds.CATALOG_RELABELLED: relabelled,
                                job_kinds.CATALOG_RETIRE: retire_generation}
PROGRESS_HOOKS: dict[str, ProgressHook] = {job_kinds.TRANSCODE_ASSET: transcode_progress}
