"""The OpenAPI 3.1 document of the HTTP API, built from the running route table, never written by hand.

Handlers name the pydantic models they validate with (`@described(body=PollIn, query=...)`, the same
classes they hand to `read_json`/`parse_query`; tests/test_openapi.py checks the two agree). Paths,
methods, path parameters and who may call (the `requires`/`label` permission) come from the router, so a
new route appears in the document without anyone editing it. Served at /api/openapi.json.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from onair.core.auth import permission_of

H = TypeVar("H", bound=Callable[..., Any])
ATTR = "openapi"
REF = "#/components/schemas/{model}"
VERSION = "0.1.0"

# What the document describes: the JSON APIs. HTML pages, media, static files and streams (SSE, WebSocket:
# a fuzzer would wait on them forever) are left out.
_PREFIXES = ("/api/", "/oembed", "/feeds/")
_STREAMS = re.compile(r"/(ws|events)$")
_SKIP_METHODS = frozenset({"HEAD", "OPTIONS", "*"})
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")


@dataclass(frozen=True)
class Operation:
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    content_type: str = "application/json"


def described(*, body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
              response: type[BaseModel] | None = None, status: int = 200,
              content_type: str = "application/json") -> Callable[[H], H]:
    """Name the models a handler validates its input with (and, optionally, its success response)."""
    def mark(handler: H) -> H:
        setattr(handler, ATTR, Operation(body, query, response, status, content_type))
        return handler

    return mark


def operation_of(handler: Callable[..., Any]) -> Operation:
    return getattr(handler, ATTR, None) or Operation()


PROBLEM_SCHEMA = {
    "type": "object", "description": "RFC 9457 problem details",
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}, "instance": {"type": "string"}},
    "required": ["type", "title", "status"],
}


def _routes(app: web.Application) -> Iterable[tuple[str, str, Callable[..., Any]]]:
    for route in app.router.routes():
        if route.method in _SKIP_METHODS or route.resource is None:
            continue
        info = route.resource.get_info()
        path = info.get("formatter") or info.get("path")
        if not path or not path.startswith(_PREFIXES) or _STREAMS.search(path):
            continue
        yield path, route.method, route.handler


Refs = dict[tuple[type[BaseModel], str], str]


def _models(app: web.Application) -> tuple[Refs, dict[str, Any]]:
    """Every model the routes name: its $ref per (model, mode), and the component schemas."""
    wanted: set[tuple[type[BaseModel], str]] = set()
    for _, _, handler in _routes(app):
        op = operation_of(handler)
        wanted.update((m, "validation") for m in (op.body, op.query) if m is not None)
        if op.response is not None:
            wanted.add((op.response, "serialization"))
    keys, top = models_json_schema(sorted(wanted, key=lambda k: (k[0].__module__, k[0].__qualname__, k[1])),
                                   ref_template=REF)
    return {k: v["$ref"] for k, v in keys.items()}, top.get("$defs", {})


def _query_parameters(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """A query model's fields, one parameter each (aiohttp hands the handler a flat string mapping)."""
    required = set(schema.get("required", []))
    return [{"name": name, "in": "query", "required": name in required, "schema": _not_null(prop)}
            for name, prop in schema.get("properties", {}).items()]


def _not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """`X | None` in a query model means "may be left out": a query string has no null to send."""
    branches = [b for b in prop.get("anyOf", []) if b != {"type": "null"}]
    if "anyOf" not in prop or len(branches) != 1:
        return prop
    return {**{k: v for k, v in prop.items() if k not in ("anyOf", "default")}, **branches[0]}


def _operation(path: str, method: str, handler: Callable[..., Any], refs: Refs,
               schemas: dict[str, Any]) -> dict[str, Any]:
    op = operation_of(handler)
    permission = permission_of(handler)
    doc = inspect.getdoc(handler) or ""
    out: dict[str, Any] = {
        "operationId": method.lower() + re.sub(r"[^A-Za-z0-9]+", "_", path).rstrip("_"),
        "x-handler": f"{handler.__module__}.{handler.__qualname__}",
        "summary": doc.split("\n", 1)[0] or f"{method} {path}",
        "tags": [handler.__module__.split(".")[-2] if handler.__module__.count(".") else handler.__module__],
        "x-permission": permission,
        "parameters": [{"name": name, "in": "path", "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 200}}
                       for name in _PARAM.findall(path)],
    }
    if not permission.startswith("public"):
        out["security"] = [{"bearer": []}, {"session": []}]
    if op.query is not None:
        out["parameters"] += _query_parameters(schemas[refs[(op.query, "validation")].rsplit("/", 1)[1]])
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": refs[(op.body, "validation")]}}}}
    success: dict[str, Any] = {"description": "Success"}
    if op.status != 204:
        schema = {"$ref": refs[(op.response, "serialization")]} if op.response else {}
        success["content"] = {op.content_type: {"schema": schema}}
    problem = {"content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    out["responses"] = {str(op.status): success, "4XX": {"description": "Bad input or not allowed", **problem},
                        "5XX": {"description": "Infrastructure trouble (with Retry-After)", **problem}}
    return out


def document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document for every JSON route `app` serves."""
    refs, schemas = _models(app)
    paths: dict[str, dict[str, Any]] = {}
    for path, method, handler in sorted(_routes(app), key=lambda r: (r[0], r[1])):
        paths.setdefault(path, {})[method.lower()] = _operation(path, method, handler, refs, schemas)
    schemas = {**schemas, "Problem": PROBLEM_SCHEMA}
    return {
        "openapi": "3.1.0",
        "info": {"title": "onair", "version": VERSION,
                 "description": "VOD, live, interaction and syndication API. Generated from the route table."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "The admin token, or a partner key on /api/v1/partner/"},
                "session": {"type": "apiKey", "in": "cookie", "name": "onair_session",
                            "description": "A studio login; changes also need the X-CSRF-Token header"},
            },
        },
    }


_DOCUMENT = web.AppKey("openapi_document", dict)


async def openapi_json(request: web.Request) -> web.Response:
    """This document."""
    cache = request.app[_DOCUMENT]
    if "doc" not in cache:  # built on first use: every domain has registered its routes by then
        cache["doc"] = document(request.app)
    return web.json_response(cache["doc"], headers={"Cache-Control": "public, max-age=60"})


def setup(app: web.Application) -> None:
    app[_DOCUMENT] = {}
    app.router.add_get("/api/openapi.json", openapi_json, name="openapi")
