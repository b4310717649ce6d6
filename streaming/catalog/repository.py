"""The assets catalogue: reading and writing asset rows. Public module (syndication/hbbtv read it)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from onair.core import events, job_kinds
from onair.core.errors import NotFound, TooManyRequests
from onair.core.jobs import enqueue, request_cancel
from streaming.catalog.rights import Rights

_ALPHABET = "abcdefghijkmnopqrstuvwxyz23456789"  # no l/0/1: ids get read aloud and typed


def new_asset_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(12))


def media_prefix(asset_id: str) -> str:
    """Object-store prefix of every object of an asset, all generations; served at /media/<id>/..."""
    return f"assets/{asset_id}/"


def generation_prefix(asset_id: str, generation: int) -> str:
    """Where one transcode's outputs live. Generation 0 is the original layout (straight under the media
    prefix); each replacement of the source writes a fresh g<N>/, so no published name is ever rewritten."""
    return media_prefix(asset_id) + (f"g{generation}/" if generation else "")


@dataclass(frozen=True)
class Asset:
    id: str
    title: str
    description: str
    tags: tuple[str, ...]
    show: str | None
    status: str
    progress: float
    error: str | None
    facts: dict[str, Any] | None
    outputs: dict[str, Any] | None
    duration: float | None
    visibility: str
    rights: Rights
    credit: str | None
    copyright: str | None
    rating: str | None
    embed_origins: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    ready_at: datetime | None
    job_id: int | None = None
    source_key: str | None = None
    loudness_target: str | None = None   # None: the deployment's setting
    ladder: str | None = None            # None: the deployment's setting
    media_generation: int = 0            # the generation the public URLs serve
    replace_job_id: int | None = None    # a running replacement's transcode
    replacement: dict[str, Any] | None = None  # the last replacement's status, progress, error

    @property
    def prefix(self) -> str:
        """Object-store prefix of the published generation (what /media/<id>/<key> serves)."""
        return generation_prefix(self.id, self.media_generation)

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Asset:
        return cls(
            id=row["id"], title=row["title"], description=row["description"], tags=tuple(row["tags"]),
            show=row["show"], status=row["status"], progress=row["progress"], error=row["error"],
            facts=row["facts"], outputs=row["outputs"], duration=row["duration"], visibility=row["visibility"],
            rights=Rights(row["available_from"], row["available_until"], tuple(row["geo_allow"]),
                          tuple(row["geo_deny"])),
            credit=row["credit"], copyright=row["copyright"], rating=row["rating"],
            embed_origins=tuple(row["embed_origins"]), created_at=row["created_at"], updated_at=row["updated_at"],
            ready_at=row["ready_at"], job_id=row["job_id"], source_key=row["source_key"],
            # columns added since: readers that select their own column list (feeds) may leave them out
            loudness_target=row.get("loudness_target"), ladder=row.get("ladder"),
            media_generation=row.get("media_generation") or 0, replace_job_id=row.get("replace_job_id"),
            replacement=row.get("replacement"))

    @property
    def ready(self) -> bool:
        return self.status == "ready" and self.outputs is not None


async def get_asset(db: asyncpg.Pool | asyncpg.Connection, asset_id: str) -> Asset | None:
    row = await db.fetchrow("SELECT * FROM assets WHERE id = $1", asset_id)
    return Asset.from_row(row) if row else None


async def existing_asset(db: asyncpg.Pool | asyncpg.Connection, asset_id: str) -> Asset:
    """The asset, or 404 problem+json naming it (what every handler on /api/v1/assets/{asset_id}/... says)."""
    asset = await get_asset(db, asset_id)
    if asset is None:
        raise NotFound(f"No asset {asset_id!r}")
    return asset


# --- writing and presenting assets (ingest, admin API) ----------------------------------------------


ACTIVE_STAGES = ("probing", "transcoding", "packaging")


def source_prefix(asset_id: str) -> str:
    """Originals live outside the media prefix, so the public origin never serves them."""
    return f"sources/{asset_id}/"


def source_key(asset_id: str) -> str:
    return source_prefix(asset_id) + "original"


CREATABLE = ("show", "visibility", "available_from", "available_until", "geo_allow", "geo_deny", "credit",
             "copyright", "partner_id", "loudness_target", "ladder")


async def create_asset(db: asyncpg.Pool | asyncpg.Connection, asset_id: str, *, title: str, description: str = "",
                       tags: list[str] | tuple[str, ...] = (), status: str = "queued", source_url: str | None = None,
                       source_name: str | None = None, **extra: Any) -> None:
    """Insert a new asset; `extra` takes the optional metadata columns in CREATABLE (rights, credits, ...)."""
    unknown = extra.keys() - set(CREATABLE)
    if unknown:
        raise TypeError(f"create_asset: unknown fields {sorted(unknown)}")
    cols = ["id", "title", "description", "tags", "status", "source_url", "source_name", *extra]
    values = [asset_id, title, description, list(tags), status, source_url, source_name, *extra.values()]
    marks = ", ".join(f"${i + 1}" for i in range(len(cols)))
    await db.execute(f"INSERT INTO assets ({', '.join(cols)}) VALUES ({marks})", *values)
    await events.publish(db, "asset.created", {"asset_id": asset_id, "title": title, "status": status})


async def start_transcode(conn: asyncpg.Connection, asset_id: str, key: str, size: int) -> int:
    """Point the asset at its stored original and queue the transcode (call inside a transaction)."""
    # Short clips first: a long master should not hold up a newsroom's 30-second clip.
    priority = 100 + min(50, size // (100 * 1024 * 1024))
    # the asset's media choices as they are now (None: the worker's deployment settings decide)
    choices = await conn.fetchrow("SELECT loudness_target, ladder, media_generation FROM assets WHERE id = $1",
                                  asset_id)
    generation = choices["media_generation"] if choices else 0
    job_id = await enqueue(conn, job_kinds.TRANSCODE_ASSET, {"asset_id": asset_id, "source_key": key,
                                                 "prefix": generation_prefix(asset_id, generation),
                                                 "generation": generation,
                                                 **({k: choices[k] for k in ("loudness_target", "ladder")}
                                                    if choices else {})},
                           priority=priority, on_done=job_kinds.CATALOG_TRANSCODED)
    await conn.execute(
        """UPDATE assets SET source_key = $2, source_bytes = $3, job_id = $4, status = 'queued', progress = 0,
                  error = NULL, updated_at = now() WHERE id = $1""", asset_id, key, size, job_id)
    return job_id


async def start_url_pull(conn: asyncpg.Connection, asset_id: str, url: str, by: str = "", limit: int = 0) -> int:
    """Queue the pull of the asset's original from `url` (call inside a transaction); the pull then starts
    the transcode itself. `by` names the caller: with `limit`, 429 once it has that many pulls in flight (the
    transaction, and so the new asset, rolls back)."""
    await check_pull_capacity(conn, by, limit)
    job_id = await enqueue(conn, job_kinds.INGEST_FETCH, {"asset_id": asset_id, "url": url, "by": by},
                           max_attempts=1, queue=job_kinds.PULL_QUEUE)
    await conn.execute("""UPDATE assets SET source_url = $2, job_id = $3, status = 'queued', error = NULL,
                                 progress = 0, updated_at = now() WHERE id = $1""", asset_id, url, job_id)
    return job_id


async def check_pull_capacity(db: asyncpg.Pool | asyncpg.Connection, by: str, limit: int) -> None:
    """429 when caller `by` (a partner, a user) already has `limit` URL pulls queued or running: one caller may
    not fill the pull pool for everyone else (0: no limit)."""
    if limit and await db.fetchval(
            "SELECT count(*) FROM jobs WHERE kind = $1 AND status IN ('queued', 'running') AND payload->>'by' = $2",
            job_kinds.INGEST_FETCH, by) >= limit:
        raise TooManyRequests(f"{limit} URL pulls of yours are still running; retry when one has finished",
                              code="url-pulls-busy", headers={"Retry-After": "30"})


async def source_url(db: asyncpg.Pool | asyncpg.Connection, asset_id: str) -> str | None:
    return await db.fetchval("SELECT source_url FROM assets WHERE id = $1", asset_id)


async def mark_failed(db: asyncpg.Pool | asyncpg.Connection, asset_id: str, reason: str) -> None:
    await db.execute("UPDATE assets SET status = 'failed', error = $2, updated_at = now() WHERE id = $1",
                     asset_id, reason[:2000])


async def mark_ready(db: asyncpg.Pool | asyncpg.Connection, asset_id: str, facts: dict[str, Any],
                     outputs: dict[str, Any], duration: float | None) -> None:
    await db.execute(
        """UPDATE assets SET status = 'ready', progress = 100, error = NULL, facts = $2::jsonb, outputs = $3::jsonb,
                  duration = $4, ready_at = now(), updated_at = now() WHERE id = $1""",
        asset_id, facts, outputs, duration)


async def delete_objects(store: Any, asset_id: str) -> int:
    return await store.delete_prefix(media_prefix(asset_id)) + await store.delete_prefix(source_prefix(asset_id))


async def delete_asset(pool: asyncpg.Pool, store: Any, asset_id: str) -> bool:
    """Remove the asset's rows and every stored object. Returns False if there was no such asset."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("DELETE FROM assets WHERE id = $1 RETURNING job_id, replace_job_id", asset_id)
        if row is None:
            return False
        for job in (row["job_id"], row["replace_job_id"]):
            if job is not None:
                await request_cancel(conn, job)
        await events.publish(conn, "asset.deleted", {"asset_id": asset_id})
    await delete_objects(store, asset_id)
    return True


