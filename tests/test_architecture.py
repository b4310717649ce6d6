"""The shape of the codebase, checked on the source (README "Architecture"):

1. `onair.core` imports no domain; only the composition root (onair/app.py, cli.py, supervisor.py) sees them all.
2. Each table has one owning module: only it writes (INSERT/UPDATE/DELETE) the table.
3. Each area imports only what its row of ALLOWED names (transcode: onair.core only).
4. Job kinds are named in onair/core/job_kinds.py and nowhere else.
5. Small modules and functions: over the limits only with a reason written in the code.

Every rule is also run against a planted violation, so a checker that stopped seeing anything would fail.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from onair.core import job_kinds

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("accounts", "onair", "streaming", "transcode", "syndication", "hbbtv_apps", "studio")
COMPOSITION = {"onair.app", "onair.cli", "onair.supervisor"}

# area prefix -> what it may import (besides the standard library and third-party packages): a package or module
# and everything under it, or, written "=name", exactly that module.
# Other domains read the catalogue through `streaming.catalog` (its __init__) and its value types in `.rights`.
CATALOG_API = ("=streaming.catalog", "=streaming.catalog.rights")
ALLOWED: dict[str, tuple[str, ...]] = {
    "onair.core": ("onair.core",),
    "transcode": ("onair.core", "transcode"),
    "streaming.catalog": ("onair.core", "streaming.catalog", "streaming.delivery.purge"),
    # caption uploads are checked and converted in the request (a bad file is a 400 with line numbers)
    "streaming.ingest": ("onair.core", "streaming.ingest", "transcode.captions", "transcode.caption_tracks",
                         *CATALOG_API),
    "streaming.delivery": ("onair.core", "streaming.delivery", *CATALOG_API),
    "streaming.interaction": ("onair.core", "streaming.interaction", *CATALOG_API),
    "streaming.live": ("onair.core", "streaming.live", "streaming.delivery", "transcode.ladder", "transcode.probe",
                       "transcode.commands", "transcode.packaging", "transcode.ffmpeg", "transcode.images",
                       *CATALOG_API),
    # the live embed page reads a channel through streaming.live's public reader (its __init__)
    "syndication": ("onair.core", "syndication", "streaming.delivery.signing", "=streaming.live", *CATALOG_API),
    "hbbtv_apps": ("onair.core", "hbbtv_apps", *CATALOG_API),
    "studio": ("onair.core", "studio", *CATALOG_API),
    "accounts": ("onair.core", "accounts"),
}

# table -> the one module that writes it
OWNERS: dict[str, str] = {
    "schema_migrations": "onair.core.db.migrate",
    "jobs": "onair.core.jobs",
    "assets": "streaming.catalog.repository",
    "uploads": "streaming.ingest.tus_store",
    "polls": "streaming.interaction.polls",
    "poll_audit": "streaming.interaction.polls",
    "poll_exclusions": "streaming.interaction.polls",
    "votes": "streaming.interaction.ballots",
    "poll_tallies": "streaming.interaction.ballots",
    "chat_rooms": "streaming.interaction.chat",
    "chat_messages": "streaming.interaction.chat",
    "chat_bans": "streaming.interaction.chat",
    "shows": "streaming.interaction.shows",
    "pairings": "streaming.interaction.pairing",
    "partners": "syndication.partners.keys",
    "partner_rate": "syndication.partners.keys",
    "partner_usage": "syndication.partners.keys",
    "player_sessions": "syndication.analytics",
    "hbbtv_apps": "hbbtv_apps.registry",
    "live_channels": "streaming.live.channels",
    "webhook_endpoints": "syndication.webhooks.store",
    "webhook_deliveries": "syndication.webhooks.store",
    "hbbtv_banners": "hbbtv_apps.registry",
    "users": "onair.core.accounts.users",
    "sessions": "onair.core.accounts.sessions",
    "login_throttle": "onair.core.accounts.sessions",
    "audit_log": "onair.core.accounts.audit",
    "api_tokens": "onair.core.accounts.tokens",
}

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# A long module or function says why in a comment containing this marker.
LONG_REASON = "long:"


def modules() -> list[tuple[str, Path]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            found.append((".".join(rel.parts).removesuffix(".__init__"), path))
    return found


MODULES = modules()
ids = [name for name, _ in MODULES]


KNOWN = {name for name, _ in MODULES}


def imported(source: str) -> set[str]:
    """Modules a source imports; `from pkg import mod` counts as pkg.mod when mod is one of our modules."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                names.add(sub if sub in KNOWN else node.module)
    return names


def _under(name: str, prefix: str) -> bool:
    if prefix.startswith("="):
        return name == prefix[1:]
    return name == prefix or name.startswith(prefix + ".")


