"""`onair partner add|list|revoke`: manage partner keys from the shell (the key is printed once)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

import asyncpg

from onair.core.errors import AppError
from onair.core.runtime import database, ensure_data_dir
from onair.core.settings import Settings
from syndication.partners import keys


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def register(sub: argparse._SubParsersAction) -> None:
    partner = sub.add_parser("partner", help="manage syndication partner keys")
    psub = partner.add_subparsers(dest="partner_command", required=True, metavar="ACTION")
    add = psub.add_parser("add", help="create a partner and print its key (shown once)")
    add.add_argument("name", help="partner slug: a-z, 0-9, '-', '_'")
    add.add_argument("--scopes", type=_csv, default=["feeds:read"],
                     help=f"comma-separated, among {', '.join(keys.SCOPES)} (default feeds:read)")
    add.add_argument("--tags", type=_csv, default=[], help="comma-separated tags this key may see (default all)")
    add.add_argument("--shows", type=_csv, default=[], help="comma-separated shows this key may see (default all)")
    add.add_argument("--rate-limit", type=int, default=600, help="requests per minute (default 600)")
    add.set_defaults(func=cmd_partner)
    lst = psub.add_parser("list", help="list partners (never their keys)")
    lst.set_defaults(func=cmd_partner)
    rev = psub.add_parser("revoke", help="revoke a partner's key")
    rev.add_argument("name")
    rev.set_defaults(func=cmd_partner)


async def _run(args: argparse.Namespace, dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        if args.partner_command == "add":
            partner, key = await keys.create(conn, args.name, args.scopes, tags=args.tags, shows=args.shows,
                                                 rate_per_minute=args.rate_limit)
            print(f"partner {partner.name} created with scopes {','.join(partner.scopes)}", file=sys.stderr)
            print("this key is shown once; store it now:", file=sys.stderr)
            print(key)
        elif args.partner_command == "list":
            for p in await keys.list_all(conn):
                state = f"revoked {p.revoked_at:%Y-%m-%d}" if p.revoked_at else "active"
                print(f"{p.name}\t{p.key_prefix}...\t{','.join(p.scopes)}\ttags={','.join(p.allowed_tags) or '*'}"
                      f"\tshows={','.join(p.allowed_shows) or '*'}\t{p.rate_per_minute}/min\t{state}")
        else:
            if await keys.revoke(conn, args.name, datetime.now(UTC)) is None:
                print(f"onair: error: no partner named {args.name!r}", file=sys.stderr)
                return 1
            print(f"partner {args.name} revoked")
        return 0
    except AppError as err:
        print(f"onair: error: {err.detail}", file=sys.stderr)
        return 2
    finally:
        await conn.close()


def cmd_partner(args: argparse.Namespace, settings: Settings) -> int:
    ensure_data_dir(settings)
    with database(settings, attach=True) as dsn:  # leaves a running `onair serve`'s database alone
        return asyncio.run(_run(args, dsn))
