"""Fault lengths: `make test` runs the fault suite short (CI has 2 cores and 20 minutes for everything);
`make faults` sets ONAIR_FAULTS_FULL=1 for the lengths the issue names. Any one can be set by its own env var."""

from __future__ import annotations

import os

FULL = os.environ.get("ONAIR_FAULTS_FULL", "").lower() in ("1", "true", "yes")


def seconds(name: str, short: float, full: float) -> float:
    """An outage length: ONAIR_FAULT_<NAME>, else the full or the short default."""
    raw = os.environ.get(f"ONAIR_FAULT_{name.upper()}")
    return float(raw) if raw else (full if FULL else short)


REDIS_DOWN = seconds("redis_down", 2.0, 15.0)
DB_STALL = seconds("db_stall", 6.0, 20.0)
S3_OUTAGE = seconds("s3_outage", 3.0, 30.0)


def count(name: str, short: int, full: int) -> int:
    """A repetition count or load: ONAIR_FAULT_<NAME>, else the full or the short default."""
    raw = os.environ.get(f"ONAIR_FAULT_{name.upper()}")
    return int(raw) if raw else (full if FULL else short)


WORKER_KILLS = count("worker_kills", 2, 20)
SILENT_CLIENTS = count("silent_clients", 100, 500)
