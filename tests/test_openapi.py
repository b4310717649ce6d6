"""The described API: /api/openapi.json is valid OpenAPI 3.1, generated from the models the handlers
validate with, and schemathesis against a running onair (admin credentials) finds no server error."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from onair.app import create_app, route_table
from onair.core import openapi
from onair.core.settings import Settings
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.helpers import make_asset, spawn_server

CONFIG = Path(__file__).with_name("schemathesis.toml")
# Bounded so `make test` stays within CI's budget (about 40 s on 2 cores at 15); raise it locally to dig.
EXAMPLES = int(os.environ.get("ONAIR_FUZZ_EXAMPLES", "15"))
SEED = os.environ.get("ONAIR_FUZZ_SEED", "18")
_CALLS = re.compile(r"(?:read_json|parse_query)\(\s*request,\s*([A-Za-z_][\w.]*)")


def _document() -> dict:
    app = create_app(Settings().with_(admin_token="-", signing_key="-"), "", run_worker=False)
    return openapi.document(app)


def test_document_is_openapi_31_and_covers_the_json_api() -> None:
    doc = _document()
    validate(doc)  # raises on anything that is not valid OpenAPI 3.1
    assert doc["openapi"] == "3.1.0"
    described = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    wanted = {(r.path, r.method) for r in route_table(Settings())
              if r.path.startswith("/api/") and r.method not in ("HEAD", "OPTIONS")
              and not re.search(r"/(ws|events)$", r.path)}
    assert wanted <= described, sorted(wanted - described)
    votes = doc["paths"]["/api/v1/polls/{poll_id}/votes"]["post"]
    assert votes["requestBody"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/VoteIn"
    assert "security" not in votes  # anonymous
    assert doc["paths"]["/api/v1/polls"]["post"]["x-permission"] == "polls:write"


def test_described_models_are_the_ones_handlers_validate_with() -> None:
    """A handler that calls read_json/parse_query with a model declares that same model in @described."""
    doc = _document()
    app = create_app(Settings().with_(admin_token="-", signing_key="-"), "", run_worker=False)
    checked = 0
    for route in app.router.routes():
        source = inspect.getsource(inspect.unwrap(route.handler)) if inspect.isfunction(route.handler) else ""
        for name in _CALLS.findall(source):
            op = openapi.operation_of(route.handler)
            declared = {m.__name__ for m in (op.body, op.query) if m is not None}
            assert name.rsplit(".", 1)[-1] in declared, f"{route.handler.__qualname__} validates with {name}"
            checked += 1
    assert checked >= 20
    assert "PollIn" in doc["components"]["schemas"]


async def test_bad_input_is_a_400_naming_the_field(client) -> None:
    """NUL bytes, integers past 64 bits and non-finite numbers: 400 problem+json naming the field."""
    cases = [
        ("get", "/api/v1/assets/a%00b", None, "asset_id"),
        ("get", "/api/v1/audit?action=x%00y", None, "action"),
        ("get", "/api/v1/audit?before=" + "9" * 40, None, "before"),
        ("post", "/api/v1/users", '{"name": "a\\u0000b", "role": "viewer"}', "name"),
    ]
    for method, path, body, field in cases:
        resp = await getattr(client, method)(path, headers={**ADMIN, "Content-Type": "application/json"},
                                              data=body)
        problem = await resp.json(content_type=None)
        assert resp.status == 400, (path, problem)
        assert resp.content_type == "application/problem+json"
        assert field in problem["detail"], problem


async def test_embed_start_never_writes_infinity(client, db) -> None:
    asset_id = await make_asset(db)
    for start in ("1:inf", "nan", "1e400", "inf"):
        resp = await client.get(f"/embed/{asset_id}?start={start}")
        page = await resp.text()
        assert resp.status == 200
        assert "Infinity" not in page and "NaN" not in page, start


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


async def test_schemathesis_finds_no_server_error(tmp_path: Path, database_url: str) -> None:
    env = {"ONAIR_DATABASE_URL": database_url, "ONAIR_ADMIN_TOKEN": ADMIN_TOKEN, "ONAIR_LOG_LEVEL": "WARNING"}
    with spawn_server(tmp_path / "data", env) as server:
        doc = await asyncio.to_thread(_get_json, server.url + "/api/openapi.json")
        validate(doc)
        cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
               server.url + "/api/openapi.json", "-H", f"Authorization: Bearer {ADMIN_TOKEN}",
               "--checks", "not_a_server_error", "-n", str(EXAMPLES), "--seed", SEED, "-w", "2",
               "--phases", "examples,coverage,fuzzing", "--no-shrink", "--request-timeout", "30"]
        run = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=400,
                                      cwd=tmp_path)
        report = run.stdout[-6000:] + run.stderr[-2000:] + server.output()[-4000:]
        # The acceptance is "no server error": a 5xx (ST101) fails, and so does any unhandled exception the
        # server logged. A read timeout on a CI machine busy with other tests is reported, not a failure.
        assert "ST101" not in run.stdout and "unhandled error" not in server.output(), report
        assert run.returncode == 0 or "Network Error" in run.stdout, report
        assert "generated" in run.stdout, report


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
