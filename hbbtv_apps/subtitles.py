"""The subtitle languages the TV app offers for a clip: one per caption track its MPD carries (EBU-TT-D in fMP4
`stpp`, published by transcode/caption_tracks.py), each with the names a terminal may report for the track."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import langcodes


@dataclass(frozen=True)
class Subtitle:
    """A clip's subtitle language as the TV menu offers it. `codes`: the names a terminal may give the track
    (the MPD's @lang, ISO 639-2/T as in the stpp init segment, 639-2/B that some A/V objects report)."""
    language: str
    label: str
    codes: str   # space-separated, lower case


def offered(outputs: dict[str, Any]) -> tuple[Subtitle, ...]:
    """One menu entry per caption track the MPD carries (published EBU-TT-D in `stpp`), in upload order."""
    out = []
    for c in outputs.get("captions") or []:
        tag = str(c.get("language") or "")
        if not c.get("init") or not tag or tag == "und":   # no stpp track in the MPD, or nothing to match it by
            continue
        try:
            lang = langcodes.Language.get(tag)
            codes = {tag.lower(), (lang.language or "").lower(), lang.to_alpha3(), lang.to_alpha3(variant="B")}
            name = lang.autonym().capitalize()
        except (LookupError, ValueError):
            codes, name = {tag.lower()}, tag
        label = f"{name} (CC)" if c.get("kind") == "caption" else name
        out.append(Subtitle(tag, label, " ".join(sorted(x for x in codes if x))))
    return tuple(out)
