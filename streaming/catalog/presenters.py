"""How an asset looks in the API: one JSON shape for the admin API, the studio and `onair ingest --wait`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from streaming.catalog.repository import Asset


def asset_json(asset: Asset, base_url: str) -> dict[str, Any]:
    base = base_url.rstrip("/")
    outputs = asset.outputs or {}
    return {
        "id": asset.id, "title": asset.title, "description": asset.description, "tags": list(asset.tags),
        "show": asset.show, "status": asset.status, "progress": round(asset.progress, 1), "error": asset.error,
        "facts": asset.facts, "duration": asset.duration,
        "renditions": outputs.get("video", []), "audio": outputs.get("audio"),
        "audio_tracks": outputs.get("audio_tracks", []),
        "captions": [_caption(c, f"{base}/media/{asset.id}/") for c in outputs.get("captions") or []],
        "images": {k: outputs.get(k) for k in ("poster", "thumbnails", "storyboard")} if outputs else None,
        "playback": {"hls": f"{base}/media/{asset.id}/hls/master.m3u8",
                     "dash": f"{base}/media/{asset.id}/dash/manifest.mpd",
                     "embed": f"{base}/embed/{asset.id}"},
        "visibility": asset.visibility,
        "rights": {"available_from": _iso(asset.rights.available_from),
                   "available_until": _iso(asset.rights.available_until),
                   "geo_allow": list(asset.rights.geo_allow), "geo_deny": list(asset.rights.geo_deny)},
        "credit": asset.credit, "copyright": asset.copyright, "rating": asset.rating,
        "embed_origins": list(asset.embed_origins),
        # the asset's choices (null: the deployment's setting), applied by the next transcode (POST .../retry)
        "loudness_target": asset.loudness_target, "ladder": asset.ladder,
        "ladder_applied": outputs.get("ladder"),   # {"kind": "fixed" | "per_title", "factor"} of the last transcode
        # a replaced source transcoding beside what plays (or how the last replacement ended); null: none yet
        "replacement": _replacement(asset.replacement), "media_generation": asset.media_generation,
        "created_at": _iso(asset.created_at), "updated_at": _iso(asset.updated_at), "ready_at": _iso(asset.ready_at),
    }


def _caption(c: dict[str, Any], media: str) -> dict[str, Any]:
    """Uploaded tracks (language/kind/vtt/ebu_tt_d) and the older sidecar-only shape (lang/key)."""
    vtt, ttml = c.get("vtt") or c.get("key"), c.get("ebu_tt_d")
    return {"language": c.get("language") or c.get("lang") or "und", "kind": c.get("kind") or "subtitle",
            "cues": c.get("cues"), "url": media + vtt if vtt else None, "ebu_tt_d": media + ttml if ttml else None}


def _replacement(r: dict[str, Any] | None) -> dict[str, Any] | None:
    if not r:
        return None
    return {"status": r.get("status"), "progress": round(float(r.get("progress") or 0.0), 1),
            "error": r.get("error"), "generation": r.get("generation")}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
