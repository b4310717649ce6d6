"""Job handlers owned by the catalogue."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import asyncpg

from onair.core import events, job_kinds
from onair.core.jobs import Handler, Job, JobContext, ProgressHook
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
    await purge.purge(res.settings, res.signing_key, asset_id, "relabelled")
    return {"asset_id": asset_id, "purged": True}


HANDLERS: dict[str, Handler] = {job_kinds.CATALOG_TRANSCODED: transcoded, job_kinds.CATALOG_RELABELLED: relabelled}
PROGRESS_HOOKS: dict[str, ProgressHook] = {job_kinds.TRANSCODE_ASSET: transcode_progress}
