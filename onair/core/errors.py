"""Errors carry their HTTP status; one middleware renders every error as RFC 9457 problem+json."""

from __future__ import annotations

import errno
import json
import logging
import math
from collections.abc import Mapping
from typing import Any, TypeVar

import asyncpg
from aiohttp import web
from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError as BotoClientError
from pydantic import BaseModel, ValidationError

log = logging.getLogger("onair.core.errors")

PROBLEM_TYPE = "application/problem+json"

M = TypeVar("M", bound=BaseModel)
REQUEST_ID = web.RequestKey("request_id", str)


class AppError(Exception):
    """A failure the client can act on. Subclasses fix the status; `code` names the problem type."""

    status = 400
    code = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None, headers: Mapping[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code
        self.headers = dict(headers or {})
        self.extra = extra


class BadRequest(AppError):
    pass


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Credentials required"


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, code, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class Gone(AppError):
    status, code, title = 410, "gone", "Gone"


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(AppError):
    status, code, title = 415, "unsupported-media-type", "Unsupported media type"


class RangeNotSatisfiable(AppError):
    status, code, title = 416, "range-not-satisfiable", "Range not satisfiable"


class TooManyRequests(AppError):
    status, code, title = 429, "too-many-requests", "Too many requests"


class NotImplementedProblem(AppError):
    status, code, title = 501, "not-implemented", "Not implemented"


class Unavailable(AppError):
    status, code, title = 503, "unavailable", "Service unavailable"


class InsufficientStorage(AppError):
    status, code, title = 507, "insufficient-storage", "Insufficient storage"


# Infrastructure trouble that the client can only wait out: (status, code, title, detail, Retry-After).
_DB_DOWN = (503, "database-unavailable", "Database unavailable",
            "The database is not answering; retry shortly", "5")
_STORAGE_DOWN = (503, "storage-unavailable", "Storage unavailable",
                 "Object storage is not answering; retry shortly", "5")
_DEPENDENCY_DOWN = (503, "dependency-unavailable", "Dependency unavailable",
                    "A service onair depends on refused the connection; retry shortly", "5")
_DISK_FULL = (507, "insufficient-storage", "Insufficient storage",
              "The server has no free disk space for this request; retry later", "60")


def infrastructure_problem(exc: BaseException) -> tuple[str, ...] | None:
    """Which outage `exc` is, if it is one (a full disk, a database or object store that is down)."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return _DISK_FULL
    # InternalClientError: asyncpg's protocol state after the server died under a query ("another operation
    # is in progress" when the pool resets that connection), seen when the embedded PostgreSQL is SIGKILLed.
    if isinstance(exc, (asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                        asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError,
                        asyncpg.AdminShutdownError, asyncpg.InternalClientError)):
        return _DB_DOWN
    if isinstance(exc, BotoCoreError):
        return _STORAGE_DOWN
    if isinstance(exc, BotoClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return _STORAGE_DOWN if status >= 500 or status == 0 else None
    if isinstance(exc, ConnectionError):  # refused/reset by a dependency (PostgreSQL, Redis, S3)
        return _DEPENDENCY_DOWN
    return None


def problem_response(status: int, code: str, title: str, detail: str, *,
                     headers: Mapping[str, str] | None = None, extra: Mapping[str, Any] | None = None,
                     instance: str | None = None) -> web.Response:
    body: dict[str, Any] = {"type": f"/problems/{code}", "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    if extra:
        body.update(extra)
    hdrs = {"Cache-Control": "public, max-age=5" if status in (404, 410) else "no-store"}
    hdrs.update(headers or {})
    return web.Response(status=status, body=json.dumps(body, default=str).encode(), content_type=PROBLEM_TYPE,
                        headers=hdrs)


_HTTP_CODES = {400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found",
               405: "method-not-allowed", 406: "not-acceptable", 408: "request-timeout", 411: "length-required",
               413: "payload-too-large", 414: "uri-too-long", 415: "unsupported-media-type",
               416: "range-not-satisfiable", 429: "too-many-requests", 431: "headers-too-large"}


def problem_for(request: web.Request, exc: Exception, request_id: str) -> web.Response | None:
    """The problem+json answer for what a handler raised, or None for what is not an error (a redirect), which
    goes on up. onair.core.edge calls this for every request."""
    if isinstance(exc, AppError):
        return problem_response(exc.status, exc.code, exc.title, exc.detail, headers=exc.headers,
                                extra=exc.extra, instance=request.path)
    if isinstance(exc, web.HTTPException):
        return None if exc.status < 400 else _http_problem(request, exc)
    if isinstance(exc, TimeoutError):
        log.warning("timeout", extra={"request_id": request_id, "path": request.path})
        return problem_response(503, "timeout", "Upstream timeout", "An upstream service did not answer in time",
                                headers={"Retry-After": "2"})
    if (outage := infrastructure_problem(exc)) is not None:
        status, code, title, detail, retry_after = outage
        log.warning("%s: %s", code, exc, extra={"request_id": request_id, "path": request.path})
        return problem_response(int(status), code, title, detail, headers={"Retry-After": retry_after},
                                instance=request.path)
    log.exception("unhandled error", exc_info=exc, extra={"request_id": request_id, "path": request.path,
                                                          "method": request.method})
    return problem_response(500, "internal", "Internal server error",
                            f"Something went wrong on our side; quote request id {request_id}",
                            extra={"request_id": request_id})


def _http_problem(request: web.Request, exc: web.HTTPException) -> web.Response:
    code = _HTTP_CODES.get(exc.status, "http-error")
    detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
    if exc.status == 404:
        detail = f"No resource at {request.path}"
    elif exc.status == 405:
        detail = f"{request.method} is not allowed on {request.path}"
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after", "content-range")}
    return problem_response(exc.status, code, exc.reason, detail, headers=headers, instance=request.path)


# PostgreSQL's bigint: a larger number in a cursor or id reaches the database only as an error.
INT64 = (-(2**63), 2**63 - 1)


def refuse_nul_in_url(request: web.Request) -> None:
    """NUL cannot be stored in PostgreSQL text nor a file name: refuse it in path and query, naming where."""
    if "%00" not in request.raw_path and "\x00" not in request.raw_path:
        return  # a NUL reaches a decoded value only as %00 (%2500 decodes once, to the text "%00")
    for where, items in (("path", request.match_info.items()), ("query", request.query.items())):
        for name, value in items:
            if "\x00" in value or "\x00" in name:
                raise BadRequest(f"{where} parameter {name[:40]!r} contains a NUL byte",
                                 code=f"invalid-{where}", field=name[:40])


def _bad_value(value: Any, where: str) -> tuple[str, str] | None:
    """The first value a model accepted that the storage layer cannot hold: (field path, reason)."""
    kind = type(value)  # the common leaves first, by exact type (every vote's body passes here)
    if kind is str:
        return (where, "contains a NUL byte") if "\x00" in value else None
    if kind is int:
        return None if INT64[0] <= value <= INT64[1] else (where, "is out of range (64-bit integers only)")
    if kind is bool or value is None:
        return None
    if isinstance(value, BaseModel):
        value = value.__dict__  # the fields' values (pydantic keeps private attributes and extras apart)
    if isinstance(value, dict):
        for key, item in value.items():
            if (found := _bad_value(item, f"{where}.{key}" if where else str(key))) is not None:
                return found
    elif isinstance(value, (list, tuple, set, frozenset)):
        for i, item in enumerate(value):
            if (found := _bad_value(item, f"{where}.{i}")) is not None:
                return found
    elif isinstance(value, str) and "\x00" in value:
        return where, "contains a NUL byte"
    elif isinstance(value, bool):
        return None
    elif isinstance(value, int) and not INT64[0] <= value <= INT64[1]:
        return where, "is out of range (64-bit integers only)"
    elif isinstance(value, float) and not math.isfinite(value):
        return where, "must be a finite number"
    return None


def check_storable(model: M, code: str) -> M:
    """400 naming the field when a validated model still holds NUL, a >64-bit integer or nan/inf."""
    found = _bad_value(model, "")
    if found is not None:
        raise BadRequest(f"{found[0] or 'body'}: {found[1]}", code=code, field=found[0])
    return model


def pydantic_detail(error: ValidationError) -> str:
    parts = []
    for e in error.errors()[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "body"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


async def read_json(request: web.Request, model: type[M], *, max_bytes: int = 64 * 1024) -> M:
    """Parse and validate a JSON body into `model`, turning every failure into a 400/413/415."""
    length = request.content_length  # parsed from the header on every access
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"JSON body larger than {max_bytes} bytes")
    ctype = request.content_type
    if ctype not in ("application/json", "") and not ctype.endswith("+json"):
        raise UnsupportedMediaType(f"Expected application/json, got {ctype}")
    raw = await request.content.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"JSON body larger than {max_bytes} bytes")
    try:
        parsed = model.model_validate_json(raw or b"{}")
    except ValidationError as err:
        raise BadRequest(pydantic_detail(err), code="invalid-body") from None
    return check_storable(parsed, "invalid-body")


def parse_query(request: web.Request, model: type[M]) -> M:
    try:
        parsed = model.model_validate(dict(request.query))
    except ValidationError as err:
        raise BadRequest(pydantic_detail(err), code="invalid-query") from None
    return check_storable(parsed, "invalid-query")