async def discard_unfinished_upload(conn: asyncpg.Connection, asset_id: str) -> bool:
    """A tus upload was terminated before its last byte: its placeholder asset goes (nothing was published)."""
    return await conn.execute("DELETE FROM assets WHERE id = $1 AND status = 'uploading'", asset_id) != "DELETE 0"


async def record_progress(conn: asyncpg.Connection, asset_id: str, job_id: int, stage: str, percent: float | None,
                          facts: dict[str, Any] | None = None) -> bool:
    """Follow the asset's own job: its stage becomes the asset's status. Only the job the asset points at moves
    it, and never out of a final state (a superseded or late job changes nothing). Returns whether it moved."""
    if stage not in ("queued", *ACTIVE_STAGES):
        return False
    if percent is not None:
        percent = min(max(float(percent), 0.0), 100.0)
    # a replacement's transcode moves only its own status: the asset stays ready with the old renditions
    replaced = await conn.execute(
        """UPDATE assets SET replacement = replacement || jsonb_build_object('status', $3::text,
                                                'progress', coalesce($4::float8, (replacement->>'progress')::float8)),
                  updated_at = now()
           WHERE id = $1 AND replace_job_id = $2 AND replacement->>'status' = ANY($5::text[])""",
        asset_id, job_id, stage, percent, ["queued", *ACTIVE_STAGES])
    if not replaced.endswith(" 0"):
        return True
    done = await conn.execute(
        """UPDATE assets SET status = $3, progress = coalesce($4, progress), facts = coalesce($5::jsonb, facts),
                  updated_at = now()
           WHERE id = $1 AND job_id = $2 AND status = ANY($6::text[])""",
        asset_id, job_id, stage, percent, facts, ["queued", *ACTIVE_STAGES])
    return not done.endswith(" 0")


