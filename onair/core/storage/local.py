"""Objects as files under a root folder (the default store, and the one tests and single hosts use)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from onair.core.processes import alive
from onair.core.storage.common import (
    CHUNK,
    MultipartError,
    ObjectInfo,
    ObjectNotFound,
    Part,
    check_key,
    check_part_number,
    check_parts,
    guess_type,
)


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
        # The writer's pid in the name: sweep_temp() can tell a file a killed process left from one being written.
        fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix=f"put-{os.getpid()}-")
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

    # --- multipart: parts are files under .tmp/multipart/<upload id>/, joined into the object on completion ---

    def _upload_dir(self, key: str, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise MultipartError(f"no multipart upload {upload_id!r}")
        folder = self._tmp / "multipart" / upload_id
        try:
            owner = (folder / "key").read_text()
        except FileNotFoundError:
            raise MultipartError(f"no multipart upload {upload_id!r}") from None
        if owner != check_key(key):
            raise MultipartError(f"multipart upload {upload_id!r} is not for {key!r}")
        return folder

    async def start_multipart(self, key: str, content_type: str | None = None) -> str:
        check_key(key)
        upload_id = secrets.token_hex(16)

        def make() -> None:
            folder = self._tmp / "multipart" / upload_id
            folder.mkdir(parents=True)
            (folder / "key").write_text(key)

        await asyncio.to_thread(make)
        return upload_id

    async def put_part(self, key: str, upload_id: str, number: int, data: bytes) -> Part:
        check_part_number(number)

        def write() -> Part:
            folder = self._upload_dir(key, upload_id)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix="part-")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, folder / str(number))  # a part sent again replaces the earlier one whole
            return Part(number, hashlib.md5(data, usedforsecurity=False).hexdigest(), len(data))

        return await asyncio.to_thread(write)

    async def complete_multipart(self, key: str, upload_id: str, parts: list[Part]) -> ObjectInfo:
        check_parts(parts)

        def join() -> ObjectInfo:
            folder = self._upload_dir(key, upload_id)

            def write(out) -> None:
                for part in parts:
                    digest = hashlib.md5(usedforsecurity=False)
                    try:
                        src = open(folder / str(part.number), "rb")
                    except FileNotFoundError:
                        raise MultipartError(f"part {part.number} was never uploaded") from None
                    with src:
                        while block := src.read(CHUNK):
                            digest.update(block)
                            out.write(block)
                    if digest.hexdigest() != part.etag:
                        raise MultipartError(f"part {part.number} does not match its ETag")

            info = self._install(key, write)
            shutil.rmtree(folder, ignore_errors=True)
            return info

        return await asyncio.to_thread(join)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            folder = await asyncio.to_thread(self._upload_dir, key, upload_id)
        except MultipartError:
            return
        await asyncio.to_thread(shutil.rmtree, folder, True)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    async def presigned_url(self, key: str, expires: int = 300) -> str | None:
        return None

    async def check(self) -> None:
        # Unique per call: concurrent /readyz probes in one process must not delete each other's file.
        probe = f".tmp/ready-{os.getpid()}-{os.urandom(6).hex()}"
        await self.put_bytes(probe, b"ok")
        await self.delete(probe)


    def sweep_temp(self, max_age: float) -> int:
        """Delete the temp files of writers that died (SIGKILL, OOM) before renaming them into place: files in
        .tmp/ whose writer pid is gone, or any older than `max_age` seconds (a pid reused since). The store is
        one host's folder, so a pid names a process here. Multipart parts (.tmp/multipart/) belong to uploads
        that may resume days later and are left to their upload. Returns how many files went."""
        removed = 0
        now = time.time()
        with contextlib.suppress(FileNotFoundError), os.scandir(self._tmp) as entries:
            for entry in entries:
                if not entry.is_file(follow_symlinks=False):
                    continue
                match = _TEMP_NAME.match(entry.name)
                with _suppress_missing():
                    if (match and not alive(int(match.group(1)))) or now - entry.stat().st_mtime > max_age:
                        os.unlink(entry.path)
                        removed += 1
        return removed


_TEMP_NAME = re.compile(r"^(?:put|ready)-(\d+)-")


class _suppress_missing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, typ, exc, tb) -> bool:
        return typ is not None and issubclass(typ, FileNotFoundError)
