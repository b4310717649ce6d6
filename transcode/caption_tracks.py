"""One caption track's published files, from checked cues (transcode/captions.py):

    captions/<lang>-<kind>-<version>/captions.vtt    the whole file as WebVTT (MRSS media:subTitle, <track>)
    captions/<lang>-<kind>-<version>/seg-NNNNN.vtt   WebVTT segments on the video's grid (HLS TYPE=SUBTITLES)
    captions/<lang>-<kind>-<version>/ebu-tt-d.ttml   the whole file as EBU-TT-D (HbbTV out-of-band subtitles)
    captions/<lang>-<kind>-<version>/init.m4s, seg-NNNNN.m4s   EBU-TT-D in fMP4 (`stpp`) for DVB-DASH
    hls/subs-<lang>-<kind>-<version>.m3u8            the HLS media playlist

<version> is a hash of the WebVTT and EBU-TT-D written: the origin serves segments as immutable, so a corrected
upload (or a change in how the files are written) must not reuse a URL a CDN or player may hold.

DASH carries fMP4 `stpp` rather than a sidecar TTML: DVB-DASH (TS 103 285 7.1) only defines EBU-TT-D in
ISO BMFF segments, so HbbTV 2 terminals' DASH players look for that; a sidecar in an MPD is a dash.js extension.
Kinds: `subtitle` (translation of the dialogue) and `caption` (for the deaf and hard of hearing: sounds too)."""

from __future__ import annotations

import hashlib
import math
from typing import Any

from lxml import etree

from transcode import stpp
from transcode.captions import Cue

KINDS = ("subtitle", "caption")
TT = "http://www.w3.org/ns/ttml"
# TTML is the default namespace (elements unprefixed): equivalent XML to a `tt:` prefix, but shaka-player's own
# XML reader matches element names literally and finds no <tt> in `tt:tt` (Shaka Error 2005, no subtitles).
NSMAP = {None: TT, "ttp": "http://www.w3.org/ns/ttml#parameter", "tts": "http://www.w3.org/ns/ttml#styling",
         "ebuttm": "urn:ebu:tt:metadata", "ebutts": "urn:ebu:tt:style"}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"


def track_name(cues: list[Cue], language: str, kind: str) -> str:
    # both delivered forms in the hash: a change to how either is written must not reuse an immutable URL
    digest = hashlib.sha256(webvtt(cues) + ebu_tt_d(cues, language)).hexdigest()[:10]
    return f"{language}-{kind}-{digest}"


