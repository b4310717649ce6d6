"""Registers domain sub-commands (ingest, partner, ...) with the CLI; imported by onair.cli.main."""

from __future__ import annotations

import streaming.commands
import syndication.commands
from onair.cli import EXTRA_COMMANDS

# Each domain exposes `register(subparsers)`; list them here.
EXTRA_COMMANDS.extend([streaming.commands.register, syndication.commands.register])
