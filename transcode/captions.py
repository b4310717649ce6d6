"""Caption and subtitle files: read WebVTT, SRT and TTML (IMSC, EBU-TT-D) with ttconv, check them, and flatten
them to timed cues that caption_tracks.py writes out (segmented WebVTT for HLS, EBU-TT-D for DVB-DASH).

ttconv does the parsing (no hand-written parser here); it reports problems through logging with the line, so
every warning or error it logs while reading is a problem of the file. On top of that we refuse what players
handle badly: overlapping cues, cues past the end of the video, empty files, bytes that are not UTF-8.
Problems carry 1-based line numbers (ttconv counts lines from 0)."""

from __future__ import annotations

import io
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from lxml import etree
from ttconv import model
from ttconv.imsc import reader as imsc_reader
from ttconv.srt import reader as srt_reader
from ttconv.vtt import reader as vtt_reader

FORMATS = ("vtt", "srt", "ttml")
CONTENT_TYPES = {"text/vtt": "vtt", "application/x-subrip": "srt", "text/srt": "srt",
                 "application/ttml+xml": "ttml", "application/xml": "ttml", "text/xml": "ttml"}
END_SLACK = 0.5          # a cue may end this much after the video (subtitle tools round up to the next frame)
MAX_PROBLEMS = 20        # a broken file lists its first problems, not thousands


@dataclass(frozen=True)
class Problem:
    line: int | None     # 1-based; None when the file as a whole is wrong
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "message": self.message}


class CaptionError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"line {p.line}: {p.message}" if p.line else p.message for p in problems))
        self.problems = problems[:MAX_PROBLEMS]


@dataclass(frozen=True)
class Cue:
    begin: float
    end: float
    lines: tuple[str, ...]   # text lines (line breaks of the source kept, styling dropped)
    line: int | None         # where it starts in the uploaded file


class _Collect(logging.Handler):
    """ttconv's log records while one file is read."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


def detect_format(content_type: str, declared: str | None, data: bytes) -> str:
    if declared:
        return declared
    if content_type in CONTENT_TYPES:
        return CONTENT_TYPES[content_type]
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:64]
    if head.startswith(b"WEBVTT"):
        return "vtt"
    if head.startswith(b"<"):
        return "ttml"
    return "srt"


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CaptionError([Problem(line, f"byte 0x{data[exc.start]:02x} is not UTF-8: save the file as UTF-8 "
                                          "(it looks like Latin-1 or Windows-1252)")]) from None


def _ttconv_problems(messages: list[str]) -> list[Problem]:
    """ttconv's messages name lines from 0 ("... at line 4", "Invalid timestamp x at 4")."""
    out = []
    for msg in messages:
        m = re.search(r"(?:line|at) (\d+)\b", msg)
        text = re.sub(r"\s*\b(?:at line|at) \d+\s*$", "", msg) if m else msg  # the line goes in `line`
        out.append(Problem(int(m.group(1)) + 1 if m else None, text))
    return out


def _model(fmt: str, data: bytes) -> tuple[model.ContentDocument | None, list[Problem], list[int | None]]:
    """(document, problems, source line of each p in document order)."""
    collect = _Collect()
    log = logging.getLogger("ttconv")
    log.addHandler(collect)
    try:
        if fmt == "ttml":
            try:
                tree = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
            except etree.XMLSyntaxError as exc:
                raise CaptionError([Problem(exc.lineno, f"not well-formed XML: {exc.msg}")]) from None
            lines = [p.sourceline for p in tree.iter("{http://www.w3.org/ns/ttml}p")]
            doc = imsc_reader.to_model(ET.ElementTree(ET.fromstring(data)))
        else:
            text = _text(data)
            reader = vtt_reader if fmt == "vtt" else srt_reader
            lines = [i + 1 for i, ln in enumerate(text.splitlines()) if "-->" in ln]
            doc = reader.to_model(io.StringIO(text))
    except CaptionError:
        raise
    except Exception as exc:  # ttconv raises bare ValueError/TypeError on some malformed input
        raise CaptionError([Problem(None, f"the file could not be read as {fmt}: {exc}")]) from None
    finally:
        log.removeHandler(collect)
    return doc, _ttconv_problems(collect.records), lines


def _flatten(el: model.ContentElement) -> list[str]:
    """Text lines of a paragraph: Text content joined, Br starts a new line."""
    lines = [""]
    for node in el.dfs_iterator():
        if isinstance(node, model.Text):
            lines[-1] += node.get_text()
        elif isinstance(node, model.Br):
            lines.append("")
    return [ln.strip() for ln in lines if ln.strip()]


def _absolute(p: model.P) -> tuple[Fraction | None, Fraction | None]:
    """ttconv keeps times relative to the parent (TTML par timing): add up the ancestors' begins."""
    offset, parent = Fraction(0), p.parent()
    while parent is not None:
        offset += parent.get_begin() or 0
        parent = parent.parent()
    begin, end = p.get_begin(), p.get_end()
    return (None if begin is None else offset + begin), (None if end is None else offset + end)


def read(data: bytes, fmt: str, duration: float) -> list[Cue]:
    """Cues of a caption file, or CaptionError listing what is wrong (1-based lines)."""
    if fmt not in FORMATS:
        raise CaptionError([Problem(None, f"format {fmt!r} is not one of {', '.join(FORMATS)}")])
    if not data.strip():
        raise CaptionError([Problem(None, "the file is empty")])
    doc, problems, lines = _model(fmt, data)
    if doc is None or doc.get_body() is None:
        raise CaptionError(problems or [Problem(1, f"not a {fmt} file")])
    if problems:
        raise CaptionError(problems)
    paragraphs = [el for el in doc.get_body().dfs_iterator() if isinstance(el, model.P)]
    cues = []
    for i, p in enumerate(paragraphs):
        line = lines[i] if i < len(lines) else None
        begin, end = _absolute(p)
        if begin is None or end is None:
            problems.append(Problem(line, "the cue has no begin or end time"))
            continue
        cues.append(Cue(float(begin), float(end), tuple(_flatten(p)), line))
    problems += check(cues, duration)
    if problems:
        raise CaptionError(problems)
    if not cues:
        raise CaptionError([Problem(None, "the file holds no cues")])
    return cues


def check(cues: list[Cue], duration: float) -> list[Problem]:
    problems = []
    previous: Cue | None = None
    for cue in sorted(cues, key=lambda c: (c.begin, c.end)):
        if cue.end <= cue.begin:
            problems.append(Problem(cue.line, f"the cue ends ({cue.end:.3f} s) before it begins ({cue.begin:.3f} s)"))
        if cue.end > duration + END_SLACK:
            problems.append(Problem(cue.line, f"the cue ends at {cue.end:.3f} s, after the video ({duration:.3f} s)"))
        if not cue.lines:
            problems.append(Problem(cue.line, "the cue has no text"))
        if previous is not None and cue.begin < previous.end:
            problems.append(Problem(cue.line, f"the cue begins at {cue.begin:.3f} s, before the cue of line "
                                              f"{previous.line} ends ({previous.end:.3f} s): cues must not overlap"))
        previous = cue
    return problems
