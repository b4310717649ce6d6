"""Fixtures that make real faults: a small tmpfs to fill (root only)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.params import FULL
from tests.tools import IN_CI


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs mounted for this test: a disk we can fill for real."""
    if os.geteuid() != 0:
        message = "mounting a tmpfs to fill needs root (run the fault suite as root, as .ci/run does)"
        if IN_CI:
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0755", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill `disk` until ENOSPC, then free all but `leave` bytes of headroom. Returns the filler file."""
    filler = disk / "filler"
    block = b"\1" * (64 * 1024)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, block)
    finally:
        os.close(fd)
    size = filler.stat().st_size
    os.truncate(filler, max(0, size - leave))
    return filler


# --- the fault table ------------------------------------------------------------------------------------

ROWS: list[dict[str, Any]] = []


@pytest.fixture
def fault_report() -> Callable[..., None]:
    """Record one row of the fault table: fault, load, acknowledged/lost/doubled, errors by status, recovery."""

    def record(fault: str, load: str, *, acknowledged: int = 0, lost: int = 0, doubled: int = 0,
               statuses: dict[int, int] | None = None, recovery_seconds: float | None = None,
               bound_seconds: float | None = None) -> None:
        ROWS.append({"fault": fault, "load": load, "acknowledged": acknowledged, "lost": lost, "doubled": doubled,
                     "errors_by_status": {str(k): v for k, v in sorted((statuses or {}).items())},
                     "recovery_seconds": None if recovery_seconds is None else round(recovery_seconds, 2),
                     "recovery_bound_seconds": bound_seconds})

    return record


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With ONAIR_FAULTS_REPORT=path (make faults): print the table and write it as JSON."""
    target = os.environ.get("ONAIR_FAULTS_REPORT")
    if not target or not ROWS:
        return
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(json.dumps({"full_length": FULL, "faults": ROWS}, indent=2) + "\n")
    header = f"{'fault':44} {'load':34} {'ack/lost/dbl':>13} {'errors by status':22} {'recovery':>9}"
    lines = [header, "-" * len(header)]
    for r in ROWS:
        errs = ", ".join(f"{k}x{v}" for k, v in r["errors_by_status"].items()) or "-"
        rec = "-" if r["recovery_seconds"] is None else f"{r['recovery_seconds']:.2f}s"
        lines.append(f"{r['fault'][:44]:44} {r['load'][:34]:34} "
                     f"{r['acknowledged']:>5}/{r['lost']}/{r['doubled']:<5} {errs[:22]:22} {rec:>9}")
    print("\n" + "\n".join(lines) + f"\n(written to {target})")
