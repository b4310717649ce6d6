"""How the audio tracks are labelled in the manifests: HLS EXT-X-MEDIA lines and the MPD's audio adaptation sets
(@lang, Role). Used when packaging and again when an editor corrects a track's language or role (the
`transcode.relabel` job rewrites the published master playlist and MPD; no segment changes)."""

from __future__ import annotations

from typing import Any

from lxml import etree

MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
ROLE_SCHEME = "urn:mpeg:dash:role:2011"
# Editors' audio roles and how DASH (urn:mpeg:dash:role:2011) names them; HLS says the same with DEFAULT and
# CHARACTERISTICS. Every track but the main one is at least an "alternate" for DVB-DASH players.
AUDIO_ROLES = {"main": "main", "alternate": "alternate", "dub": "dub", "commentary": "commentary",
               "description": "description"}
# Role must come after the RepresentationBase descriptors and before these (MPD schema order).
_AFTER_ROLE = {f"{{{MPD_NS}}}{t}" for t in ("Rating", "Viewpoint", "ContentComponent", "BaseURL", "SegmentBase",
                                             "SegmentList", "SegmentTemplate", "Representation")}


def audio_playlist_key(j: int) -> str:
    return "hls/audio.m3u8" if j == 0 else f"hls/audio-{j + 1}.m3u8"


def audio_media_lines(tracks: list[dict[str, Any]]) -> list[str]:
    """One EXT-X-MEDIA per audio track (the outputs document's `audio_tracks`, editors' corrections included):
    the main track is the DEFAULT; every track may be picked by the viewer's language (AUTOSELECT) except
    audio description, which carries Apple's accessibility characteristic and is chosen on purpose."""
    lines = []
    for t in tracks:
        main = t["role"] == "main"
        described = t["role"] == "description"
        extra = ',CHARACTERISTICS="public.accessibility.describes-video"' if described else ""
        name = t["name"].replace('"', "'")
        lines.append(f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="{name}",LANGUAGE="{t["language"]}",'
                     f'DEFAULT={"YES" if main else "NO"},AUTOSELECT={"NO" if described else "YES"},'
                     f'CHANNELS="{t["channels"]}"{extra},URI="{t["playlist"].removeprefix("hls/")}"')
    return lines


def set_role(aset: etree._Element, value: str) -> None:
    """DVB-DASH: every adaptation set names its role; one Role of the DASH scheme, replaced if present."""
    for old in aset.findall(f"{{{MPD_NS}}}Role"):
        if old.get("schemeIdUri") == ROLE_SCHEME:
            aset.remove(old)
    role = etree.Element(f"{{{MPD_NS}}}Role", schemeIdUri=ROLE_SCHEME, value=value)
    for i, child in enumerate(aset):
        if child.tag in _AFTER_ROLE:
            aset.insert(i, role)
            return
    aset.append(role)


def label_audio_set(aset: etree._Element, language: str, role: str) -> None:
    aset.set("lang", language)
    set_role(aset, AUDIO_ROLES[role])


def relabel_master(text: str, tracks: list[dict[str, Any]]) -> str:
    """The master playlist with its audio EXT-X-MEDIA lines replaced (in place, same position)."""
    lines = text.splitlines()
    keep = [i for i, line in enumerate(lines) if line.startswith("#EXT-X-MEDIA:TYPE=AUDIO")]
    if not keep:
        return text
    new = lines[:keep[0]] + audio_media_lines(tracks) + [ln for i, ln in enumerate(lines[keep[0]:], keep[0])
                                                         if i not in keep]
    return "\n".join(new) + "\n"


def relabel_mpd(raw: bytes, tracks: list[dict[str, Any]]) -> bytes:
    """The MPD with each audio adaptation set's @lang and Role set from the track whose representation it holds."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(raw, parser)
    by_rep = {t["rep_id"]: t for t in tracks}
    for aset in root.iter(f"{{{MPD_NS}}}AdaptationSet"):
        rep = aset.find(f"{{{MPD_NS}}}Representation")
        track = by_rep.get(rep.get("id", "") if rep is not None else "")
        if track is not None:
            label_audio_set(aset, track["language"], track["role"])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
