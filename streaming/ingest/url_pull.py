"""URL pulls: the `ingest.fetch` job downloads an original from a partner's or editor's URL.

The request-time checks (shape, no literal private target) are `onair.core.safe_urls`; here every redirect hop
is checked again, and names are resolved by the session's pinned resolver, so the checked address is the one
connected to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp

from onair.core.jobs import JobContext, PermanentJobError
from onair.core.safe_urls import UrlRejected, check_url, pinned_session
from onair.core.settings import Settings
from streaming import catalog
from streaming.ingest.originals import staging_dir, store_and_queue

log = logging.getLogger("onair.ingest")

MAX_REDIRECTS = 5
URL_PULL_SECONDS = 30 * 60


async def pull(url: str, dest: Path, settings: Settings) -> int:
    """Download with redirects followed by hand (each hop re-checked), a size cap and a time limit."""
    limit = settings.max_upload_bytes
    timeout = aiohttp.ClientTimeout(total=URL_PULL_SECONDS, sock_connect=15, sock_read=60)
    async with pinned_session(settings.allow_private_urls, timeout=timeout) as session:
        for _hop in range(MAX_REDIRECTS + 1):
            check_url(url, settings.allow_private_urls)  # a literal address; names are checked as they connect
            async with session.get(url, allow_redirects=False) as resp:
                if resp.status in (301, 302, 303, 307, 308):
                    location = resp.headers.get("Location")
                    if not location:
                        raise UrlRejected(f"redirect {resp.status} without a Location")
                    url = urljoin(url, location)
                    continue
                if resp.status != 200:
                    raise UrlRejected(f"the server answered HTTP {resp.status}")
                if resp.content_length is not None and resp.content_length > limit:
                    raise UrlRejected(f"the file is {resp.content_length} bytes; the limit is {limit} bytes")
                return await _save(resp, dest, settings)
        raise UrlRejected(f"more than {MAX_REDIRECTS} redirects")


async def _save(resp: aiohttp.ClientResponse, dest: Path, settings: Settings) -> int:
    """Write the body to `dest`: within the size limit, and never slower than the minimum rate over a window
    (sock_read alone lets a source send one byte a minute for ever)."""
    limit, floor = settings.max_upload_bytes, settings.url_pull_min_bytes_per_second
    window = settings.url_pull_rate_window_seconds
    loop = asyncio.get_running_loop()
    size, since, got = 0, loop.time(), 0
    f = await asyncio.to_thread(open, dest, "wb")
    with f:
        while True:
            left = since + window - loop.time()
            try:
                chunk = await (asyncio.wait_for(resp.content.readany(), max(left, 0.01)) if floor
                               else resp.content.readany())
            except TimeoutError:
                chunk = None
            if chunk == b"":
                return size
            if chunk:
                size += len(chunk)
                got += len(chunk)
                if size > limit:
                    raise UrlRejected(f"the file is larger than the limit of {limit} bytes")
                await asyncio.to_thread(f.write, chunk)
            if floor and loop.time() >= since + window:
                if got < floor * window:
                    raise UrlRejected(f"the source sent {got / window:.0f} bytes/s over {window:g} s; at least "
                                      f"{floor} bytes/s is needed (ONAIR_URL_PULL_MIN_BYTES_PER_SECOND)")
                since, got = loop.time(), 0


async def fetch_handler(ctx: JobContext) -> dict[str, Any]:
    """Job `ingest.fetch`: pull the URL into the store, then queue the transcode."""
    res = ctx.resources
    asset_id, url = ctx.payload["asset_id"], ctx.payload["url"]
    dest = staging_dir(res.settings) / f"url-{ctx.job.id}"
    try:
        try:
            size = await pull(url, dest, res.settings)
        except UrlRejected as exc:
            raise PermanentJobError(f"URL pull refused: {exc}") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # The partner's server, not ours: say so now; the editor can /retry once it is back.
            raise PermanentJobError(f"URL pull failed: {type(exc).__name__} {exc}".strip()) from None
        if await catalog.get_asset(res.pool, asset_id) is None:
            return {"skipped": "asset deleted"}
        job_id = await store_and_queue(res.pool, res.store, asset_id, dest, size)
        return {"bytes": size, "transcode_job": job_id}
    except PermanentJobError as exc:
        # Nothing was stored under this asset by a pull that failed; never touch a stored original here.
        await res.store.delete_prefix(catalog.media_prefix(asset_id))
        await catalog.mark_failed(res.pool, asset_id, str(exc))
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(dest)
