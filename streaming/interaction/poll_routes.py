"""HTTP for polls: studio (admin) management, viewer votes, results (cacheable) and SSE."""

from __future__ import annotations

import functools
import ipaddress
import json
from datetime import UTC, datetime
from typing import Literal

import asyncpg
from aiohttp import web
from pydantic import BaseModel, Field, field_validator, model_validator

from onair.core.auth import audit, requires
from onair.core.bus import BUS
from onair.core.clock import now
from onair.core.db.pool import POOL
from onair.core.errors import AppError, BadRequest, Conflict, NotFound, TooManyRequests, Unavailable, read_json
from onair.core.metrics import METRICS
from onair.core.openapi import described
from onair.core.web import client_ip, settings_of
from streaming.interaction import ballots, devices, integrity, polls, tallies
from streaming.interaction.live_state import LIVE
from streaming.interaction.vote_batcher import Vote


class PollIn(BaseModel):
    question: str = Field(min_length=1, max_length=500)
    options: list[str] = Field(min_length=2, max_length=10)
    show: str | None = Field(default=None, max_length=200)
    channel: str | None = Field(default=None, max_length=200)
    opens_at: datetime | None = None
    closes_at: datetime | None = None
    allow_change: bool = False

    @field_validator("options")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        labels = [v.strip() for v in value]
        if any(not v or len(v) > 200 for v in labels):
            raise ValueError("each option needs 1..200 characters")
        if len(set(labels)) != len(labels):
            raise ValueError("options must be distinct")
        return labels

    @model_validator(mode="after")
    def _window(self) -> PollIn:
        for name in ("opens_at", "closes_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone (e.g. 2026-01-01T20:00:00Z)")
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            raise ValueError("closes_at must be after opens_at")
        return self


class VoteIn(BaseModel):
    device_id: str = Field(max_length=200)
    option_id: int


async def _poll(request: web.Request) -> polls.Poll:
    poll = await request.app[LIVE].poll(request.match_info["poll_id"])
    if poll is None:
        raise NotFound(f"No poll {request.match_info['poll_id']!r}", code="poll-not-found")
    return poll


@requires("polls:write")
@described(body=PollIn)
async def create_poll(request: web.Request) -> web.Response:
    body = await read_json(request, PollIn)
    poll = await polls.create(request.app[POOL], **body.model_dump())
    await audit(request, "poll.create", object_type="poll", object_id=poll.id)
    return web.json_response(polls.to_json(poll, now(request.app)), status=201,
                             headers={"Location": f"/api/v1/polls/{poll.id}"})


@requires("polls:read")
async def list_polls(request: web.Request) -> web.Response:
    t = now(request.app)
    items = [polls.to_json(p, t) for p in await polls.list_recent(request.app[POOL])]
    return web.json_response({"polls": items}, headers={"Cache-Control": "no-store"})


async def get_poll(request: web.Request) -> web.Response:
    poll = await polls.get(request.app[POOL], request.match_info["poll_id"])
    if poll is None:
        raise NotFound(f"No poll {request.match_info['poll_id']!r}", code="poll-not-found")
    return web.json_response(polls.to_json(poll, now(request.app)), headers={"Cache-Control": "no-store"})


def _transition(action: str):
    @requires("polls:write")
    async def handler(request: web.Request) -> web.Response:
        poll = await polls.transition(request.app[POOL], request.match_info["poll_id"], action, now(request.app))
        if poll is None:
            raise NotFound(f"No poll {request.match_info['poll_id']!r}", code="poll-not-found")
        await audit(request, f"poll.{action}", object_type="poll", object_id=poll.id)
        live = request.app[LIVE]
        live.ticker.mark({poll.id})  # viewers see the new status (and zeroed bars) on the next tick
        return web.json_response(polls.to_json(poll, now(request.app)), headers={"Cache-Control": "no-store"})

    handler.__name__ = f"{action}_poll"
    return handler


@described(body=VoteIn)
async def vote(request: web.Request) -> web.Response:
    try:
        return await _vote(request)
    except AppError as exc:  # refusals by reason: a spike of poll-not-open or ip-ceiling shows on the dashboard
        METRICS.votes_refused.labels(exc.code).inc()
        raise


@functools.lru_cache(maxsize=4096)  # ipaddress parses in Python (8 calls an address); phones of a home share one
def _inet(ip: str | None) -> str | None:
    """The address as PostgreSQL inet takes it (a unix-socket peer or garbage is stored as unknown)."""
    try:
        return str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        return None


async def _vote(request: web.Request) -> web.Response:
    poll = await _poll(request)
    body = await read_json(request, VoteIn, max_bytes=4096)
    device = devices.require_device(request, body.device_id)
    device_id = device.id
    if body.option_id not in poll.option_ids:
        raise BadRequest(f"option_id {body.option_id} is not an option of this poll", code="invalid-option")
    live = request.app[LIVE]
    ip = client_ip(request)
    ip_key = (poll.id, ip or "")
    if live.ip_ceiling and live.ip_votes.get(ip_key, 0) >= live.ip_ceiling:
        raise TooManyRequests("Too many votes from this network for this poll", code="ip-ceiling",
                              headers={"Retry-After": "60"})
    try:
        outcome = await live.batcher.submit(Vote(poll.id, device_id, body.option_id, client_ip=_inet(ip),
                                                 device_issued_at=datetime.fromtimestamp(device.issued_at, UTC)))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise Unavailable("Votes cannot be stored right now; retry shortly (the vote was not counted)",
                          code="votes-unavailable", headers={"Retry-After": "1"}) from exc
    if outcome.kind == "unknown":
        raise NotFound(f"No poll {poll.id!r}", code="poll-not-found")
    if outcome.kind == "closed":
        fresh = await polls.get(request.app[POOL], poll.id) or poll
        t = now(request.app)
        raise Conflict(f"Poll {poll.id} is not accepting votes (status {polls.effective_status(fresh, t)})",
                       code="poll-not-open", poll_id=poll.id, poll_status=polls.effective_status(fresh, t),
                       **polls.window(fresh))
    if outcome.kind == "created" and live.ip_ceiling:
        live.ip_votes.set(ip_key, live.ip_votes.get(ip_key, 0) + 1)
    return web.json_response(
        {"poll_id": poll.id, "option_id": outcome.option_id, "recorded": True, "first": outcome.kind == "created",
         "changed": outcome.kind == "changed"},
        status=201 if outcome.kind == "created" else 200, headers={"Cache-Control": "no-store"})


