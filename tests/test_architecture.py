"""The dependency rule of ARCHITECTURE.md, checked on the source: infrastructure <- domains <- composition."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOMAINS = {"streaming", "transcode", "syndication", "hbbtv_apps"}
COMPOSITION = {"onair.app", "onair.cli", "onair.commands"}
# Which other domains each domain may import (public modules only).
ALLOWED = {"streaming": set(), "transcode": set(), "syndication": {"streaming"}, "hbbtv_apps": {"streaming"}}


def modules() -> list[tuple[str, Path]]:
    found = []
    for package in ("onair", *sorted(DOMAINS)):
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            name = ".".join(rel.parts).removesuffix(".__init__")
            found.append((name, path))
    return found


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(("module", "path"), modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_dependency_rule(module: str, path: Path) -> None:
    top = module.split(".")[0]
    for name in imported(path):
        target = name.split(".")[0]
        if target not in DOMAINS or target == top:
            continue
        if top == "onair":
            assert module in COMPOSITION, f"{module} (infrastructure) imports domain module {name}"
        else:
            assert target in ALLOWED[top], f"{module} imports {name}: {top} may not depend on {target}"


@pytest.mark.parametrize(("module", "path"), modules(), ids=lambda v: v if isinstance(v, str) else "")
def test_no_imports_inside_functions(module: str, path: Path) -> None:
    """Imports sit at the top of modules: a function-level import hides a dependency (or a cycle)."""
    tree = ast.parse(path.read_text(), str(path))
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                assert not isinstance(node, (ast.Import, ast.ImportFrom)), (
                    f"{module}:{node.lineno} imports inside {func.name}()")
