"""The alternative tracks in the manifests: audio (HLS EXT-X-MEDIA TYPE=AUDIO; the MPD's audio adaptation sets
with @lang and Role) and captions (TYPE=SUBTITLES; text adaptation sets of EBU-TT-D in fMP4). Used when packaging
and again when an editor corrects an audio track or adds captions: the `transcode.relabel` job rewrites the
published master playlist and MPD from the asset's whole track list, so jobs never merge partial edits."""

from __future__ import annotations

from typing import Any

from lxml import etree

from transcode import stpp
from transcode.ladder import track_name

MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
ROLE_SCHEME = "urn:mpeg:dash:role:2011"
# Editors' audio roles and how DASH (urn:mpeg:dash:role:2011) names them; HLS says the same with DEFAULT and
# CHARACTERISTICS. Every track but the main one is at least an "alternate" for DVB-DASH players.
AUDIO_ROLES = {"main": "main", "alternate": "alternate", "dub": "dub", "commentary": "commentary",
               "description": "description", "subtitle": "subtitle", "caption": "caption"}
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
    has_main = {t.get("group", "aac") for t in tracks if t["role"] == "main"}
    firsts: dict[str, int] = {}
    for t in tracks:
        firsts.setdefault(t.get("group", "aac"), id(t))
    for t in tracks:
        group = t.get("group", "aac")   # one DEFAULT per group: the main track, else the group's first
        main = t["role"] == "main" or (group not in has_main and id(t) == firsts[group])
        described = t["role"] == "description"
        extra = ',CHARACTERISTICS="public.accessibility.describes-video"' if described else ""
        name = t["name"].replace('"', "'")
        lines.append(f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{group}",NAME="{name}",LANGUAGE="{t["language"]}",'
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


CAPTION_CHARACTERISTICS = ("public.accessibility.transcribes-spoken-dialog,"
                           "public.accessibility.describes-music-and-sound")


def caption_name(entry: dict[str, Any]) -> str:
    name = track_name(entry["language"])
    return f"{name} (CC)" if entry["kind"] == "caption" else name


def subtitle_media_lines(captions: list[dict[str, Any]]) -> list[str]:
    """One TYPE=SUBTITLES rendition per caption track; none is DEFAULT (players show subtitles on request, or
    by the viewer's language through AUTOSELECT), captions for the deaf carry Apple's characteristics."""
    lines = []
    for c in captions:
        extra = f',CHARACTERISTICS="{CAPTION_CHARACTERISTICS}"' if c["kind"] == "caption" else ""
        lines.append(f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="{caption_name(c)}",'
                     f'LANGUAGE="{c["language"]}",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO{extra},'
                     f'URI="{c["playlist"].removeprefix("hls/")}"')
    return lines


def relabel_master(text: str, tracks: list[dict[str, Any]], captions: list[dict[str, Any]] | None = None) -> str:
    """The master playlist with its EXT-X-MEDIA lines rebuilt from the track lists (where the first stood) and
    each variant's SUBTITLES group reference matching whether there are captions."""
    lines = text.splitlines()
    media = [i for i, line in enumerate(lines) if line.startswith("#EXT-X-MEDIA:")]
    at = media[0] if media else next(i for i, ln in enumerate(lines) if ln.startswith("#EXT-X-STREAM-INF:"))
    rest = [ln for i, ln in enumerate(lines[at:], at) if i not in media]
    for i, line in enumerate(rest):
        if line.startswith("#EXT-X-STREAM-INF:"):
            line = line.replace(',SUBTITLES="subs"', "")
            rest[i] = line + (',SUBTITLES="subs"' if captions else "")
    new = lines[:at] + audio_media_lines(tracks) + subtitle_media_lines(captions or []) + rest
    return "\n".join(new) + "\n"


def _text_set(period: etree._Element, index: int, c: dict[str, Any]) -> None:
    m = f"{{{MPD_NS}}}"
    aset = etree.SubElement(period, m + "AdaptationSet", id=str(100 + index), contentType="text",
                            mimeType="application/mp4", segmentAlignment="true", startWithSAP="1", lang=c["language"])
    set_role(aset, c["kind"])   # DASH role scheme: "subtitle" or "caption" (for the deaf and hard of hearing)
    rep = etree.SubElement(aset, m + "Representation", id=f"text-{c['language']}-{c['kind']}", codecs=stpp.CODECS,
                           bandwidth=str(c["bandwidth"]))
    etree.SubElement(rep, m + "SegmentTemplate", timescale=str(stpp.TIMESCALE), duration=str(c["segment_units"]),
                     initialization=f"../{c['init']}", media=f"../{c['media']}", startNumber="1")


def relabel_mpd(raw: bytes, tracks: list[dict[str, Any]], captions: list[dict[str, Any]] | None = None) -> bytes:
    """The MPD with each audio adaptation set's @lang and Role set from the track whose representation it holds,
    and one text adaptation set per caption track (replacing any before)."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(raw, parser)
    by_rep = {t["rep_id"]: t for t in tracks}
    period = root.find(f"{{{MPD_NS}}}Period")
    for aset in list(root.iter(f"{{{MPD_NS}}}AdaptationSet")):
        if aset.get("contentType") == "text":
            aset.getparent().remove(aset)
            continue
        rep = aset.find(f"{{{MPD_NS}}}Representation")
        track = by_rep.get(rep.get("id", "") if rep is not None else "")
        if track is not None:
            label_audio_set(aset, track["language"], track["role"])
    for i, c in enumerate(captions or []):
        _text_set(period, i, c)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
