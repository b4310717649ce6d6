"""deploy/kubernetes: manifests validate against the Kubernetes schemas (kubernetes-validate) and, for KEDA's
CRDs, against deploy/kubernetes/schemas/keda.json; they point at things that exist (probes answer, CLI
arguments parse, env vars are real settings, selectors match); the KEDA queue query runs on the real schema."""

from __future__ import annotations

import json
import shlex
import zoneinfo
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from onair.cli import build_parser
from onair.core import jobs
from onair.core.settings import documented

ROOT = Path(__file__).resolve().parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.30.0"  # oldest release we support (lifecycle sleep action is GA-enabled from 1.30)
KEDA_SCHEMA = json.loads((KUBE / "schemas" / "keda.json").read_text())
OVERLAYS = ("hpa", "keda")


def _load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    """What `kubectl apply -k` would send (resources only; we use no patches or generators)."""
    kust = _load(directory / "kustomization.yaml")[0]
    assert set(kust) <= {"apiVersion", "kind", "namespace", "resources"}, "extend _kustomize for new features"
    docs: list[dict[str, Any]] = []
    for entry in kust["resources"]:
        target = directory / entry
        assert target.exists(), f"{directory.name}/kustomization.yaml lists missing {entry}"
        docs.extend(_kustomize(target) if target.is_dir() else _load(target))
    return docs


def _all_docs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(KUBE.rglob("*.yaml")):
        if path.name != "kustomization.yaml":
            out.extend((str(path.relative_to(ROOT)), d) for d in _load(path))
    return out


