"""Editors' corrections of an asset's audio tracks (language, role, name), checked against what was published.

The tracks live in the outputs document (`outputs.audio_tracks`, written by packaging); a correction changes that
list here and the published manifests through the `transcode.relabel` job (repository.relabel_tracks)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import langcodes
from pydantic import BaseModel, ConfigDict, Field, field_validator

from onair.core.errors import BadRequest

Role = Literal["main", "alternate", "dub", "commentary", "description"]


class AudioTrackEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    index: Annotated[int, Field(ge=0, lt=64)]   # position in the asset's `audio_tracks`
    language: Annotated[str, Field(min_length=2, max_length=35)] | None = None   # BCP 47 or ISO 639
    role: Role | None = None
    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None

    @field_validator("language")
    @classmethod
    def _language(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if not langcodes.tag_is_valid(v):
            raise ValueError(f"{v!r} is not a language tag (BCP 47 or ISO 639, e.g. 'en', 'deu', 'und')")
        return langcodes.standardize_tag(v)  # "ger"/"deu" -> "de": the form HLS and DASH carry


def corrected(current: list[dict[str, Any]], edits: list[AudioTrackEdit]) -> list[dict[str, Any]]:
    """The asset's tracks with the edits applied. A language or role applies to the track and to its other
    renditions (the stereo and 5.1 of one source track share `source_index`); a track made main demotes the
    former main of its group to alternate. Afterwards each group (stereo AAC, E-AC-3 5.1) has one main at
    most, and the stereo group exactly one (HLS DEFAULT, DASH Role main)."""
    if not current:
        raise BadRequest("audio_tracks: the asset has no published audio tracks", code="invalid-body")
    tracks = [dict(t) for t in current]
    for n, edit in enumerate(edits):
        if edit.index >= len(tracks):
            raise BadRequest(f"audio_tracks[{n}].index: the asset has {len(tracks)} audio track(s)",
                             code="invalid-body")
        target = tracks[edit.index]
        siblings = [t for t in tracks if t is target or
                    ("source_index" in t and t.get("source_index") == target.get("source_index"))]
        if edit.role == "main":
            for t in tracks:
                if t["role"] == "main" and t not in siblings:
                    t["role"] = "alternate"
        shared = edit.model_dump(exclude_none=True, include={"language", "role"})
        for t in siblings:
            t.update(shared)
        if edit.name is not None:
            target["name"] = edit.name
    for group in {t.get("group", "aac") for t in tracks}:
        mains = [t for t in tracks if t.get("group", "aac") == group and t["role"] == "main"]
        if len(mains) > 1 or (group == "aac" and len(mains) != 1):
            raise BadRequest("audio_tracks: exactly one track must have the role 'main'", code="invalid-body")
    names = [t["name"] for t in tracks]
    if len(set(names)) != len(names):
        raise BadRequest("audio_tracks: track names must differ (players list them by name)", code="invalid-body")
    return tracks
