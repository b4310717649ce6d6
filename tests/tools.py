"""Test helpers for external tools: skip with an install hint locally, fail in CI (CI=true)."""

from __future__ import annotations

import os
import shutil
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str, install: str) -> None:
    """A needed tool is absent: in CI that is a failure, elsewhere a skip that says what to install."""
    message = f"{what} is not available; install it with: {install}"
    if IN_CI:
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def need_binary(name: str, install: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"'{name}'", install)
    return path  # type: ignore[return-value]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0
