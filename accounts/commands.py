"""`onair user add|list|passwd|reset|disable|enable|role`: manage accounts from the shell, no prompts.

These commands only connect to the database: with the embedded PostgreSQL they use the one a running
`onair serve` started (never stopping or restarting it), and start their own only when none runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg

from onair.core.accounts import audit, users
from onair.core.accounts.roles import ROLES
from onair.core.errors import AppError
from onair.core.runtime import database, ensure_data_dir
from onair.core.settings import Settings

ACTOR = "cli"


def register(sub: argparse._SubParsersAction) -> None:
    user = sub.add_parser("user", help="manage studio accounts (admin, editor, producer, moderator)")
    usub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = usub.add_parser("add", help="create a user and print a one-time password (changed at first login)")
    add.add_argument("name", help="a-z, 0-9, '.', '_', '-'")
    add.add_argument("--role", required=True, choices=ROLES)
    usub.add_parser("list", help="list users")
    pw = usub.add_parser("passwd", help="set a user's password, read from the first line of standard input")
    pw.add_argument("name")
    for action, text in (("reset", "print a new one-time password and end the user's sessions"),
                         ("disable", "disable a user and end their sessions"), ("enable", "enable a user again")):
        usub.add_parser(action, help=text).add_argument("name")
    role = usub.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    user.set_defaults(func=cmd_user)


async def _apply(conn: asyncpg.Connection, args: argparse.Namespace) -> str | None:
    """Run one action; returns what to print on stdout (a one-time password) or None."""
    action, name = args.user_command, getattr(args, "name", None)
    if action == "add":
        user, password = await users.create(conn, name, args.role)
        await audit.record(conn, ACTOR, "user.create", object_type="user", object_id=name,
                           detail={"role": user.role})
        print(f"user {name} created with role {user.role}; this one-time password is shown once:", file=sys.stderr)
        return password
    if action == "reset":
        _, password = await users.reset(conn, name)
        await audit.record(conn, ACTOR, "user.reset", object_type="user", object_id=name)
        print(f"password of {name} reset; this one-time password is shown once:", file=sys.stderr)
        return password
    if action == "passwd":
        await users.set_password(conn, name, sys.stdin.readline().rstrip("\r\n"))
        await audit.record(conn, ACTOR, "user.password", object_type="user", object_id=name)
    elif action in ("disable", "enable"):
        await users.set_disabled(conn, name, action == "disable")
        await audit.record(conn, ACTOR, f"user.{action}", object_type="user", object_id=name)
    elif action == "role":
        await users.set_role(conn, name, args.role)
        await audit.record(conn, ACTOR, "user.role", object_type="user", object_id=name, detail={"role": args.role})
    else:  # list
        for u in await users.list_all(conn):
            state = "disabled" if u.disabled_at else ("one-time password" if u.must_change_password else "active")
            last = f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at else "never"
            print(f"{u.name}\t{u.role}\t{state}\tlast login {last}")
        return None
    print(f"user {name}: {action} done", file=sys.stderr)
    return None


async def _run(args: argparse.Namespace, dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        out = await _apply(conn, args)
    except AppError as err:
        print(f"onair: error: {err.detail}", file=sys.stderr)
        return 2
    finally:
        await conn.close()
    if out is not None:
        print(out)
    return 0


def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    ensure_data_dir(settings)
    with database(settings, attach=True) as dsn:
        return asyncio.run(_run(args, dsn))


async def _bootstrap(dsn: str) -> str | None:
    conn = await asyncpg.connect(dsn)
    try:
        password = await users.bootstrap_admin(conn)
        if password is not None:
            await audit.record(conn, ACTOR, "user.create", object_type="user", object_id=users.BOOTSTRAP_NAME,
                               detail={"role": "admin", "bootstrap": True})
        return password
    finally:
        await conn.close()


def bootstrap_line(dsn: str) -> str | None:
    """First run of `onair serve`: create the first admin; the line for the banner (printed once, ever)."""
    password = asyncio.run(_bootstrap(dsn))
    if password is None:
        return None
    return (f"    first login   user '{users.BOOTSTRAP_NAME}', one-time password {password}"
            "  (shown once; choose a new one at first login)")
