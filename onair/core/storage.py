"""Object storage: one protocol, a local-folder store (default) and an S3 store (aiobotocore).

Objects are immutable once written and writes are atomic: a reader sees the whole old
object, the whole new object, or nothing. Keys are ours (``assets/<id>/...``), never a
client's filename.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import mimetypes
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from aiohttp import web
from botocore.exceptions import BotoCoreError

from onair.core.settings import Settings

log = logging.getLogger("onair.core.storage")

CHUNK = 256 * 1024
MULTIPART_THRESHOLD = 16 * 1024 * 1024

mimetypes.add_type("application/vnd.apple.mpegurl", ".m3u8")
mimetypes.add_type("application/dash+xml", ".mpd")
mimetypes.add_type("video/iso.segment", ".m4s")
mimetypes.add_type("video/mp4", ".mp4")
mimetypes.add_type("text/vtt", ".vtt")


class ObjectNotFound(KeyError):
    pass


class InvalidKey(ValueError):
    pass


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # strong validator, quoted form not included
    last_modified: datetime
    content_type: str


def check_key(key: str) -> str:
    """Reject keys that could escape a prefix or the store root."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise InvalidKey(f"invalid object key {key!r}")
    if any(p in ("..", ".", "") for p in key.split("/")):
        raise InvalidKey(f"invalid object key {key!r}")
    return key


def guess_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


class ObjectStore(Protocol):
    async def put_file(self, key: str, path: Path, content_type: str | None = None) -> ObjectInfo: ...
    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo: ...
    async def stat(self, key: str) -> ObjectInfo: ...
    async def get_bytes(self, key: str) -> bytes: ...
    def iter_range(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]: ...
    async def download(self, key: str, path: Path) -> None: ...
    async def list(self, prefix: str) -> list[str]: ...
    async def delete(self, key: str) -> None: ...
    async def delete_prefix(self, prefix: str) -> int: ...
    def local_path(self, key: str) -> Path | None: ...
    async def presigned_url(self, key: str, expires: int = 300) -> str | None: ...
    async def check(self) -> None: ...


