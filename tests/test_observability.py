"""deploy/observability: the alert rules pass promtool (syntax and their own unit tests), the dashboard is a
well-formed Grafana document, and every metric name either of them uses exists on a real /metrics."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.chat_helpers import open_room
from tests.conftest import ADMIN
from tests.device_helpers import mint_device
from tests.ingest_tools import make_clip, upload, wait_for
from tests.test_metrics import samples
from tests.tools import need_binary

OBS = Path(__file__).resolve().parent.parent / "deploy" / "observability"
DASHBOARD = OBS / "onair-show-night.json"
RULES = OBS / "alerts.yaml"
NAME = re.compile(r"\bonair_[a-z0-9_]+")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",),
            "summary": ("_count", "_sum", "")}


def _promtool() -> str:
    return need_binary("promtool", "apt-get install prometheus (Debian's package ships promtool)")


def _dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]


def _rule_exprs() -> list[str]:
    doc = yaml.safe_load(RULES.read_text())
    return [r["expr"] for g in doc["groups"] for r in g["rules"]]


def test_rules_pass_promtool_check_and_their_unit_tests() -> None:
    promtool = _promtool()
    check = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    # The alerts fire on a bad show night's series and stay quiet on a good one (alerts_test.yaml).
    unit = subprocess.run([promtool, "test", "rules", "alerts_test.yaml"], cwd=OBS, capture_output=True,
                          text=True, timeout=60)
    assert unit.returncode == 0, unit.stdout + unit.stderr
    names = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    assert {"OnairJobQueueBackingUp", "OnairEncoderSlowerThanRealtime", "OnairVoteRefusalsSpiking",
            "OnairHighErrorRate", "OnairRedisDown", "OnairDatabaseDown"} <= names


def test_example_prometheus_config_is_valid() -> None:
    check = subprocess.run([_promtool(), "check", "config", "prometheus.yml"], cwd=OBS, capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_dashboard_is_a_grafana_document() -> None:
    doc = json.loads(DASHBOARD.read_text())
    assert doc["uid"] and doc["title"] and doc["schemaVersion"] >= 36
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    cells: set[tuple[int, int]] = set()
    for p in doc["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"panel {p['title']!r} overlaps another"
        cells |= mine
        if p["type"] != "row":
            assert p["targets"] and p["datasource"]["uid"] == "${datasource}", p["title"]


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """Each panel's query is valid PromQL: promtool parses it as a recording rule's expression."""
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"onair:dashboard_query_{i}", "expr": e}
                                                         for i, e in enumerate(_dashboard_exprs())]}]}
    path = tmp_path / "dashboard_rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    check = subprocess.run([_promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


async def _workload(client: TestClient, tmp_path: Path) -> None:
    """A few seconds of a show: pages, a poll with accepted and refused votes, a chat message, the origin."""
    assert (await client.get("/healthz")).status == 200
    poll = await (await client.post("/api/v1/polls", json={"question": "Who?", "options": ["a", "b"]},
                                    headers=ADMIN)).json()
    device = await mint_device(client)
    refused = await client.post(f"/api/v1/polls/{poll['id']}/votes", json={"device_id": device, "option_id": 1})
    assert refused.status == 409  # not open yet
    assert (await client.post(f"/api/v1/polls/{poll['id']}/open", headers=ADMIN)).status == 200
    accepted = await client.post(f"/api/v1/polls/{poll['id']}/votes", json={"device_id": device, "option_id": 1})
    assert accepted.status == 201
    await open_room(client, "show")
    sent = await client.post("/api/v1/chat/show/messages", json={"device_id": device, "nickname": "ann",
                                                                 "text": "hello"})
    assert sent.status == 201, await sent.text()
    assert (await client.get("/media/nope/hls/master.m3u8")).status == 404
    # A one-second clip through the real transcode (the client's app runs the job worker in-process).
    clip = make_clip(tmp_path / "clip.mp4", size="160x90", seconds=1)
    asset_id = await upload(client, clip.read_bytes(), title="Metrics clip")
    assert (await wait_for(client, asset_id))["status"] == "ready"
    assert (await client.get(f"/media/{asset_id}/hls/master.m3u8")).status == 200


def _available(text: str) -> dict[str, set[str]]:
    """Every name a query can use, with the label names seen on it."""
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.setdefault(family.name + suffix, set())
        for s in family.samples:
            names.setdefault(s.name, set()).update(s.labels)
    return names


async def test_every_metric_the_dashboard_and_rules_use_exists(client: TestClient, tmp_path: Path) -> None:
    await _workload(client, tmp_path)
    resp = await client.get("/metrics")
    assert resp.status == 200
    available = _available(await resp.text())
    used = {n for expr in _dashboard_exprs() + _rule_exprs() for n in NAME.findall(expr)}
    assert used, "the dashboard and rules query onair metrics"
    missing = sorted(used - set(available))
    assert not missing, f"used by deploy/observability but not on /metrics: {missing}"
    # The workload itself shows up under the names the dashboard reads.
    for name in ("onair_votes_accepted_total", "onair_votes_refused_total", "onair_vote_batch_size_bucket",
                 "onair_chat_messages_total", "onair_origin_responses_total", "onair_http_request_seconds_bucket",
                 "onair_database_up", "onair_bus_up"):
        assert name in available, name
    text = await resp.text()
    assert samples(text, "onair_transcode_speed_count") >= 1
    assert samples(text, "onair_transcode_media_seconds_total") > 0
    assert samples(text, "onair_origin_responses_total", status="200") >= 1
    assert samples(text, "onair_origin_responses_total", status="404") >= 1
    assert {"reason"} <= available["onair_votes_refused_total"]
    assert {"room", "status"} <= available["onair_chat_messages_total"]

