"""What both object stores share: keys, object facts, multipart rules, content types."""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

CHUNK = 256 * 1024
MULTIPART_THRESHOLD = 16 * 1024 * 1024
# S3 refuses a multipart upload whose parts (all but the last) are smaller than this; the local store
# enforces the same rule so a bug shows up in tests on either backend.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000

mimetypes.add_type("application/vnd.apple.mpegurl", ".m3u8")
mimetypes.add_type("application/dash+xml", ".mpd")
mimetypes.add_type("video/iso.segment", ".m4s")
mimetypes.add_type("video/mp4", ".mp4")
mimetypes.add_type("text/vtt", ".vtt")


class ObjectNotFound(KeyError):
    pass


class InvalidKey(ValueError):
    pass


class MultipartError(ValueError):
    """A multipart upload that cannot complete: unknown id, a part missing or changed, a part too small."""


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


@dataclass(frozen=True)
class Part:
    """One uploaded part of a multipart upload, as `complete_multipart` wants it back."""
    number: int
    etag: str
    size: int


def check_part_number(number: int) -> int:
    if not 1 <= number <= MAX_PARTS:
        raise MultipartError(f"part number {number} is outside 1..{MAX_PARTS}")
    return number


def check_parts(parts: list[Part]) -> None:
    """S3's rules, checked before completing: ascending numbers, every part but the last >= MIN_PART_SIZE."""
    if not parts:
        raise MultipartError("a multipart upload needs at least one part")
    numbers = [check_part_number(p.number) for p in parts]
    if numbers != sorted(set(numbers)):
        raise MultipartError("part numbers must be unique and ascending")
    if any(p.size < MIN_PART_SIZE for p in parts[:-1]):
        raise MultipartError(f"every part but the last must be at least {MIN_PART_SIZE} bytes")


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
    # Multipart: the object appears (atomically, whole) only when complete_multipart succeeds. A part
    # number uploaded again replaces the earlier bytes of that number.
    async def start_multipart(self, key: str, content_type: str | None = None) -> str: ...
    async def put_part(self, key: str, upload_id: str, number: int, data: bytes) -> Part: ...
    async def complete_multipart(self, key: str, upload_id: str, parts: list[Part]) -> ObjectInfo: ...
    async def abort_multipart(self, key: str, upload_id: str) -> None: ...
    def local_path(self, key: str) -> Path | None: ...
    async def presigned_url(self, key: str, expires: int = 300) -> str | None: ...
    async def check(self) -> None: ...


