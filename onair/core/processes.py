"""Small facts about processes that several parts of the core need."""

from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """Does a process with this pid exist (ours or not)? Used to tell a dead writer's leftovers from live files."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, it is just not ours to signal
        return True
    return True
