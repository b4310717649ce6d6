"""Job handlers owned by the catalogue."""

from __future__ import annotations

import logging
from typing import Any

from onair.core import job_kinds
from onair.core.jobs import Handler, JobContext
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
        await catalog.mark_ready(res.pool, asset_id, result["facts"], result["outputs"], result.get("duration"))
        if asset.outputs is not None:  # a re-transcode replaced published manifests: drop CDN copies
            await purge.purge(res.settings, res.signing_key, asset_id, "re-transcoded")
        return {"asset_id": asset_id, "status": "ready"}
    reason = done.get("error") or f"transcode {done['status']}"
    # Nothing half-published: a failed asset keeps no objects (the original included). They go before
    # the status changes, so whoever sees `failed` also sees an empty store.
    await catalog.delete_objects(res.store, asset_id)
    await catalog.mark_failed(res.pool, asset_id, reason)
    return {"asset_id": asset_id, "status": "failed"}


HANDLERS: dict[str, Handler] = {job_kinds.CATALOG_TRANSCODED: transcoded}
