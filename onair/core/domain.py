"""What a domain hands the composition root: routes, job handlers, progress hooks, CLI commands,
first-start hooks.

Each area of the system exposes one `DOMAIN` value; `onair/app.py` lists them, and nothing else knows
the whole set. A domain that needs nothing of a kind leaves it empty.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from onair.core.jobs import Handler, ProgressHook

Setup = Callable[[web.Application], None]
Commands = Callable[[argparse._SubParsersAction], None]
Hook = Callable[[web.Application], Awaitable[None]]
# A periodic clean-up the janitor runs on each round with (pool, settings); returns how many rows it touched.
Sweep = Callable[[Any, Any], Awaitable[int]]


@dataclass(frozen=True)
class Domain:
    name: str
    setup: Setup | None = None
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    # Job kinds (usually another domain's) whose progress this domain follows: kind -> hook.
    progress_hooks: Mapping[str, ProgressHook] = field(default_factory=dict)
    commands: Commands | None = None
    first_start: Hook | None = None
    sweeps: tuple[Sweep, ...] = ()
