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
    """The asset's tracks with the edits applied. A track made main demotes the former main to alternate;
    afterwards exactly one track must be main (HLS DEFAULT, DASH Role main)."""
    if not current:
        raise BadRequest("audio_tracks: the asset has no published audio tracks", code="invalid-body")
    tracks = [dict(t) for t in current]
    for n, edit in enumerate(edits):
        if edit.index >= len(tracks):
            raise BadRequest(f"audio_tracks[{n}].index: the asset has {len(tracks)} audio track(s)",
                             code="invalid-body")
        if edit.role == "main":
            for t in tracks:
                if t["role"] == "main":
                    t["role"] = "alternate"
        changes = edit.model_dump(exclude_none=True, exclude={"index"})
        tracks[edit.index].update(changes)
    mains = [i for i, t in enumerate(tracks) if t["role"] == "main"]
    if len(mains) != 1:
        raise BadRequest("audio_tracks: exactly one track must have the role 'main'", code="invalid-body")
    names = [t["name"] for t in tracks]
    if len(set(names)) != len(names):
        raise BadRequest("audio_tracks: track names must differ (players list them by name)", code="invalid-body")
    return tracks