def _by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize(("where", "doc"), _all_docs(), ids=lambda v: v if isinstance(v, str) else v["kind"])
def test_manifest_validates(where: str, doc: dict[str, Any]) -> None:
    if doc["apiVersion"].startswith("keda.sh/"):
        # KEDA CRDs are not in kubernetes-validate's schema set: checked against our subset schema instead.
        schema = {**KEDA_SCHEMA, "$ref": f"#/$defs/{doc['kind']}"}
        jsonschema.validate(doc, schema)
        behavior = doc["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
        if behavior:  # KEDA copies this into the HPA it creates: it must be a valid HPA behavior
            hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
                   "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 2,
                            "behavior": behavior}}
            kubernetes_validate.validate(hpa, K8S_VERSION, strict=True)
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_keda_schema_rejects_mistakes() -> None:
    """The hand-written schema is not a rubber stamp: numbers in trigger metadata are a classic KEDA error."""
    bad = _by_kind(_load(KUBE / "keda" / "worker-scaledobject.yaml"), "ScaledObject")["onair-worker"]
    bad = json.loads(json.dumps(bad))
    bad["spec"]["triggers"][0]["metadata"]["targetQueryValue"] = 2
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, {**KEDA_SCHEMA, "$ref": "#/$defs/ScaledObject"})
    del bad["spec"]["triggers"][0]["metadata"]["query"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, {**KEDA_SCHEMA, "$ref": "#/$defs/ScaledObject"})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_is_consistent(overlay: str) -> None:
    docs = _kustomize(KUBE / overlay)
    deployments = _by_kind(docs, "Deployment")
    assert set(deployments) == {"onair-web", "onair-worker"}
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), "duplicate resources"
    assert {d["metadata"].get("namespace", "onair") for d in docs if d["kind"] != "Namespace"} == {"onair"}
    config = _by_kind(docs, "ConfigMap")["onair-config"]["data"]
    secret = _by_kind(docs, "Secret")["onair-secrets"]["stringData"]

    # Every selector (Service, PDB) matches its Deployment's pod labels (the live ingest Service: the web pods).
    for kind in ("Service", "PodDisruptionBudget"):
        for name, obj in _by_kind(docs, kind).items():
            selector = obj["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            labels = deployments["onair-web" if name == "onair-live-ingest" else name]["spec"]["template"]["metadata"][
                "labels"]
            assert selector.items() <= labels.items(), f"{kind}/{name} selects no pod"
    ingest = _by_kind(docs, "Service")["onair-live-ingest"]["spec"]["ports"]
    web_ports = {p["name"]: p for p in deployments["onair-web"]["spec"]["template"]["spec"]["containers"][0]["ports"]}
    for port in ingest:   # each ingest port lands on a named container port of the same protocol
        assert web_ports[port["targetPort"]]["protocol"] == port["protocol"]

    # Autoscalers (HPA or KEDA's) point at existing deployments; only one autoscaler per deployment.
    targets = [d["spec"]["scaleTargetRef"]["name"] for d in docs
               if d["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")]
    assert set(targets) <= set(deployments) and len(targets) == len(set(targets))
    assert "onair-web" in targets

    known_env = {d.env for d in documented()}
    parser = build_parser()
    for dep in deployments.values():
        (container,) = dep["spec"]["template"]["spec"]["containers"]
        args = parser.parse_args(container["args"])  # the container's CLI arguments are real ones
        assert args.command in ("serve", "worker"), shlex.join(container["args"])
        # Every variable the pod receives is a documented setting (no typo silently ignored).
        assert set(config) | set(secret) <= known_env
        assert {"ONAIR_DATABASE_URL", "ONAIR_STORAGE"} <= set(config) | set(secret)
        res = container["resources"]
        assert res["requests"]["cpu"] and res["limits"]["memory"]
    web = deployments["onair-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert config["ONAIR_HOST"] == "0.0.0.0", "pods must listen beyond loopback"
    assert "ONAIR_REDIS_URL" in secret, "several web pods need Redis for live messaging"


async def test_probe_paths_and_scaling_metrics_exist(client) -> None:
    """The probes and the metrics the autoscalers read are served by the real app."""
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    await client.get("/healthz")  # so the request counter has a sample
    exposition = await (await client.get("/metrics")).text()
    adapter = _load(KUBE / "hpa" / "prometheus-adapter-rules.yaml")[0]["data"]["config.yaml"]
    for rule in yaml.safe_load(adapter)["rules"]:
        series = rule["seriesQuery"].split("{")[0].strip("'")
        assert f"\n{series}" in exposition or exposition.startswith(series), series
    web_so = _by_kind(_load(KUBE / "keda" / "web-scaledobject.yaml"), "ScaledObject")["onair-web"]
    for trig in web_so["spec"]["triggers"]:
        if trig["type"] == "prometheus":
            assert trig["metadata"]["query"].split("(")[1].split("{")[0] in exposition


def test_cron_prescale_is_parsable() -> None:
    web_so = _by_kind(_load(KUBE / "keda" / "web-scaledobject.yaml"), "ScaledObject")["onair-web"]
    (cron,) = [t["metadata"] for t in web_so["spec"]["triggers"] if t["type"] == "cron"]
    zoneinfo.ZoneInfo(cron["timezone"])
    for expr in (cron["start"], cron["end"]):
        assert len(expr.split()) == 5
    assert int(cron["desiredReplicas"]) > web_so["spec"]["minReplicaCount"]


def _keda_query() -> str:
    so = _by_kind(_load(KUBE / "keda" / "worker-scaledobject.yaml"), "ScaledObject")["onair-worker"]
    assert so["spec"]["minReplicaCount"] == 0, "transcode workers scale to zero between shows"
    (trig,) = [t for t in so["spec"]["triggers"] if t["type"] == "postgresql"]
    return trig["metadata"]["query"]


async def test_keda_queue_query_on_real_schema(db) -> None:
    """The scaler query runs on the migrated schema and counts exactly the work a worker pod would do."""
    query = _keda_query()
    assert await db.fetchval(query) == 0  # empty queue -> KEDA deactivates -> zero pods

    a = await jobs.enqueue(db, "transcode", {"asset": "a"})
    await jobs.enqueue(db, "transcode", {"asset": "b"})
    await jobs.enqueue(db, "transcode", {"asset": "later"}, delay_seconds=3600)   # retry backoff: not yet
    await jobs.enqueue(db, "other", {}, queue="elsewhere")                         # another queue
    done = await jobs.enqueue(db, "transcode", {"asset": "c"})
    await db.execute("UPDATE jobs SET status = 'done', finished_at = now() WHERE id = $1", done)
    assert await db.fetchval(query) == 2

    # A claimed job still counts, so the pod running it is not scaled away mid-transcode.
    await db.execute("UPDATE jobs SET status = 'running', locked_by = 'w1', lease_until = now() + '30s' "
                     "WHERE id = $1", a)
    assert await db.fetchval(query) == 2
    plan = "\n".join(r[0] for r in await db.fetch("EXPLAIN " + query))
    assert "jobs" in plan


async def test_readiness_holds_under_concurrent_probes(client) -> None:
    """During a spike a pod answers many /readyz at once (kubelet, load balancer, CDN health checks);
    a probe racing another must not report not-ready, or the pod leaves the Service when needed most."""
    import asyncio

    from onair.core.storage import STORE

    store = client.server.app[STORE]
    results = await asyncio.gather(*(store.check() for _ in range(300)), return_exceptions=True)
    assert [r for r in results if r is not None] == []
    statuses = await asyncio.gather(*(client.get("/readyz") for _ in range(50)))
    assert [r.status for r in statuses] == [200] * 50


# --- the image and the single-host compose file (validated statically: no container engine runs here) -------

IMAGE = "onair:0.1.0"


def _dockerfile() -> list[tuple[str, str]]:
    lines, current = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        current += raw.rstrip("\\").strip() + " "
        if not raw.rstrip().endswith("\\"):
            word, _, rest = current.strip().partition(" ")
            lines.append((word.upper(), rest))
            current = ""
    return lines


def test_dockerfile_is_multistage_non_root_with_healthcheck_and_every_package() -> None:
    instructions = _dockerfile()
    assert sum(1 for w, _ in instructions if w == "FROM") >= 2, "multi-stage: build, then a slim runtime"
    user = [rest for w, rest in instructions if w == "USER"]
    assert user and not user[-1].startswith(("root", "0")), "the runtime runs as a non-root user"
    health = next(rest for w, rest in instructions if w == "HEALTHCHECK")
    assert "/healthz" in health
    copied = {rest.split()[0] for w, rest in instructions if w == "COPY" and not rest.startswith("--from")}
    pyproject = (ROOT / "pyproject.toml").read_text()
    packages = [p.strip('"* ') for p in pyproject.split("include = [")[1].split("]")[0].split(",")]
    assert set(packages) <= copied, f"the image must contain every package: {set(packages) - copied} missing"
    entry = next(rest for w, rest in instructions if w == "ENTRYPOINT")
    assert json.loads(entry) == ["onair"]
    ports = next(rest for w, rest in instructions if w == "EXPOSE").split()
    assert {"8080", "1935", "9710/udp"} <= set(ports)


def test_kubernetes_and_compose_use_the_image_the_makefile_builds() -> None:
    assert f"-t {IMAGE}" in (ROOT / "Makefile").read_text()
    images = {c["image"] for _, d in _all_docs() if d["kind"] in ("Deployment", "StatefulSet")
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {IMAGE}
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert {s.get("image") for name, s in compose["services"].items() if name in ("web", "worker")} == {IMAGE}


def test_compose_wires_real_services_with_real_settings() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "seaweedfs", "web", "worker"} <= set(services)
    known = {d.env for d in documented()}
    parser = build_parser()
    for name in ("web", "worker"):
        env = services[name]["environment"]
        assert set(env) <= known, f"{name}: unknown settings {set(env) - known}"
        assert env["ONAIR_STORAGE"] == "s3" and "seaweedfs" in env["ONAIR_S3_ENDPOINT"]
        assert "postgres" in env["ONAIR_DATABASE_URL"] and "redis" in env["ONAIR_REDIS_URL"]
        parser.parse_args(services[name]["command"])  # the arguments are ones the CLI accepts
    s3 = json.loads((ROOT / "deploy" / "compose" / "seaweedfs-s3.json").read_text())
    creds = s3["identities"][0]["credentials"][0]
    web_env = services["web"]["environment"]
    assert (creds["accessKey"], creds["secretKey"]) == (web_env["ONAIR_S3_ACCESS_KEY_ID"],
                                                        web_env["ONAIR_S3_SECRET_ACCESS_KEY"])