def import_violations(module: str, source: str) -> list[str]:
    if module in COMPOSITION or module in PACKAGES or not any(_under(module, p) for p in PACKAGES):
        return []
    area = max((p for p in ALLOWED if _under(module, p)), key=len, default=None)
    if area is None:  # onair/<something> outside core that is not the composition root
        return [f"{module} is neither onair.core nor the composition root"]
    return [f"{module} imports {name}: {area} may import only {', '.join(ALLOWED[area])}"
            for name in sorted(imported(source))
            if any(_under(name, p) for p in PACKAGES) and not any(_under(name, p) for p in ALLOWED[area])]


_WRITE = re.compile(r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
_NOT_TABLES = {"set", "skip", "nowait", "of"}  # ON CONFLICT DO UPDATE SET, FOR UPDATE SKIP LOCKED, ...


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def written_tables(source: str) -> set[str]:
    """Tables named after INSERT INTO / UPDATE / DELETE FROM in the module's strings (docstrings aside)."""
    tables = set()
    tree = ast.parse(source)
    prose = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            tables.update(m.lower() for m in _WRITE.findall(node.value) if m.lower() not in _NOT_TABLES)
    return tables


def ownership_violations(module: str, source: str) -> list[str]:
    bad = []
    for table in sorted(written_tables(source)):
        owner = OWNERS.get(table)
        if owner is None:
            bad.append(f"{module} writes {table}, which has no owner in OWNERS: name its one owning module")
        elif owner != module:
            bad.append(f"{module} writes {table}, owned by {owner}: call the owner's functions")
    return bad


KINDS = {v for k, v in vars(job_kinds).items() if k.isupper() and isinstance(v, str)}


def job_kind_violations(module: str, source: str) -> list[str]:
    if module == "onair.core.job_kinds":
        return []
    return [f"{module}:{node.lineno} spells the job kind {node.value!r}: use onair.core.job_kinds"
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and node.value in KINDS]


def size_violations(module: str, source: str) -> list[str]:
    bad = []
    lines = source.splitlines()
    if len(lines) > MAX_MODULE_LINES and LONG_REASON not in source[:2000]:
        bad.append(f"{module} has {len(lines)} lines (> {MAX_MODULE_LINES}): split it, or say why ('{LONG_REASON}')")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            body = "\n".join(lines[node.lineno - 1:node.end_lineno])
            if length > MAX_FUNCTION_LINES and LONG_REASON not in body:
                bad.append(f"{module}.{node.name} has {length} lines (> {MAX_FUNCTION_LINES}): split it, or say why "
                           f"in a comment ('{LONG_REASON} ...')")
    return bad


def function_import_violations(module: str, source: str) -> list[str]:
    """A function-level import hides a dependency (or a cycle)."""
    bad = []
    for func in ast.walk(ast.parse(source)):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            bad += [f"{module}:{node.lineno} imports inside {func.name}()" for node in ast.walk(func)
                    if isinstance(node, (ast.Import, ast.ImportFrom))]
    return bad


CHECKS = (import_violations, ownership_violations, job_kind_violations, size_violations, function_import_violations)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(("module", "path"), MODULES, ids=ids)
def test_module_follows_the_rules(check, module: str, path: Path) -> None:
    assert check(module, path.read_text()) == []


PLANTED = {
    import_violations: ("onair.core.health", "from streaming.catalog import get_asset\n"),
    ownership_violations: ("syndication.feeds.routes", 's = "UPDATE assets SET title = $2 WHERE id = $1"\n'),
    job_kind_violations: ("syndication.feeds.routes", f'kind = "{job_kinds.INGEST_FETCH}"\n'),
    size_violations: ("transcode.ladder", "def f():\n" + "    x = 1\n" * 80),
    function_import_violations: ("transcode.ladder", "def f():\n    import os\n"),
}


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_each_rule_catches_a_planted_violation(check) -> None:
    module, source = PLANTED[check]
    assert check(module, source), f"{check.__name__} did not notice: {source!r}"


def test_planted_cross_domain_imports_are_caught() -> None:
    assert import_violations("transcode.tasks", "from streaming import catalog\n")
    assert import_violations("syndication.feeds.routes", "from streaming.catalog.repository import Asset\n")
    assert import_violations("streaming.live.encoder", "from transcode import tasks\n")
    assert not import_violations("onair.app", "import streaming.catalog.domain\n")


def test_every_table_in_the_schema_has_an_owner() -> None:
    schema = (ROOT / "onair" / "core" / "db" / "schema.txt").read_text()
    tables = set(re.findall(r"^column (\w+)\.", schema, re.MULTILINE))
    assert tables, "could not read table names from schema.txt"
    assert tables - set(OWNERS) == set()