class LocalStore:
    """Objects as files under a root folder; temp file + rename makes each write atomic."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._tmp = self.root / ".tmp"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def setup(self) -> None:
        await asyncio.to_thread(self._tmp.mkdir, parents=True, exist_ok=True)

    def _info(self, key: str, path: Path) -> ObjectInfo:
        st = path.stat()
        # Objects never change in place (atomic replace gives a new inode), so inode+size+mtime is a
        # strong validator without hashing gigabytes.
        etag = hashlib.blake2b(f"{st.st_ino}-{st.st_size}-{st.st_mtime_ns}".encode(), digest_size=12).hexdigest()
        return ObjectInfo(key, st.st_size, etag, datetime.fromtimestamp(int(st.st_mtime), UTC), guess_type(key))

    def _install(self, key: str, src_writer) -> ObjectInfo:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        try:
            with os.fdopen(fd, "wb") as out:
                src_writer(out)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except BaseException:
            with _suppress_missing():
                os.unlink(tmp)
            raise
        return self._info(key, dest)

    async def put_file(self, key: str, path: Path, content_type: str | None = None) -> ObjectInfo:
        def write(out) -> None:
            with open(path, "rb") as src:
                shutil.copyfileobj(src, out, CHUNK)

        return await asyncio.to_thread(self._install, key, write)

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        return await asyncio.to_thread(self._install, key, lambda out: out.write(data))

    async def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            return await asyncio.to_thread(self._info, key, path)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None

    async def get_bytes(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(key) from None

    async def iter_range(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            f = await asyncio.to_thread(open, path, "rb")
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        try:
            await asyncio.to_thread(f.seek, start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                chunk = await asyncio.to_thread(f.read, CHUNK if remaining is None else min(CHUNK, remaining))
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            f.close()

    async def download(self, key: str, path: Path) -> None:
        src = self._path(key)
        try:
            await asyncio.to_thread(shutil.copyfile, src, path)
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    async def list(self, prefix: str) -> list[str]:
        def walk() -> list[str]:
            base = self.root / prefix.rstrip("/") if prefix else self.root
            if not base.exists():
                return []
            keys = []
            for dirpath, _dirs, files in os.walk(base):
                for name in files:
                    rel = os.path.relpath(os.path.join(dirpath, name), self.root)
                    if not rel.startswith(".tmp"):
                        keys.append(rel.replace(os.sep, "/"))
            return sorted(k for k in keys if k.startswith(prefix))

        return await asyncio.to_thread(walk)

    async def delete(self, key: str) -> None:
        with _suppress_missing():
            await asyncio.to_thread(os.unlink, self._path(key))

    async def delete_prefix(self, prefix: str) -> int:
        keys = await self.list(prefix)
        for key in keys:
            await self.delete(key)

        def prune() -> None:
            base = self.root / prefix.rstrip("/")
            if base.is_dir() and base != self.root:
                shutil.rmtree(base, ignore_errors=True)

        await asyncio.to_thread(prune)
        return len(keys)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    async def presigned_url(self, key: str, expires: int = 300) -> str | None:
        return None

    async def check(self) -> None:
        # Unique per call: concurrent /readyz probes in one process must not delete each other's file.
        probe = f".tmp/ready-{os.getpid()}-{os.urandom(6).hex()}"
        await self.put_bytes(probe, b"ok")
        await self.delete(probe)


class _suppress_missing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, typ, exc, tb) -> bool:
        return typ is not None and issubclass(typ, FileNotFoundError)


class S3Store:
    """The S3 API through aiobotocore: path-style addressing, SigV4, multipart for large files."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bucket = settings.s3_bucket
        self._stack = AsyncExitStack()
        self._client = None

    async def setup(self) -> None:
        # Short timeouts and few attempts: the origin sits behind a CDN whose own origin timeout is ~10-30 s,
        # and a fast 503 (the CDN's stale-if-error covers it) beats botocore's default of ~90 s of retries.
        s = self.settings
        config = AioConfig(signature_version="s3v4", s3={"addressing_style": "path"},
                           retries={"max_attempts": s.s3_max_attempts, "mode": "standard"},
                           connect_timeout=s.s3_connect_timeout, read_timeout=s.s3_read_timeout,
                           max_pool_connections=64)
        self._client = await self._stack.enter_async_context(get_session().create_client(
            "s3", endpoint_url=self.settings.s3_endpoint, region_name=self.settings.s3_region,
            aws_access_key_id=self.settings.s3_access_key_id,
            aws_secret_access_key=self.settings.s3_secret_access_key, config=config))

    async def close(self) -> None:
        await self._stack.aclose()

    @property
    def client(self):
        if self._client is None:
            raise RuntimeError("S3Store.setup() was not awaited")
        return self._client

    async def ensure_bucket(self) -> None:
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except self.client.exceptions.ClientError:
            await self.client.create_bucket(Bucket=self.bucket)

    def _not_found(self, err: Exception) -> bool:
        code = getattr(err, "response", {}).get("Error", {}).get("Code", "")
        return code in ("404", "NoSuchKey", "NotFound")

    @staticmethod
    def _info(key: str, head: dict) -> ObjectInfo:
        return ObjectInfo(key, head["ContentLength"], head["ETag"].strip('"'), head["LastModified"],
                          head.get("ContentType") or guess_type(key))

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        await self.client.put_object(Bucket=self.bucket, Key=check_key(key), Body=data,
                                     ContentType=content_type or guess_type(key))
        return await self.stat(key)

    async def put_file(self, key: str, path: Path, content_type: str | None = None) -> ObjectInfo:
        check_key(key)
        ctype = content_type or guess_type(key)
        size = (await asyncio.to_thread(path.stat)).st_size
        if size <= MULTIPART_THRESHOLD:
            return await self.put_bytes(key, await asyncio.to_thread(path.read_bytes), ctype)
        # Multipart: the object only appears when complete_multipart_upload succeeds.
        upload = await self.client.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=ctype)
        upload_id = upload["UploadId"]
        parts = []
        try:
            f = await asyncio.to_thread(open, path, "rb")
            with f:
                number = 1
                while chunk := await asyncio.to_thread(f.read, MULTIPART_THRESHOLD):
                    part = await self.client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                         PartNumber=number, Body=chunk)
                    parts.append({"ETag": part["ETag"], "PartNumber": number})
                    number += 1
            await self.client.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                        MultipartUpload={"Parts": parts})
        except BaseException:
            await self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        return await self.stat(key)

    async def stat(self, key: str) -> ObjectInfo:
        try:
            head = await self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except self.client.exceptions.ClientError as err:
            if self._not_found(err):
                raise ObjectNotFound(key) from None
            raise
        return self._info(key, head)

    async def _get(self, key: str, range_: str | None = None) -> dict:
        kwargs = {"Range": range_} if range_ else {}
        try:
            return await self.client.get_object(Bucket=self.bucket, Key=check_key(key), **kwargs)
        except self.client.exceptions.NoSuchKey:
            raise ObjectNotFound(key) from None
        except self.client.exceptions.ClientError as err:
            if self._not_found(err):
                raise ObjectNotFound(key) from None
            raise

    async def get_bytes(self, key: str) -> bytes:
        resp = await self._get(key)
        async with resp["Body"] as body:
            return await body.read()

    async def iter_range(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        range_ = f"bytes={start}-{'' if end is None else end}" if (start or end is not None) else None
        resp = await self._get(key, range_)
        async with resp["Body"] as body:
            while chunk := await body.read(CHUNK):  # works for plain and checksum-validating bodies
                yield chunk

    async def download(self, key: str, path: Path) -> None:
        out = await asyncio.to_thread(open, path, "wb")
        with out:
            async for chunk in self.iter_range(key):
                await asyncio.to_thread(out.write, chunk)

    async def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(keys)

    async def delete(self, key: str) -> None:
        await self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    async def delete_prefix(self, prefix: str) -> int:
        keys = await self.list(prefix)
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i:i + 1000]]
            await self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)

    def local_path(self, key: str) -> Path | None:
        return None

    async def presigned_url(self, key: str, expires: int = 300) -> str | None:
        return await self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": check_key(key)}, ExpiresIn=expires)

    async def check(self) -> None:
        await self.client.head_bucket(Bucket=self.bucket)


STORE = web.AppKey("object_store", ObjectStore)


async def open_store(settings: Settings) -> LocalStore | S3Store:
    if settings.storage == "s3":
        store = S3Store(settings)
        await store.setup()
        try:
            await store.ensure_bucket()
        except BotoCoreError as exc:  # S3 down at start-up: start anyway; /readyz reports storage failing
            log.warning("object storage unreachable at start (%s); continuing", exc)
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