async def list_assets(db: asyncpg.Pool | asyncpg.Connection, *, status: str | None, tag: str | None, limit: int,
                      before: tuple[datetime, str] | None, text: str | None = None, show: str | None = None,
                      visibility: str | None = None) -> list[Asset]:
    """Newest first, keyset-paged on (created_at, id). Every filter is in SQL, so a page is never short.

    `text` is full-text search over title, tags and description (the generated `search` column);
    websearch_to_tsquery accepts any text (quotes, operators) without error."""
    where, args = [], []
    for column, value in (("status", status), ("show", show), ("visibility", visibility)):
        if value:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    if tag:
        args.append(tag)
        where.append(f"${len(args)} = ANY(tags)")
    if text:
        args.append(text)
        where.append(f"search @@ websearch_to_tsquery('simple', ${len(args)})")
    if before:
        args += list(before)
        where.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    sql = "SELECT * FROM assets" + (" WHERE " + " AND ".join(where) if where else "") + \
        f" ORDER BY created_at DESC, id DESC LIMIT ${len(args)}"
    return [Asset.from_row(r) for r in await db.fetch(sql, *args)]


async def changed_since(db: asyncpg.Pool | asyncpg.Connection, since: datetime, limit: int = 200) -> list[Asset]:
    """Assets whose row moved at or after `since` (the trigger moves updated_at on every change), oldest first."""
    rows = await db.fetch("SELECT * FROM assets WHERE updated_at >= $1 ORDER BY updated_at, id LIMIT $2",
                          since, limit)
    return [Asset.from_row(r) for r in rows]


