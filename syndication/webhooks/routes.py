"""Webhook subscriptions API (admins): create (secret shown once), list, update, delete, deliveries, replay."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from onair.core import job_kinds
from onair.core.auth import admin_required
from onair.core.db.pool import POOL
from onair.core.errors import BadRequest, NotFound, read_json
from onair.core.events import EVENT_TYPES
from onair.core.jobs import enqueue
from onair.core.openapi import described
from onair.core.safe_urls import UrlRejected, check_url
from onair.core.settings import SETTINGS
from syndication.webhooks import store

Url = Annotated[str, Field(max_length=2048)]


def _events(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    unknown = sorted(set(value) - EVENT_TYPES.keys())
    if unknown:
        raise ValueError(f"unknown event types {unknown}; known: {sorted(EVENT_TYPES)}")
    return sorted(set(value))


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Url
    events: list[str] = Field(min_length=1, max_length=len(EVENT_TYPES))
    description: Annotated[str, Field(max_length=500)] = ""

    @field_validator("events")
    @classmethod
    def _known(cls, value: list[str]) -> list[str] | None:
        return _events(value)


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Url | None = None
    events: list[str] | None = Field(default=None, min_length=1, max_length=len(EVENT_TYPES))
    description: Annotated[str, Field(max_length=500)] | None = None
    enabled: bool | None = None

    @field_validator("events")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        return _events(value)


def _checked_url(request: web.Request, url: str) -> str:
    try:  # literal private targets are refused now; every delivery resolves and checks again
        return check_url(url, request.app[SETTINGS].allow_private_urls)
    except UrlRejected as exc:
        raise BadRequest(f"url: {exc}", code="invalid-url") from None


async def _endpoint(request: web.Request) -> store.Endpoint:
    found = await store.get(request.app[POOL], request.match_info["endpoint_id"])
    if found is None:
        raise NotFound(f"No webhook endpoint {request.match_info['endpoint_id']!r}", code="webhook-not-found")
    return found


@admin_required
@described(body=EndpointIn)
async def create(request: web.Request) -> web.Response:
    body = await read_json(request, EndpointIn)
    endpoint = await store.create(request.app[POOL], _checked_url(request, body.url), body.events, body.description)
    return web.json_response(endpoint.public(with_secret=True), status=201,
                             headers={"Location": f"/api/v1/webhooks/{endpoint.id}", "Cache-Control": "no-store"})


@admin_required
async def listing(request: web.Request) -> web.Response:
    endpoints = await store.list_all(request.app[POOL])
    return web.json_response({"items": [e.public() for e in endpoints], "event_types": EVENT_TYPES})


@admin_required
async def read(request: web.Request) -> web.Response:
    return web.json_response((await _endpoint(request)).public())


@admin_required
@described(body=EndpointPatch)
async def patch(request: web.Request) -> web.Response:
    body = await read_json(request, EndpointPatch)
    url = _checked_url(request, body.url) if body.url is not None else None
    updated = await store.update(request.app[POOL], request.match_info["endpoint_id"], url=url, events=body.events,
                                 description=body.description, enabled=body.enabled)
    if updated is None:
        raise NotFound(f"No webhook endpoint {request.match_info['endpoint_id']!r}", code="webhook-not-found")
    return web.json_response(updated.public())


@admin_required
async def delete(request: web.Request) -> web.Response:
    if not await store.delete(request.app[POOL], request.match_info["endpoint_id"]):
        raise NotFound(f"No webhook endpoint {request.match_info['endpoint_id']!r}", code="webhook-not-found")
    return web.Response(status=204)


@admin_required
async def deliveries(request: web.Request) -> web.Response:
    endpoint = await _endpoint(request)
    return web.json_response({"items": await store.deliveries(request.app[POOL], endpoint.id)},
                             headers={"Cache-Control": "no-store"})


@admin_required
async def replay(request: web.Request) -> web.Response:
    endpoint = await _endpoint(request)
    try:
        delivery_id = int(request.match_info["delivery_id"])
    except ValueError:
        raise NotFound("No such delivery", code="delivery-not-found") from None
    pool = request.app[POOL]
    delivery = await store.get_delivery(pool, delivery_id)
    if delivery is None or delivery["endpoint_id"] != endpoint.id:
        raise NotFound("No such delivery", code="delivery-not-found")
    async with pool.acquire() as conn, conn.transaction():
        await store.reopen(conn, delivery_id)
        await enqueue(conn, job_kinds.WEBHOOK_DELIVER, {"delivery_id": delivery_id}, max_attempts=5)
    return web.json_response({"delivery_id": delivery_id, "status": "pending"}, status=202)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/webhooks", create, name="webhooks-create")
    r.add_get("/api/v1/webhooks", listing, name="webhooks-list")
    r.add_get("/api/v1/webhooks/{endpoint_id}", read, name="webhooks-read")
    r.add_patch("/api/v1/webhooks/{endpoint_id}", patch, name="webhooks-patch")
    r.add_delete("/api/v1/webhooks/{endpoint_id}", delete, name="webhooks-delete")
    r.add_get("/api/v1/webhooks/{endpoint_id}/deliveries", deliveries, name="webhooks-deliveries")
    r.add_post("/api/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay", replay, name="webhooks-replay")
