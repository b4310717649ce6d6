"""The top manifests of a generation, made to work from the asset's public URLs.

A replacement's outputs live under g<N>/ (assets/<id>/g<N>/hls/..., .../cmaf/...), and the origin serves the
public /media/<id>/hls/master.m3u8 and /media/<id>/dash/manifest.mpd from the published generation. Every URL
those two hold must therefore name the generation (`../g<N>/hls/v0.m3u8`, an MPD BaseURL `../g<N>/cmaf/`):
a player that loaded them keeps fetching its own generation's playlists and segments after the next switch,
and no segment name is ever reused (they are cached immutable for a year). Below them everything is relative
to its own generation already. The URLs stay relative, so a path token (/media/<id>/tok/<t>/...) carries on.
Pinning is idempotent: relabel jobs pin the manifests they rewrite again.
"""

from __future__ import annotations

import posixpath
import re

from lxml import etree

MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
_URI_ATTR = re.compile(r'URI="([^"]*)"')


def _pinned(uri: str, folder: str, generation: int) -> str:
    if not uri or "://" in uri or uri.startswith("/"):
        return uri
    resolved = posixpath.normpath(posixpath.join(folder, uri))
    if resolved.startswith(f"g{generation}/"):
        return uri
    return f"../g{generation}/{resolved}" + ("/" if uri.endswith("/") else "")


def pin_master(text: str, generation: int) -> str:
    """Every URI of an HLS master playlist (variant lines and URI attributes) through g<N>/."""
    if not generation:
        return text
    lines = []
    for line in text.split("\n"):
        if line.startswith("#"):
            line = _URI_ATTR.sub(lambda m: f'URI="{_pinned(m.group(1), "hls", generation)}"', line)
        elif line.strip():
            line = _pinned(line.strip(), "hls", generation)
        lines.append(line)
    return "\n".join(lines)


def pin_mpd(raw: bytes, generation: int) -> bytes:
    """The MPD-level BaseURL through g<N>/ (the nested BaseURLs and templates resolve against it)."""
    if not generation:
        return raw
    root = etree.fromstring(raw)
    base = root.find(f"{{{MPD_NS}}}BaseURL")
    if base is None:
        base = etree.Element(f"{{{MPD_NS}}}BaseURL")
        base.text = "./"
        at = sum(1 for child in root if child.tag == f"{{{MPD_NS}}}ProgramInformation")
        root.insert(at, base)
    base.text = _pinned(base.text or "./", "dash", generation)
    if not base.text.endswith("/"):
        base.text += "/"
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
