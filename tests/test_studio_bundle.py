"""The studio's front end: the committed bundle is what its lockfile builds, served with hashed names under a
strict CSP, with nothing from a CDN."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from aiohttp.test_utils import TestClient

from tests.accounts_helpers import login, make_user

ROOT = Path(__file__).resolve().parent.parent
FRONT = ROOT / "studio" / "front"
BUNDLE = ROOT / "studio" / "static" / "bundle"


def test_committed_bundle_matches_manifest_and_lockfile() -> None:
    manifest = json.loads((BUNDLE / "manifest.json").read_text())
    assert set(manifest) == {"studio.js", "studio.css"}
    assert sorted(p.name for p in BUNDLE.iterdir()) == sorted([*manifest.values(), "manifest.json"])
    lock = json.loads((FRONT / "package-lock.json").read_text())
    package = json.loads((FRONT / "package.json").read_text())
    for name, version in {**package["dependencies"], **package["devDependencies"]}.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), name
        assert lock["packages"][f"node_modules/{name}"]["version"] == version, name
    axe = (ROOT / "tests" / "vendor" / "axe.min.js").read_text()[:200]
    assert f"axe v{package['devDependencies']['axe-core']}" in axe  # the copy `make studio` made
    assert (BUNDLE / manifest["studio.js"]).stat().st_size < 200_000  # small: no framework, one uploader, uPlot
    node = shutil.which("node")
    if node and (FRONT / "node_modules" / "esbuild").exists():
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([node, "build.mjs"], cwd=FRONT, check=True, timeout=120, capture_output=True,
                           env={**os.environ, "ONAIR_STUDIO_OUTDIR": out})
            for name in [*manifest.values(), "manifest.json"]:
                assert (Path(out) / name).read_bytes() == (BUNDLE / name).read_bytes(), name


def test_templates_load_nothing_from_elsewhere_and_inline_nothing() -> None:
    for page in (ROOT / "studio" / "templates").glob("*.html"):
        text = page.read_text()
        assert not re.search(r"""(src|href)=["']https?://""", text), page.name
        assert "<style" not in text and " style=" not in text and not re.search(r"<script(?![^>]*\bsrc=)", text), \
            page.name
        assert not re.search(r"\bon[a-z]+=", text), page.name  # no inline handlers


async def test_pages_carry_a_strict_csp_and_hashed_immutable_files(client: TestClient, db) -> None:
    await make_user(db, "ed", "editor")
    await login(client, "ed")
    resp = await client.get("/studio/library")
    assert resp.status == 200
    csp = resp.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and resp.headers["Cache-Control"] == "no-store"
    page = await resp.text()
    files = re.findall(r'(?:src|href)="(/studio/static/bundle/[^"]+)"', page)
    assert len(files) == 2
    for url in files:
        got = await client.get(url)
        assert got.status == 200 and "immutable" in got.headers["Cache-Control"]
    assert (await client.get("/studio/static/bundle/nope.js")).status == 404
    assert (await client.get("/studio/nosuchsection")).status == 404
