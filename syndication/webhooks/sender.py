"""Sending one webhook request, signed per Standard Webhooks (via the `standardwebhooks` library)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from standardwebhooks.webhooks import Webhook

from onair.core.safe_urls import UrlRejected, check_url, pinned_session

USER_AGENT = "onair-webhooks/1"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    code: int | None
    latency_ms: int
    error: str | None


def signed_request(secret: str, message: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"type": message["type"], "timestamp": message["timestamp"], "data": message["data"]},
                      separators=(",", ":"), ensure_ascii=False)
    sent_at = datetime.now().astimezone()
    headers = {
        "content-type": "application/json", "user-agent": USER_AGENT,
        "webhook-id": message["id"], "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message["id"], sent_at, body),
    }
    return body.encode(), headers


async def send(url: str, secret: str, message: dict[str, Any], *, timeout_seconds: float, allow_private: bool,
               request_id: str | None = None) -> Outcome:
    """POST one signed message; `request_id` (of the request that caused the event) goes in X-Request-Id."""
    started = time.monotonic()

    def done(ok: bool, code: int | None, error: str | None) -> Outcome:
        return Outcome(ok, code, int((time.monotonic() - started) * 1000), error)

    try:
        check_url(url, allow_private)  # a literal address; a name is checked as it connects (pinned_session)
    except UrlRejected as exc:
        return done(False, None, f"refused: {exc}")
    body, headers = signed_request(secret, message)
    if request_id:
        headers["x-request-id"] = request_id
    try:
        async with pinned_session(allow_private, timeout=aiohttp.ClientTimeout(total=timeout_seconds)) as http, \
                http.post(url, data=body, headers=headers, allow_redirects=False) as resp:
            await resp.read()
            ok = 200 <= resp.status < 300
            return done(ok, resp.status, None if ok else f"HTTP {resp.status}")
    except UrlRejected as exc:  # the name resolved to an address inside our network
        return done(False, None, f"refused: {exc}")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return done(False, None, f"{type(exc).__name__}: {exc}".strip()[:500])
