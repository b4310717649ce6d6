"""DASH thumbnails (DASH-IF IOP 4.3, section 6.2.6): the storyboard sprite listed in the MPD as an image adaptation
set, so DASH players (dash.js, shaka) show seek previews without the WebVTT storyboard track HLS players use.

The sprite is one tile image for the whole asset: one segment whose duration is the time the full grid covers
(columns x rows x interval), so a player that divides a segment's time evenly among its tiles gives each tile
exactly the storyboard interval, the unused black tiles of the last row included."""

from __future__ import annotations

from lxml import etree

from transcode.images import StoryboardSpec

MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
TILE_SCHEME = "http://dashif.org/thumbnail_tile"
SET_ID = "99"          # below the caption text sets (100 + n), apart from the audio/video sets (0 ..)
TIMESCALE = 1000


def grid_seconds(spec: StoryboardSpec) -> float:
    return spec.columns * spec.rows * spec.interval


def add_image_set(raw: bytes, spec: StoryboardSpec, sprite_key: str, sprite_bytes: int) -> bytes:
    """The MPD with its image adaptation set (replacing any before); `sprite_key` is relative to the asset
    prefix (the MPD lives in dash/)."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(raw, parser)
    m = f"{{{MPD_NS}}}"
    period = root.find(m + "Period")
    for old in period.findall(m + "AdaptationSet[@contentType='image']"):
        period.remove(old)
    sets = period.findall(m + "AdaptationSet")
    aset = etree.Element(m + "AdaptationSet", id=SET_ID, contentType="image", mimeType="image/jpeg")
    # after the last audio/video set: the schema wants adaptation sets together, before any Subset
    anchor = next((s for s in reversed(sets) if s.get("contentType") != "text"), None)
    if anchor is not None:
        anchor.addnext(aset)
    else:
        period.append(aset)
    seconds = grid_seconds(spec)
    etree.SubElement(aset, m + "SegmentTemplate", media=f"../{sprite_key}", timescale=str(TIMESCALE),
                     duration=str(round(seconds * TIMESCALE)), startNumber="1")
    rep = etree.SubElement(aset, m + "Representation", id="thumbnails",
                           bandwidth=str(max(1, round(sprite_bytes * 8 / seconds))),
                           width=str(spec.columns * spec.tile_width), height=str(spec.rows * spec.tile_height))
    etree.SubElement(rep, m + "EssentialProperty", schemeIdUri=TILE_SCHEME, value=f"{spec.columns}x{spec.rows}")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
