"""The CDN purge webhook as an ordinary webhook endpoint.

ONAIR_PURGE_WEBHOOK_URL becomes the endpoint `ep_purge`, subscribed to `cdn.purge` events: purges get Standard
Webhooks signatures, retries with back-off, the delivery log and replay like every other webhook. The endpoint
follows the configuration at each start (see store.keep_system_endpoint).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging

from aiohttp import web

from onair.core.auth import SIGNING_KEY
from onair.core.db.pool import POOL
from onair.core.settings import SETTINGS, Settings
from syndication.webhooks import store

log = logging.getLogger("onair.webhooks")

PURGE_ENDPOINT_ID = "ep_purge"
PURGE_EVENTS = ("cdn.purge",)
UNSET = "ONAIR_PURGE_WEBHOOK_URL is not set"


def purge_secret(settings: Settings, signing_key: bytes) -> str:
    """ONAIR_PURGE_WEBHOOK_SECRET, else one derived from the signing key: the same in every process and across
    restarts, so a receiver configured once keeps verifying."""
    if settings.purge_webhook_secret:
        return settings.purge_webhook_secret
    derived = hmac.new(signing_key, b"onair purge webhook", hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(derived).decode()


def configured(settings: Settings, endpoint_id: str, url: str) -> bool:
    """The operator's own purge URL (from the configuration, not the API) may be on a private network."""
    return endpoint_id == PURGE_ENDPOINT_ID and url == settings.purge_webhook_url


async def sync(app: web.Application) -> None:
    settings = app[SETTINGS]
    try:
        await store.keep_system_endpoint(app[POOL], PURGE_ENDPOINT_ID, settings.purge_webhook_url, PURGE_EVENTS,
                                         purge_secret(settings, app[SIGNING_KEY]),
                                         "CDN purges (ONAIR_PURGE_WEBHOOK_URL)", UNSET)
    except Exception as exc:  # the database is down at start: the endpoint keeps its last state; /readyz says why
        log.warning("purge webhook endpoint not updated: %s", exc)