PATCHABLE = ("title", "description", "tags", "show", "visibility", "available_from", "available_until",
             "geo_allow", "geo_deny", "credit", "copyright", "rating", "embed_origins", "loudness_target", "ladder")


async def update_asset(db: asyncpg.Pool | asyncpg.Connection, asset_id: str, changes: dict[str, Any]) -> bool:
    cols = [c for c in PATCHABLE if c in changes]
    if not cols:
        return await db.fetchval("SELECT true FROM assets WHERE id = $1", asset_id) or False
    sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(cols))
    done = await db.execute(f"UPDATE assets SET {sets}, updated_at = now() WHERE id = $1",
                            asset_id, *[list(changes[c]) if isinstance(changes[c], tuple) else changes[c]
                                        for c in cols])
    if done.endswith(" 0"):
        return False
    await events.publish(db, "asset.updated", {"asset_id": asset_id, "changed": sorted(cols)})
    return True


async def relabel_tracks(conn: asyncpg.Connection, asset_id: str, *,
                         audio_tracks: list[dict[str, Any]] | None = None,
                         captions: list[dict[str, Any]] | None = None) -> int:
    """Record an asset's corrected audio tracks and/or caption list (None: unchanged) and queue the rewrite of
    its published manifests from the whole, current lists. Call inside a transaction: the row is locked, so
    concurrent edits queue jobs in the order their lists were written."""
    row = await conn.fetchrow("SELECT outputs, media_generation FROM assets WHERE id = $1 FOR UPDATE", asset_id)
    outputs, generation = (row["outputs"] or {}, row["media_generation"]) if row else ({}, 0)
    if audio_tracks is not None:
        outputs["audio_tracks"] = audio_tracks
    if captions is not None:
        outputs["captions"] = captions
    job_id = await enqueue(conn, job_kinds.TRANSCODE_RELABEL, {
        "asset_id": asset_id, "prefix": generation_prefix(asset_id, generation), "generation": generation,
        "audio_tracks": outputs.get("audio_tracks") or [],
        "captions": outputs.get("captions") or []}, priority=50, on_done=job_kinds.CATALOG_RELABELLED)
    await conn.execute("UPDATE assets SET outputs = $2::jsonb, updated_at = now() WHERE id = $1", asset_id, outputs)
    changed = [k for k, v in (("audio_tracks", audio_tracks), ("captions", captions)) if v is not None]
    await events.publish(conn, "asset.updated", {"asset_id": asset_id, "changed": changed})
    return job_id


async def put_caption_track(conn: asyncpg.Connection, asset_id: str, entry: dict[str, Any]) -> int:
    """Add a caption track (replacing the one of the same language and kind) under the row lock, so concurrent
    uploads of different languages both stay; then the manifests are rewritten (relabel_tracks)."""
    outputs = await conn.fetchval("SELECT outputs FROM assets WHERE id = $1 FOR UPDATE", asset_id) or {}
    same = (entry["language"], entry["kind"])
    tracks = [c for c in outputs.get("captions") or [] if (c.get("language"), c.get("kind")) != same]
    return await relabel_tracks(conn, asset_id, captions=[*tracks, entry])


async def set_poster(db: asyncpg.Pool | asyncpg.Connection, asset_id: str, key: str) -> bool:
    """Point the published asset's poster at `key` (under its media prefix); False when it has no outputs."""
    done = await db.execute(
        """UPDATE assets SET outputs = jsonb_set(outputs, '{poster}', to_jsonb($2::text)), updated_at = now()
           WHERE id = $1 AND outputs IS NOT NULL""", asset_id, key)
    if done.endswith(" 0"):
        return False
    await events.publish(db, "asset.updated", {"asset_id": asset_id, "changed": ["poster"]})
    return True


