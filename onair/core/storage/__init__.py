"""Object storage: one protocol, a local-folder store (default) and an S3 store (aiobotocore).

Objects are immutable once written and writes are atomic: a reader sees the whole old
object, the whole new object, or nothing. Keys are ours (``assets/<id>/...``), never a
client's filename.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web
from botocore.exceptions import BotoCoreError

from onair.core.settings import Settings
from onair.core.storage.common import (
    CHUNK,
    MIN_PART_SIZE,
    InvalidKey,
    MultipartError,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    Part,
    check_key,
    guess_type,
)
from onair.core.storage.local import LocalStore
from onair.core.storage.s3 import S3Store, StorageRefused

log = logging.getLogger("onair.core.storage")

__all__ = ["CHUNK", "MIN_PART_SIZE", "STORE", "InvalidKey", "LocalStore", "MultipartError", "ObjectInfo",
           "ObjectNotFound", "ObjectStore", "Part", "S3Store", "StorageRefused", "check_key", "close_store",
           "guess_type", "open_store", "store_context"]


STORE = web.AppKey("object_store", ObjectStore)


async def open_store(settings: Settings) -> LocalStore | S3Store:
    if settings.storage == "s3":
        store = S3Store(settings)
        await store.setup()
        try:
            await store.ensure_bucket()
        except BotoCoreError as exc:  # S3 down at start-up: start anyway; /readyz reports storage failing
            log.warning("object storage unreachable at start (%s); continuing", exc)
        except StorageRefused as exc:  # started, but not ready: the log line says what to fix
            log.error("object storage refuses our requests: %s. Check ONAIR_S3_ACCESS_KEY_ID and "
                      "ONAIR_S3_SECRET_ACCESS_KEY; /readyz reports storage failing until fixed", exc)
        return store
    local = LocalStore(settings.data_dir / "objects")
    await local.setup()
    return local


async def close_store(store: LocalStore | S3Store) -> None:
    if isinstance(store, S3Store):
        await store.close()


def store_context(settings: Settings):
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        store = await open_store(settings)
        app[STORE] = store
        yield
        await close_store(store)

    return ctx
