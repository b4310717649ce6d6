"""The state of a tus upload (the `uploads` table, which this module alone writes) and its staged bytes.

Nothing lives on a pod's disk, so any web replica can take the next PATCH:

- the bytes go to an object-store multipart upload towards the asset's source key, started at creation;
- S3 parts must be at least 5 MiB (but the last), and tus chunks are often far smaller. So the bytes not yet
  gathered into a part are kept as small *pieces* (one object per PATCH under `uploads/tus/<id>/`); when the
  pieces plus the body being read reach PART_SIZE they become one part and the pieces are dropped. Each PATCH
  writes only its own bytes (no re-writing of a growing tail), and memory per PATCH stays under two parts;
- the row records the committed offset, the parts (number, ETag, size) and the pieces. An unrecorded part or
  piece is harmless: the next PATCH re-uploads that part number and never reads an unlisted piece.

PostgreSQL large objects were the other choice; they would put every video byte through the database's WAL
and backups, where the object store is built for exactly this.

Concurrency: a PATCH *claims* the row (a lease token, one short UPDATE that also checks the offset) and commits
its new offset with one conditional UPDATE at the end. No database connection is held while the client's body
is read. A second PATCH meanwhile answers 409 (tus' answer to a conflicting offset); a lease a crashed or
stalled replica leaves behind expires after `ONAIR_TUS_LEASE_SECONDS`, and a replica renews its lease while
bytes keep arriving, and before every part it uploads, so a replica whose lease was taken over stops before
writing a part.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from onair.core.errors import BadRequest, Conflict, NotFound
from onair.core.storage import MIN_PART_SIZE, MultipartError, ObjectNotFound, ObjectStore, Part
from streaming import catalog

TUS_VERSION = "1.0.0"
TUS_HEADERS = {"Tus-Resumable": TUS_VERSION}
PART_SIZE = MIN_PART_SIZE  # the smallest S3 allows: the least buffered in memory and in pieces
PREFIX = "uploads/tus/"
OCTETS = "application/octet-stream"


def staging_prefix(upload_id: str) -> str:
    return f"{PREFIX}{upload_id}/"


@dataclass(frozen=True)
class Piece:
    key: str
    size: int


@dataclass
class Upload:
    id: str
    asset_id: str
    length: int
    offset: int
    multipart_id: str
    parts: list[Part] = field(default_factory=list)
    pieces: list[Piece] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Upload:
        return cls(row["id"], row["asset_id"], row["length"], row["offset"], row["multipart_id"],
                   [Part(p["number"], p["etag"], p["size"]) for p in row["parts"]],
                   [Piece(p["key"], p["size"]) for p in row["pieces"]])


def _json(items: list[Part] | list[Piece]) -> list[dict[str, Any]]:
    return [dict(vars(i)) for i in items]


async def create(pool: asyncpg.Pool, store: ObjectStore, *, upload_id: str, asset_id: str, length: int,
                 metadata: dict[str, str], **asset: Any) -> None:
    """The asset (status uploading), the row and the multipart upload its bytes go to."""
    multipart_id = await store.start_multipart(catalog.source_key(asset_id), OCTETS)
    async with pool.acquire() as conn, conn.transaction():
        await catalog.create_asset(conn, asset_id, status="uploading", **asset)
        await conn.execute("""INSERT INTO uploads (id, asset_id, length, metadata, multipart_id)
                              VALUES ($1, $2, $3, $4::jsonb, $5)""", upload_id, asset_id, length, metadata,
                           multipart_id)


async def get(db: asyncpg.Pool | asyncpg.Connection, upload_id: str) -> Upload:
    row = await db.fetchrow("SELECT * FROM uploads WHERE id = $1", upload_id)
    if row is None:
        raise NotFound(f"No upload {upload_id!r}", headers=TUS_HEADERS)
    return Upload.from_row(row)


async def claim(pool: asyncpg.Pool, upload_id: str, offset: int, lease_seconds: float,
                idle_seconds: float | None = None) -> tuple[Upload, str]:
    """Take the lease on the upload at `offset`, or say why not (404, or 409 for offset or a PATCH in flight).

    A lease not renewed for `idle_seconds` is taken over too: its PATCH has received nothing that long (a
    writer that gets bytes renews every third of the lease), so its client died, silently or not, and is now
    resuming on a new connection from the committed offset. The old PATCH then loses its lease and writes
    nothing more (LeaseLost), instead of the client getting 409 until the whole lease runs out."""
    token = secrets.token_hex(12)
    held_for = lease_seconds if idle_seconds is None else max(0.0, lease_seconds - idle_seconds)
    row = await pool.fetchrow(
        """UPDATE uploads SET lease_token = $3, lease_until = now() + make_interval(secs => $4)
            WHERE id = $1 AND "offset" = $2
              AND (lease_until IS NULL OR lease_until < now() + make_interval(secs => $5))
        RETURNING *""", upload_id, offset, token, lease_seconds, held_for)
    if row is not None:
        return Upload.from_row(row), token
    current = await get(pool, upload_id)
    if current.offset != offset:
        raise Conflict(f"Upload-Offset {offset} does not match the server's offset {current.offset}",
                       headers=TUS_HEADERS)
    raise Conflict("Another PATCH to this upload is in progress",
                   headers={**TUS_HEADERS, "Retry-After": str(max(1, round(lease_seconds - held_for)))})


class LeaseLost(Conflict):
    code = "upload-lease-lost"


class Writer:
    """One PATCH's bytes: fed chunk by chunk, gathered into parts, the rest saved as a piece at the end."""

    def __init__(self, pool: asyncpg.Pool, store: ObjectStore, upload: Upload, token: str,
                 lease_seconds: float) -> None:
        self.pool, self.store, self.upload, self.token = pool, store, upload, token
        self.lease_seconds = lease_seconds
        self.key = catalog.source_key(upload.asset_id)
        self.position = upload.offset  # bytes received so far, this PATCH included
        self.parts, self.pieces = list(upload.parts), list(upload.pieces)
        self.consumed: list[Piece] = []  # pieces now inside a part: deleted once the row says so
        self.buffer = bytearray()
        self.renewed = time.monotonic()

    async def feed(self, chunk: bytes) -> None:
        if self.position + len(chunk) > self.upload.length:
            raise BadRequest("More bytes than Upload-Length", code="upload-overflow", headers=TUS_HEADERS)
        self.buffer += chunk
        self.position += len(chunk)
        if sum(p.size for p in self.pieces) + len(self.buffer) >= PART_SIZE:
            await self._flush_parts()
        elif time.monotonic() - self.renewed > self.lease_seconds / 3:
            await self._renew()

    async def _renew(self) -> None:
        status = await self.pool.execute(
            "UPDATE uploads SET lease_until = now() + make_interval(secs => $3) WHERE id = $1 AND lease_token = $2",
            self.upload.id, self.token, self.lease_seconds)
        if status != "UPDATE 1":
            raise LeaseLost("This PATCH was too slow and another one took over the upload", headers=TUS_HEADERS)
        self.renewed = time.monotonic()

    async def _pending(self) -> bytearray:
        """The pieces and the buffer as one run of bytes (under two parts' worth)."""
        data = bytearray()
        for piece in self.pieces:
            data += await self.store.get_bytes(piece.key)
        data += self.buffer
        self.consumed += self.pieces
        self.pieces, self.buffer = [], bytearray()
        return data

    async def _flush_parts(self) -> None:
        await self._renew()  # never write a part under a lease another PATCH may hold by now
        data = await self._pending()
        while len(data) >= PART_SIZE:
            number = len(self.parts) + 1
            self.parts.append(await self.store.put_part(self.key, self.upload.multipart_id, number,
                                                        bytes(data[:PART_SIZE])))
            del data[:PART_SIZE]
        self.buffer = data

    async def persist(self) -> None:
        """Commit what arrived (also after an error or a dropped client) and release the lease."""
        piece = None
        try:
            if self.buffer:
                start = self.position - len(self.buffer)
                piece = Piece(f"{staging_prefix(self.upload.id)}{start:015d}-{self.token}", len(self.buffer))
                await self.store.put_bytes(piece.key, bytes(self.buffer), OCTETS)
                self.pieces.append(piece)
                self.buffer = bytearray()
            status = await self.pool.execute(
                """UPDATE uploads SET "offset" = $3, parts = $4::jsonb, pieces = $5::jsonb, lease_token = NULL,
                          lease_until = NULL WHERE id = $1 AND lease_token = $2""",
                self.upload.id, self.token, self.position, _json(self.parts), _json(self.pieces))
        except BaseException:
            await self.release()
            raise
        if status != "UPDATE 1":
            if piece is not None:
                await self.store.delete(piece.key)
            raise LeaseLost("This PATCH was too slow and another one took over the upload", headers=TUS_HEADERS)
        for old in self.consumed:
            await self.store.delete(old.key)

    async def release(self) -> None:
        await self.pool.execute("UPDATE uploads SET lease_token = NULL, lease_until = NULL "
                                "WHERE id = $1 AND lease_token = $2", self.upload.id, self.token)

    async def complete(self) -> None:
        """The last byte arrived: finish the object, queue the transcode, drop the row, all under the lease."""
        try:
            data = await self._pending()
            parts = self.parts
            if data or not parts:
                parts = [*parts, await self.store.put_part(self.key, self.upload.multipart_id, len(parts) + 1,
                                                           bytes(data))]
            try:
                await self.store.complete_multipart(self.key, self.upload.multipart_id, parts)
            except MultipartError:
                # An earlier attempt completed the object and died before the commit below.
                try:
                    done = (await self.store.stat(self.key)).size == self.upload.length
                except ObjectNotFound:
                    done = False
                if not done:
                    raise
        except BaseException:
            await self.release()
            raise
        async with self.pool.acquire() as conn, conn.transaction():
            status = await conn.execute("DELETE FROM uploads WHERE id = $1 AND lease_token = $2",
                                        self.upload.id, self.token)
            if status != "DELETE 1":
                raise LeaseLost("Another PATCH took over the upload", headers=TUS_HEADERS)
            await catalog.start_transcode(conn, self.upload.asset_id, self.key, self.upload.length)
        await self.store.delete_prefix(staging_prefix(self.upload.id))


async def terminate(pool: asyncpg.Pool, store: ObjectStore, upload_id: str) -> None:
    """Drop the upload, its still-uploading asset and everything staged for it."""
    upload = await get(pool, upload_id)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM uploads WHERE id = $1", upload_id)
        await catalog.discard_unfinished_upload(conn, upload.asset_id)
    await store.abort_multipart(catalog.source_key(upload.asset_id), upload.multipart_id)
    await store.delete_prefix(staging_prefix(upload_id))