async def start_packaging(conn: asyncpg.Connection, asset_id: str, kind: str, payload: dict[str, Any]) -> int:
    """Queue a job that publishes the asset from media already in its prefix (a recorded live event: no
    transcode); its result reaches `catalog.transcoded` like a transcode's. Call inside a transaction."""
    job_id = await enqueue(conn, kind, {**payload, "asset_id": asset_id}, queue="live", priority=0,
                           on_done=job_kinds.CATALOG_TRANSCODED)
    await conn.execute("UPDATE assets SET job_id = $2, status = 'queued', updated_at = now() WHERE id = $1",
                       asset_id, job_id)
    return job_id


# --- replacing the source: a new generation transcodes while the published one keeps playing ----------------


async def start_replacement(conn: asyncpg.Connection, asset_id: str, key: str, size: int) -> tuple[int, int]:
    """Queue the transcode of a new original into a fresh generation (call inside a transaction). Returns
    (job id, generation). The generation counts past every earlier attempt, so a late job of a failed one can
    never write into the prefix of a later one."""
    row = await conn.fetchrow(
        """SELECT loudness_target, ladder, greatest(media_generation, coalesce((replacement->>'generation')::int, 0))
                  AS last FROM assets WHERE id = $1 FOR UPDATE""", asset_id)
    generation = row["last"] + 1
    job_id = await enqueue(conn, job_kinds.TRANSCODE_ASSET, {
        "asset_id": asset_id, "source_key": key, "prefix": generation_prefix(asset_id, generation),
        "generation": generation, "replacement": True, "loudness_target": row["loudness_target"],
        "ladder": row["ladder"]}, priority=100 + min(50, size // (100 * 1024 * 1024)),
        on_done=job_kinds.CATALOG_TRANSCODED)
    await conn.execute(
        """UPDATE assets SET replace_job_id = $2, replacement = $3::jsonb, updated_at = now() WHERE id = $1""",
        asset_id, job_id, {"status": "queued", "progress": 0.0, "error": None, "generation": generation,
                           "source_key": key, "source_bytes": size})
    await events.publish(conn, "asset.updated", {"asset_id": asset_id, "changed": ["replacement"]})
    return job_id, generation


def replacing(asset: Asset) -> bool:
    return asset.replace_job_id is not None and (asset.replacement or {}).get("status") in ("queued",
                                                                                           *ACTIVE_STAGES)


async def finish_replacement(conn: asyncpg.Connection, asset_id: str, job_id: int, facts: dict[str, Any],
                             outputs: dict[str, Any], duration: float | None) -> tuple[int, str | None] | None:
    """The switch: one UPDATE makes the new generation the published one (the origin serves it from then on).
    Returns (old generation, old original's key), or None when this job is no longer the asset's replacement."""
    row = await conn.fetchrow(
        """UPDATE assets a SET media_generation = (a.replacement->>'generation')::int, facts = $3::jsonb,
                  outputs = $4::jsonb, duration = $5, source_key = a.replacement->>'source_key',
                  source_bytes = (a.replacement->>'source_bytes')::bigint, replace_job_id = NULL,
                  replacement = a.replacement || '{"status": "ready", "progress": 100, "error": null}'::jsonb,
                  ready_at = now(), updated_at = now()
           FROM (SELECT media_generation, source_key FROM assets WHERE id = $1 FOR UPDATE) old
           WHERE a.id = $1 AND a.replace_job_id = $2
           RETURNING old.media_generation AS generation, old.source_key""",
        asset_id, job_id, facts, outputs, duration)
    return (row["generation"], row["source_key"]) if row else None


async def fail_replacement(db: asyncpg.Pool | asyncpg.Connection, asset_id: str, job_id: int, reason: str) -> bool:
    """The published generation stays; the replacement records why it did not make it."""
    done = await db.execute(
        """UPDATE assets SET replace_job_id = NULL, updated_at = now(),
                  replacement = replacement || jsonb_build_object('status', 'failed', 'error', $3::text)
           WHERE id = $1 AND replace_job_id = $2""", asset_id, job_id, reason[:2000])
    return not done.endswith(" 0")
