"""Replace an asset's source: `POST /api/v1/assets/{id}/source` (multipart `file`) keeps the id and every URL.

A ready asset stays ready and playable while the new original transcodes into a fresh generation; the catalogue
switches the public URLs to it when it is done (streaming/catalog/tasks.py) and the API shows the replacement's
own status and progress meanwhile. An asset with nothing published (failed) simply transcodes the new file.
"""

from __future__ import annotations

import contextlib
import os
import secrets

from aiohttp import web

from onair.core.auth import requires
from onair.core.db.pool import POOL
from onair.core.errors import Conflict, UnsupportedMediaType
from onair.core.settings import SETTINGS
from onair.core.storage import STORE
from streaming import catalog
from streaming.ingest import multipart, originals


def _refuse_busy(asset: catalog.Asset) -> None:
    if catalog.replacing(asset):
        raise Conflict("A replacement of this asset's source is already transcoding; wait for it to finish")
    if not asset.ready and asset.status != "failed":
        raise Conflict(f"The asset is {asset.status}; its source can be replaced once it is ready or failed")


@requires("assets:write")
async def replace_source(request: web.Request) -> web.Response:
    asset_id = request.match_info["asset_id"]
    pool, store = request.app[POOL], request.app[STORE]
    asset = await catalog.existing_asset(pool, asset_id)
    _refuse_busy(asset)  # before the upload: no one should send gigabytes to hear 409
    if request.content_type != "multipart/form-data":
        raise UnsupportedMediaType(f"Send multipart/form-data with a 'file' part "
                                   f"(got {request.content_type or 'no content type'})")
    received = await multipart.receive_multipart(request, request.app[SETTINGS])
    try:
        asset = await catalog.existing_asset(pool, asset_id)
        _refuse_busy(asset)
        if not asset.ready:
            await originals.store_and_queue(pool, store, asset_id, received.path, received.size)
            return web.json_response({"id": asset_id, "status": "queued", "replacement": None}, status=202)
        # a name of its own: the published generation's original stays until the new one is live
        key = catalog.source_prefix(asset_id) + f"original-{secrets.token_hex(6)}"
        await store.put_file(key, received.path, "application/octet-stream")
        async with pool.acquire() as conn, conn.transaction():
            if catalog.replacing(await catalog.get_asset(conn, asset_id) or asset):
                await store.delete(key)
                raise Conflict("A replacement of this asset's source is already transcoding")
            _, generation = await catalog.start_replacement(conn, asset_id, key, received.size)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(received.path)
    return web.json_response({"id": asset_id, "status": asset.status,
                              "replacement": {"status": "queued", "progress": 0.0, "generation": generation}},
                             status=202, headers={"Location": f"/api/v1/assets/{asset_id}"})


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/assets/{asset_id}/source", replace_source, name="assets-source")
