"""Player analytics: the embed player's beacons (play, quartiles, watch time, errors) folded into one row per
viewing session, and per-asset stats for editors. The only writer of `player_sessions`."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

import asyncpg
from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from onair.core.auth import requires
from onair.core.db.pool import POOL
from onair.core.errors import BadRequest, NotFound, PayloadTooLarge, TooManyRequests, pydantic_detail
from onair.core.limits import limits_of
from onair.core.openapi import described
from onair.core.web import client_ip, settings_of
from streaming.catalog import get_asset

_ID = r"[A-Za-z0-9_-]{1,64}"


class PlayerEvent(BaseModel):
    asset_id: str = Field(pattern=_ID)
    session: str = Field(min_length=8, max_length=64, pattern=r"[A-Za-z0-9_-]+")
    event: Literal["play", "pause", "ended", "q25", "q50", "q75", "error", "heartbeat"]
    position: float = Field(default=0, ge=0, le=1e7)
    watched: float = Field(default=0, ge=0, le=1e7)
    referrer: str = Field(default="", max_length=2048)
    detail: str | None = Field(default=None, max_length=200)


def referrer_domain(referrer: str) -> str:
    try:
        host = urlsplit(referrer).hostname or ""
    except ValueError:
        return ""
    return host.lower()[:253]


_QUARTILE = {"q25": 25, "q50": 50, "q75": 75, "ended": 100}

_UPSERT = """
INSERT INTO player_sessions AS s (asset_id, session_id, referrer_domain, played, ended, max_quartile,
                                  watched_seconds, errors, last_error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (asset_id, session_id) DO UPDATE SET
    played = s.played OR EXCLUDED.played,
    ended = s.ended OR EXCLUDED.ended,
    max_quartile = GREATEST(s.max_quartile, EXCLUDED.max_quartile),
    watched_seconds = GREATEST(s.watched_seconds, EXCLUDED.watched_seconds),
    errors = s.errors + EXCLUDED.errors,
    last_error = COALESCE(EXCLUDED.last_error, s.last_error),
    updated_at = now()
"""


async def record(db: asyncpg.Pool, ev: PlayerEvent, watched: float) -> bool:
    """Fold one beacon into its session row; False when the asset went away meanwhile."""
    try:
        await db.execute(
            _UPSERT, ev.asset_id, ev.session, referrer_domain(ev.referrer), ev.event == "play",
            ev.event == "ended", _QUARTILE.get(ev.event, 0), watched, 1 if ev.event == "error" else 0,
            ev.detail if ev.event == "error" else None)
    except asyncpg.ForeignKeyViolationError:
        return False
    return True


SESSION_WINDOW = 600.0
_SESSION_TTL = 6 * 3600.0  # a player session's events keep counting for a long film and then some


async def _new_session_allowed(request: web.Request, ev: PlayerEvent) -> None:
    """Each session counts once however many events it sends (the upsert); a new session also counts against
    its client IP, so a script inventing sessions cannot make 100 completions out of 100 POSTs."""
    ceiling = settings_of(request).count_sessions_per_ip
    limits = limits_of(request.app)
    key = f"player-session:{ev.asset_id}:{ev.session}"
    if not ceiling or await limits.seen(key):
        return
    count, left = await limits.hit(f"player-sessions:{client_ip(request)}", SESSION_WINDOW)
    if count > ceiling:  # not marked: every later event of this session is refused too
        raise TooManyRequests(f"More than {ceiling} new player sessions from this address in 10 minutes",
                              code="too-many-sessions", headers={"Retry-After": str(int(left) + 1)})
    await limits.first(key, _SESSION_TTL)


@described(body=PlayerEvent)
async def player_events(request: web.Request) -> web.Response:
    # sendBeacon posts text/plain (a CORS-safelisted type), so the body is read as JSON whatever its type.
    raw = await request.content.read(4097)
    if len(raw) > 4096:
        raise PayloadTooLarge("A player event is at most 4096 bytes")
    try:
        ev = PlayerEvent.model_validate_json(raw or b"{}")
    except ValidationError as err:
        raise BadRequest(pydantic_detail(err), code="invalid-body") from None
    asset = await get_asset(request.app[POOL], ev.asset_id)
    if asset is None:
        raise NotFound("No such video")
    await _new_session_allowed(request, ev)
    # Cap watched time at the clip's length (a few seconds of slack for rounding), so one bad client
    # cannot inflate the average.
    watched = min(ev.watched, (asset.duration or ev.watched) + 5)
    if not await record(request.app[POOL], ev, watched):
        raise NotFound("No such video")
    return web.Response(status=204, headers={"Cache-Control": "no-store"})


@requires("stats:read")
async def asset_stats(request: web.Request) -> web.Response:
    asset_id = request.match_info["asset_id"]
    db = request.app[POOL]
    if await get_asset(db, asset_id) is None:
        raise NotFound("No such video")
    totals = await db.fetchrow(
        """SELECT count(*) FILTER (WHERE played) AS plays,
                  coalesce(avg(watched_seconds) FILTER (WHERE played), 0) AS avg_watch,
                  coalesce(sum(watched_seconds), 0) AS total_watch,
                  count(*) FILTER (WHERE ended) AS completions,
                  count(*) FILTER (WHERE max_quartile >= 25) AS q25,
                  count(*) FILTER (WHERE max_quartile >= 50) AS q50,
                  count(*) FILTER (WHERE max_quartile >= 75) AS q75,
                  coalesce(sum(errors), 0) AS errors
           FROM player_sessions WHERE asset_id = $1""", asset_id)
    refs = await db.fetch(
        """SELECT referrer_domain, count(*) FILTER (WHERE played) AS plays,
                  coalesce(avg(watched_seconds) FILTER (WHERE played), 0) AS avg_watch
           FROM player_sessions WHERE asset_id = $1 GROUP BY referrer_domain
           ORDER BY plays DESC, referrer_domain LIMIT 100""", asset_id)
    # per day (UTC) over the last 90 days, for the studio's chart; a session counts on the day it started
    days = await db.fetch(
        """SELECT (started_at AT TIME ZONE 'UTC')::date AS day, count(*) FILTER (WHERE played) AS plays,
                  coalesce(sum(watched_seconds), 0) AS watch, count(*) FILTER (WHERE ended) AS completions
           FROM player_sessions WHERE asset_id = $1 AND started_at >= now() - interval '90 days'
           GROUP BY 1 ORDER BY 1 DESC""", asset_id)
    return web.json_response({
        "asset_id": asset_id, "plays": totals["plays"],
        "average_watch_seconds": round(float(totals["avg_watch"]), 2),
        "total_watch_seconds": round(float(totals["total_watch"]), 2),
        "completions": totals["completions"],
        "quartiles": {"25": totals["q25"], "50": totals["q50"], "75": totals["q75"], "100": totals["completions"]},
        "errors": totals["errors"],
        "referrers": [{"domain": r["referrer_domain"] or None, "plays": r["plays"],
                       "average_watch_seconds": round(float(r["avg_watch"]), 2)} for r in refs],
        "days": [{"day": d["day"].isoformat(), "plays": d["plays"], "watch_seconds": round(float(d["watch"]), 2),
                  "completions": d["completions"]} for d in days],
    }, headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/player/events", player_events)
    app.router.add_get(f"/api/v1/assets/{{asset_id:{_ID}}}/stats", asset_stats)
