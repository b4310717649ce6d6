"""The app registry: which red-button app a channel/show signals, and what it shows.

Input models validate every field at the edge (AIT id ranges, colours, URLs) so a bad value is a 400
at creation time, never a broken AIT or document on air.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hbbtv_apps import ait
from hbbtv_apps.subtitles import Subtitle, offered
from onair.core.errors import BadRequest, Conflict, NotFound
from streaming.catalog import get_asset
from streaming.catalog.rights import in_window

ORG_ID_MAX = 0xFFFFFF   # organisation_id, 24 bits as registered with DVB
APP_ID_MAX = ait.APP_ID_MAX   # ETSI TS 102 809 reserves 0x8000-0xFFFF

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
ROOM_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")

DEFAULT_COLOURS = {"primary": "#c8102e", "accent": "#ffd100", "text": "#ffffff"}


def check_link(value: str | None) -> str | None:
    """Logos, banner images and targets: a same-origin absolute path or an http(s) URL, nothing scriptable."""
    if value is None:
        return None
    value = value.strip()
    if len(value) > 1024:
        raise ValueError("must be at most 1024 characters")
    if re.search(r"[\\\x00-\x1f\x7f]", value):  # a browser reads a backslash as "/" and drops tabs
        raise ValueError("must not contain backslashes or control characters")
    if value.startswith("/") and not value.startswith("//"):
        return value
    if re.match(r"^https?://[^\s/]+", value, re.IGNORECASE) and not re.search(r"\s", value):
        return value
    raise ValueError("must be an absolute path (/...) or an http(s) URL")


class Colours(BaseModel):
    model_config = ConfigDict(extra="forbid")
    primary: str = DEFAULT_COLOURS["primary"]
    accent: str = DEFAULT_COLOURS["accent"]
    text: str = DEFAULT_COLOURS["text"]

    @field_validator("primary", "accent", "text")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _COLOUR.match(value):
            raise ValueError("must be a #RRGGBB colour")
        return value.lower()


class _AppFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("poll_id", mode="before", check_fields=False)
    @classmethod
    def _poll_id(cls, value: Any) -> Any:
        # the interaction domain may number polls or name them; keep the id as text either way
        if isinstance(value, bool):
            raise ValueError("must be a string or an integer")
        return str(value) if isinstance(value, int) else value

    @field_validator("logo_url", check_fields=False)
    @classmethod
    def _logo(cls, value: str | None) -> str | None:
        return check_link(value)


class AppIn(_AppFields):
    slug: str = Field(pattern=SLUG_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    org_id: int = Field(ge=1, le=ORG_ID_MAX)
    app_id: int = Field(ge=1, le=APP_ID_MAX)
    poll_id: str | None = Field(default=None, pattern=ROOM_PATTERN)
    chat_room: str | None = Field(default=None, pattern=ROOM_PATTERN)
    vod_assets: list[str] = Field(default_factory=list, max_length=50)
    colours: Colours = Field(default_factory=Colours)
    logo_url: str | None = None
    control_code: Literal["AUTOSTART", "PRESENT"] = "PRESENT"


class AppPatch(_AppFields):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    org_id: int | None = Field(default=None, ge=1, le=ORG_ID_MAX)
    app_id: int | None = Field(default=None, ge=1, le=APP_ID_MAX)
    poll_id: str | None = Field(default=None, pattern=ROOM_PATTERN)
    chat_room: str | None = Field(default=None, pattern=ROOM_PATTERN)
    vod_assets: list[str] | None = Field(default=None, max_length=50)
    colours: Colours | None = None
    logo_url: str | None = None
    control_code: Literal["AUTOSTART", "PRESENT"] | None = None


class BannerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    image_url: str
    target_url: str
    label: str = Field(default="", max_length=120)
    duration_s: int = Field(default=60, ge=1, le=6 * 3600)

    @field_validator("image_url", "target_url")
    @classmethod
    def _links(cls, value: str) -> str:
        return check_link(value) or ""


def _json(value: Any) -> dict[str, Any]:
    # the pool decodes jsonb; a plain connection without the codec hands us text
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class HbbtvApp:
    slug: str
    name: str
    org_id: int
    app_id: int
    poll_id: str | None
    chat_room: str | None
    vod_assets: tuple[str, ...]
    colours: dict[str, str]
    logo_url: str | None
    control_code: str
    ait_version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> HbbtvApp:
        return cls(slug=row["slug"], name=row["name"], org_id=row["org_id"], app_id=row["app_id"],
                   poll_id=row["poll_id"], chat_room=row["chat_room"], vod_assets=tuple(row["vod_assets"]),
                   colours={**DEFAULT_COLOURS, **_json(row["colours"])}, logo_url=row["logo_url"],
                   control_code=row["control_code"], ait_version=row["ait_version"],
                   created_at=row["created_at"], updated_at=row["updated_at"])

    def to_json(self, base_url: str) -> dict[str, Any]:
        return {"slug": self.slug, "name": self.name, "org_id": self.org_id, "app_id": self.app_id,
                "poll_id": self.poll_id, "chat_room": self.chat_room, "vod_assets": list(self.vod_assets),
                "colours": self.colours, "logo_url": self.logo_url, "control_code": self.control_code,
                "ait_version": self.ait_version, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(),
                "url": f"{base_url}/hbbtv/{self.slug}/", "ait": f"{base_url}/hbbtv/{self.slug}/app.aitx"}


@dataclass(frozen=True)
class VodItem:
    asset_id: str
    title: str
    mpd: str
    subtitles: tuple[Subtitle, ...] = ()


@dataclass(frozen=True)
class Banner:
    id: int
    image_url: str
    target_url: str
    label: str
    ends_at: datetime
    clicks: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "image_url": self.image_url, "target_url": self.target_url, "label": self.label,
                "ends_at": self.ends_at.isoformat(), "clicks": self.clicks}


async def _check_assets(db: asyncpg.Pool, asset_ids: list[str]) -> None:
    for asset_id in asset_ids:
        if await get_asset(db, asset_id) is None:
            raise BadRequest(f"vod_assets: unknown asset {asset_id!r}", code="unknown-asset")


def _conflict(err: asyncpg.UniqueViolationError) -> Conflict:
    if "org_id" in (err.constraint_name or "") or "org_id" in str(err):
        return Conflict("Another app already uses this org_id/app_id pair", code="duplicate-app-id")
    return Conflict("An app with this slug exists already", code="duplicate-slug")


async def create(db: asyncpg.Pool, data: AppIn) -> HbbtvApp:
    await _check_assets(db, data.vod_assets)
    try:
        row = await db.fetchrow(
            """INSERT INTO hbbtv_apps (slug, name, org_id, app_id, poll_id, chat_room, vod_assets, colours,
                                       logo_url, control_code)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10) RETURNING *""",
            data.slug, data.name, data.org_id, data.app_id, data.poll_id, data.chat_room, data.vod_assets,
            data.colours.model_dump(), data.logo_url, data.control_code)
    except asyncpg.UniqueViolationError as err:
        raise _conflict(err) from None
    return HbbtvApp.from_row(row)


async def get(db: asyncpg.Pool, slug: str) -> HbbtvApp | None:
    row = await db.fetchrow("SELECT * FROM hbbtv_apps WHERE slug = $1", slug)
    return HbbtvApp.from_row(row) if row else None


async def require(db: asyncpg.Pool, slug: str) -> HbbtvApp:
    app = await get(db, slug) if re.match(SLUG_PATTERN, slug) else None
    if app is None:
        raise NotFound(f"No HbbTV app named {slug!r}", code="unknown-app")
    return app


async def list_apps(db: asyncpg.Pool) -> list[HbbtvApp]:
    return [HbbtvApp.from_row(r) for r in await db.fetch("SELECT * FROM hbbtv_apps ORDER BY slug")]


async def update(db: asyncpg.Pool, slug: str, patch: AppPatch) -> HbbtvApp:
    changes = patch.model_dump(exclude_unset=True)
    for required in ("name", "org_id", "app_id", "control_code", "vod_assets", "colours"):
        if required in changes and changes[required] is None:
            raise BadRequest(f"{required} cannot be null", code="invalid-body")
    if changes.get("vod_assets"):
        await _check_assets(db, changes["vod_assets"])
    current = await require(db, slug)
    if not changes:
        return current
    columns, values = [], []
    for key, value in changes.items():
        values.append(patch.colours.model_dump() if key == "colours" and patch.colours else value)
        columns.append(f"{key} = ${len(values) + 1}" + ("::jsonb" if key == "colours" else ""))
    # the AIT version changes with every edit so receivers notice the new signalling (5 bits, wraps)
    sql = (f"UPDATE hbbtv_apps SET {', '.join(columns)}, ait_version = (ait_version + 1) % 32, "
           "updated_at = now() WHERE slug = $1 RETURNING *")
    try:
        row = await db.fetchrow(sql, slug, *values)
    except asyncpg.UniqueViolationError as err:
        raise _conflict(err) from None
    if row is None:  # deleted by another request since `require` found it
        raise NotFound(f"No HbbTV app named {slug!r}", code="unknown-app")
    return HbbtvApp.from_row(row)


async def delete(db: asyncpg.Pool, slug: str) -> bool:
    return (await db.execute("DELETE FROM hbbtv_apps WHERE slug = $1", slug)) != "DELETE 0"


async def playlist(db: asyncpg.Pool, app: HbbtvApp, now: datetime) -> list[VodItem]:
    """The VOD clips a viewer can start now: ready, public or unlisted, inside their rights window."""
    items = []
    for asset_id in app.vod_assets:
        asset = await get_asset(db, asset_id)
        if asset is None or not asset.ready or asset.visibility == "private" or not in_window(asset.rights, now):
            continue
        dash = (asset.outputs or {}).get("dash", "dash/manifest.mpd")
        items.append(VodItem(asset.id, asset.title or asset.id, f"/media/{asset.id}/{dash}",
                             offered(asset.outputs or {})))
    return items


# --- banners (interactive advertising) -------------------------------------------------------------

def _banner(row: asyncpg.Record) -> Banner:
    return Banner(row["id"], row["image_url"], row["target_url"], row["label"], row["ends_at"], row["clicks"])


async def push_banner(db: asyncpg.Pool, slug: str, data: BannerIn, now: datetime) -> Banner:
    await require(db, slug)
    row = await db.fetchrow(
        """INSERT INTO hbbtv_banners (app_slug, image_url, target_url, label, starts_at, ends_at)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING *""",
        slug, data.image_url, data.target_url, data.label, now, now + timedelta(seconds=data.duration_s))
    return _banner(row)


async def current_banner(db: asyncpg.Pool, slug: str, now: datetime) -> Banner | None:
    row = await db.fetchrow(
        """SELECT * FROM hbbtv_banners WHERE app_slug = $1 AND starts_at <= $2 AND ends_at > $2
           ORDER BY starts_at DESC, id DESC LIMIT 1""", slug, now)
    return _banner(row) if row else None


async def end_banners(db: asyncpg.Pool, slug: str, now: datetime) -> int:
    status = await db.execute("UPDATE hbbtv_banners SET ends_at = $2 WHERE app_slug = $1 AND ends_at > $2 "
                              "AND starts_at <= $2", slug, now)
    return int(status.split()[-1])


async def count_click(db: asyncpg.Pool, slug: str, banner_id: int) -> Banner | None:
    row = await db.fetchrow("UPDATE hbbtv_banners SET clicks = clicks + 1 WHERE id = $1 AND app_slug = $2 "
                            "RETURNING *", banner_id, slug)
    return _banner(row) if row else None


async def get_banner(db: asyncpg.Pool, slug: str, banner_id: int) -> Banner | None:
    row = await db.fetchrow("SELECT * FROM hbbtv_banners WHERE id = $1 AND app_slug = $2", banner_id, slug)
    return _banner(row) if row else None