class MineIn(BaseModel):
    device_id: str = Field(max_length=200)


@described(body=MineIn)
async def my_vote(request: web.Request) -> web.Response:
    """The option this device voted for, or null: a paired TV learns its household voted from the phone.
    A POST so the device id (the vote's only credential) stays out of URLs and access logs."""
    poll = await _poll(request)
    body = await read_json(request, MineIn, max_bytes=4096)
    device_id = devices.require(request, body.device_id)
    async with request.app[POOL].acquire() as conn:
        found = await ballots.recorded(conn, [(poll.id, device_id)])
    return web.json_response({"poll_id": poll.id, "option_id": found.get((poll.id, device_id))},
                             headers={"Cache-Control": "no-store"})


async def results(request: web.Request) -> web.Response:
    poll = await _poll(request)
    data = await request.app[LIVE].results(poll)
    body = json.dumps(data, separators=(",", ":")).encode()
    tag = tallies.etag(body)
    # One second at the CDN: a million TVs polling cost the origin one request per second per edge.
    headers = {"ETag": tag, "Cache-Control": "public, max-age=1", "Access-Control-Allow-Origin": "*",
               "Surrogate-Key": f"poll-{poll.id}", "Cache-Tag": f"poll-{poll.id}"}
    if tag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)


async def events(request: web.Request) -> web.StreamResponse:
    poll = await _poll(request)
    first = await request.app[LIVE].results(poll)
    return await tallies.sse(request, request.app[BUS], poll.id, first,
                             reload=lambda: request.app[LIVE].results(poll))


@requires("polls:read")
async def export(request: web.Request) -> web.Response:
    poll = await _poll(request)
    text = await polls.export_csv(request.app[POOL], await polls.get(request.app[POOL], poll.id) or poll,
                                  now(request.app))
    return web.Response(text=text, content_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="poll-{poll.id}.csv"', "Cache-Control": "no-store"})


@requires("polls:read")
async def integrity_report(request: web.Request) -> web.Response:
    """Votes per IP and subnet, device age at vote time, bursts, and how many votes each flag marks."""
    poll = await _poll(request)
    body = await integrity.report(request.app[POOL], poll.id, integrity.Thresholds.of(settings_of(request)))
    fresh = await polls.get(request.app[POOL], poll.id) or poll
    body["results"] = await polls.results(request.app[POOL], fresh, now(request.app))
    return web.json_response(body, headers={"Cache-Control": "no-store"})


class ExclusionsIn(BaseModel):
    flags: list[Literal["ip", "subnet", "burst"]] = Field(max_length=3)


@requires("polls:write")
@described(body=ExclusionsIn)
async def set_exclusions(request: web.Request) -> web.Response:
    """Exclude flagged votes from a closed poll's second tally; the tally of all accepted votes stays."""
    poll = await _poll(request)
    body = await read_json(request, ExclusionsIn, max_bytes=4096)
    flags = sorted(set(body.flags))
    data = await polls.exclude(request.app[POOL], poll.id, flags,
                               integrity.Thresholds.of(settings_of(request)), now(request.app))
    if data is None:
        raise Conflict("Exclusions apply to a closed poll (its votes must be final); close it first",
                       code="poll-not-closed", poll_id=poll.id)
    await audit(request, "poll.exclude", object_type="poll", object_id=poll.id)
    request.app[LIVE].ticker.mark({poll.id})
    return web.json_response(data, headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    r = app.router
    # aiohttp tries the routes under /api/v1/polls in the order they were added: the vote, by far the most
    # frequent request, is tried first (it was the sixth regex a vote ran through).
    r.add_post("/api/v1/polls/{poll_id}/votes", vote, name="polls.vote")
    r.add_post("/api/v1/polls", create_poll, name="polls.create")
    r.add_get("/api/v1/polls", list_polls, name="polls.list")
    r.add_get("/api/v1/polls/{poll_id}", get_poll, name="polls.get")
    for action in ("open", "close", "reset"):
        r.add_post(f"/api/v1/polls/{{poll_id}}/{action}", _transition(action), name=f"polls.{action}")
    r.add_post("/api/v1/polls/{poll_id}/my-vote", my_vote, name="polls.my_vote")
    r.add_get("/api/v1/polls/{poll_id}/results", results, name="polls.results")
    r.add_get("/api/v1/polls/{poll_id}/events", events, name="polls.events")
    r.add_get("/api/v1/polls/{poll_id}/export.csv", export, name="polls.export")
    r.add_get("/api/v1/polls/{poll_id}/integrity", integrity_report, name="polls.integrity")
    r.add_post("/api/v1/polls/{poll_id}/exclusions", set_exclusions, name="polls.exclusions")
