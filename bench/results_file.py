"""Where a benchmark's figures go: bench/results/<name>.json (or <name>_quick.json), with the machine they came from."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def save(results_dir: Path, name: str, figures: dict[str, Any], *, quick: bool | None) -> dict[str, Any]:
    """Write the figures (quick runs to a separate file, so they never replace a full run's) and return them."""
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / (f"{name}_quick.json" if quick else f"{name}.json")).write_text(json.dumps(figures, indent=2) + "\n")
    return figures
