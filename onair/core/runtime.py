"""What every command needs before it runs: a writable data dir and a migrated database
(the configured one, or an embedded PostgreSQL for the duration)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Iterator

from onair.core.db.embedded import EmbeddedPostgres, running
from onair.core.db.migrate import migrate_url
from onair.core.settings import SettingError, Settings

log = logging.getLogger("onair.core.runtime")


def ensure_data_dir(settings: Settings) -> None:
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # A probe of its own: replicas sharing one data dir start together and must not unlink each other's.
        with tempfile.NamedTemporaryFile(dir=settings.data_dir, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise SettingError("data_dir", f"{settings.data_dir} is not writable ({exc.strerror})") from None


@contextlib.contextmanager
def database(settings: Settings, *, attach: bool = False) -> Iterator[str]:
    """Yield a migrated database URL: the configured one, or an embedded server for the duration.

    attach=True (short-lived commands such as `onair user`, `onair partner`): when `onair serve` already
    runs the embedded server of this data dir, connect to it and leave it running.
    """
    if settings.database_url:
        dsn = settings.database_url
        _migrate(dsn)
        yield dsn
        return
    pgdata = settings.data_dir / "pg"
    if attach and (dsn := running(pgdata)) is not None:
        _migrate(dsn)
        yield dsn
        return
    pg = EmbeddedPostgres(pgdata)
    dsn = pg.start()
    pg.supervise()  # restarted on the same port if it dies; /healthz fails if it keeps dying
    try:
        _migrate(dsn)
        yield dsn
    finally:
        pg.stop()


def _migrate(dsn: str) -> None:
    try:
        applied = asyncio.run(migrate_url(dsn))
    except OSError as exc:
        raise SettingError("database_url", f"cannot connect ({exc})") from None
    if applied:
        log.info("applied %d migration(s)", len(applied))
