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
            await purge.purge(res.settings, res.signing_key, asset_id, "re-transcoded")
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


HANDLERS: dict[str, Handler] = {job_kinds.CATALOG_TRANSCODED: transcoded}
PROGRESS_HOOKS: dict[str, ProgressHook] = {job_kinds.TRANSCODE_ASSET: transcode_progress}
