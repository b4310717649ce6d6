"""Tell the CDN to drop an asset's cached objects: POST its purge tags to a configurable webhook.

The origin labels every cacheable response with `asset-<id>` (Surrogate-Key / Cache-Tag /
Edge-Cache-Tag), so one tag purge removes manifests, segments and images of that asset from any CDN
that supports tag purges (Fastly, Cloudflare, Akamai). The webhook is a small adapter the operator
points at their CDN's purge API; onair posts:

    {"tags": ["asset-<id>"], "asset_id": "<id>", "reason": "deleted", "paths": ["/media/<id>/*"]}

The body is signed so the receiver can tell onair from anyone else:
``X-Onair-Signature: sha256=<hex HMAC-SHA256 of the raw body with the signing key>``.

Purging is best effort: a failure is logged (the CDN's TTLs still bound staleness), never raised
into the delete/unpublish that triggered it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

import aiohttp
from aiohttp import web

from onair.core.auth import SIGNING_KEY
from onair.core.settings import SETTINGS, Settings

log = logging.getLogger("onair.purge")

TIMEOUT = aiohttp.ClientTimeout(total=10, connect=3)


def purge_payload(asset_id: str, reason: str) -> dict[str, Any]:
    return {"tags": [f"asset-{asset_id}"], "asset_id": asset_id, "reason": reason,
            "paths": [f"/media/{asset_id}/*"]}


def _settings(app: web.Application) -> Settings:
    return app[SETTINGS]


async def purge_asset(app: web.Application, asset_id: str, reason: str) -> bool:
    """Purge from a request handler (settings and signing key from the app)."""
    return await purge(_settings(app), app.get(SIGNING_KEY), asset_id, reason)


async def purge(settings: Settings, signing_key: bytes | None, asset_id: str, reason: str) -> bool:
    """POST the asset's tags to `settings.purge_webhook_url`. Returns True when the hook answered 2xx."""
    url = settings.purge_webhook_url
    payload = purge_payload(asset_id, reason)
    if not url:
        log.info("purge skipped (no ONAIR_PURGE_WEBHOOK_URL)", extra={"asset": asset_id, "reason": reason})
        return False
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if signing_key:
        headers["X-Onair-Signature"] = "sha256=" + hmac.new(signing_key, body, hashlib.sha256).hexdigest()
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session, \
                session.post(url, data=body, headers=headers) as resp:
            ok = 200 <= resp.status < 300
            log.log(logging.INFO if ok else logging.WARNING, "purge %s", "sent" if ok else "refused",
                    extra={"asset": asset_id, "reason": reason, "tags": payload["tags"], "status": resp.status})
            return ok
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("purge failed", extra={"asset": asset_id, "reason": reason, "error": type(exc).__name__})
        return False
