"""Domain sub-commands (ingest, partner, ...) for the CLI: each domain exposes `register(subparsers)`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import streaming.commands
import syndication.commands

DOMAIN_COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    streaming.commands.register,
    syndication.commands.register,
)