def _vtt_time(t: float) -> str:
    ms = round(t * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _vtt_text(line: str) -> str:
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webvtt(cues: list[Cue], header: str = "") -> bytes:
    out = ["WEBVTT", *([header] if header else []), ""]
    for cue in cues:
        out += [f"{_vtt_time(cue.begin)} --> {_vtt_time(cue.end)}", *map(_vtt_text, cue.lines), ""]
    return "\n".join(out).encode()


def _ttml_time(t: float) -> str:
    return _vtt_time(t)  # EBU-TT-D media time: hh:mm:ss.sss


def ebu_tt_d(cues: list[Cue], language: str) -> bytes:
    """An EBU-TT-D document (EBU Tech 3380): one region at the bottom, one style, a p per cue."""
    tt = etree.Element(f"{{{TT}}}tt", nsmap=NSMAP)
    tt.set(XML_LANG, language)
    tt.set(f"{{{NSMAP['ttp']}}}timeBase", "media")
    tt.set(f"{{{NSMAP['ttp']}}}cellResolution", "50 30")
    head = etree.SubElement(tt, f"{{{TT}}}head")
    styling = etree.SubElement(head, f"{{{TT}}}styling")
    style = etree.SubElement(styling, f"{{{TT}}}style")
    style.set(XML_ID, "s0")
    for k, v in (("fontFamily", "proportionalSansSerif"), ("fontSize", "100%"), ("lineHeight", "normal"),
                 ("textAlign", "center"), ("color", "#ffffffff"), ("backgroundColor", "#000000c2")):
        style.set(f"{{{NSMAP['tts']}}}{k}", v)
    layout = etree.SubElement(head, f"{{{TT}}}layout")
    region = etree.SubElement(layout, f"{{{TT}}}region")
    region.set(XML_ID, "bottom")
    for k, v in (("origin", "10% 10%"), ("extent", "80% 80%"), ("displayAlign", "after")):
        region.set(f"{{{NSMAP['tts']}}}{k}", v)
    if not cues:  # a segment with nothing on screen: no body (a div must hold a p)
        return etree.tostring(tt, xml_declaration=True, encoding="UTF-8")
    div = etree.SubElement(etree.SubElement(tt, f"{{{TT}}}body"), f"{{{TT}}}div")
    for i, cue in enumerate(cues):
        p = etree.SubElement(div, f"{{{TT}}}p", begin=_ttml_time(cue.begin), end=_ttml_time(cue.end),
                             region="bottom")
        p.set(XML_ID, f"sub{i + 1}")
        span = etree.SubElement(p, f"{{{TT}}}span", style="s0")
        span.text = cue.lines[0]
        for line in cue.lines[1:]:
            etree.SubElement(span, f"{{{TT}}}br").tail = line
    return etree.tostring(tt, xml_declaration=True, encoding="UTF-8")


def _window(cues: list[Cue], start: float, end: float) -> list[Cue]:
    """Cues showing during [start, end), cut to it (each segment stands alone in fMP4)."""
    return [Cue(max(c.begin, start), min(c.end, end), c.lines, c.line) for c in cues if c.begin < end and c.end > start]


def build(cues: list[Cue], language: str, kind: str, segment_seconds: float, duration: float
          ) -> tuple[dict[str, bytes], dict[str, Any]]:
    """(objects by key relative to the asset prefix, the track's entry in the outputs' `captions`).

    Segments cover the video's segment grid to the end, plus one: the MPD's template counts segments from
    the presentation duration, which may round one further than the container's duration."""
    name = track_name(cues, language, kind)
    base = f"captions/{name}"
    playlist_key = f"hls/subs-{name}.m3u8"
    count = max(1, math.ceil(duration / segment_seconds - 1e-6))
    objects: dict[str, bytes] = {f"{base}/captions.vtt": webvtt(cues),
                                 f"{base}/ebu-tt-d.ttml": ebu_tt_d(cues, language),
                                 f"{base}/init.m4s": stpp.init_segment(language)}
    step = round(segment_seconds * stpp.TIMESCALE)
    playlist = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{max(1, round(segment_seconds))}",
                "#EXT-X-MEDIA-SEQUENCE:1", "#EXT-X-PLAYLIST-TYPE:VOD"]
    for n in range(1, count + 2):
        start, end = (n - 1) * segment_seconds, n * segment_seconds
        window = _window(cues, start, end)
        # X-TIMESTAMP-MAP: cue times are on the media timeline, which starts at 0 (RFC 8216 3.5)
        objects[f"{base}/seg-{n:05d}.vtt"] = webvtt(window, "X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000")
        objects[f"{base}/seg-{n:05d}.m4s"] = stpp.media_segment(ebu_tt_d(window, language), n, (n - 1) * step, step)
        if n <= count:
            playlist += [f"#EXTINF:{min(end, duration) - start:.6f},", f"../{base}/seg-{n:05d}.vtt"]
    objects[playlist_key] = ("\n".join([*playlist, "#EXT-X-ENDLIST"]) + "\n").encode()
    size = max(len(v) for k, v in objects.items() if k.endswith(".m4s") and "/seg-" in k)
    entry = {"language": language, "kind": kind, "segment_units": step, "vtt": f"{base}/captions.vtt",
             "ebu_tt_d": f"{base}/ebu-tt-d.ttml",
             "playlist": playlist_key, "init": f"{base}/init.m4s",
             "media": f"{base}/seg-$Number%05d$.m4s", "cues": len(cues),
             "bandwidth": math.ceil(size * 8 / segment_seconds)}
    return objects, entry
