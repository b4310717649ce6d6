"""Roles and what they may do: the one table the permission checks read.

A permission is "<area>:<verb>". Handlers declare one (onair.core.auth.requires); `onair routes` lists them.
"""

from __future__ import annotations

ROLES = ("admin", "editor", "producer", "moderator")

# Any signed-in person (their own account: who am I, change my password).
SELF = "self"

EDITOR = frozenset({"assets:read", "assets:write", "live:write", "rights:write", "captions:write",
                    "stats:read"})
PRODUCER = frozenset({"polls:read", "polls:write", "shows:write", "hbbtv:write", "banners:write", "live:control"})
MODERATOR = frozenset({"chat:moderate"})

# Admin-only permissions are not listed for other roles.
ADMIN_ONLY = frozenset({"users:manage", "audit:read", "partners:manage", "admin"})
ALL = EDITOR | PRODUCER | MODERATOR | ADMIN_ONLY
GRANTS: dict[str, frozenset[str]] = {
    "editor": EDITOR,
    "producer": PRODUCER,
    "moderator": MODERATOR,
}


def allows(role: str, permission: str) -> bool:
    if role == "admin" or permission == SELF:
        return True
    return permission in GRANTS.get(role, frozenset())


def permissions(role: str) -> list[str]:
    if role == "admin":
        return ["*"]
    return sorted(GRANTS.get(role, frozenset()) | {SELF})


def grantable(role: str) -> list[str]:
    """The scopes a personal API token of someone with this role may carry."""
    return sorted(p for p in ALL if allows(role, p))
