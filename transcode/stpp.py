"""EBU-TT-D in ISO BMFF (ISO/IEC 14496-30 `stpp`), the subtitle carriage DVB-DASH (ETSI TS 103 285 section 7.1)
and HbbTV 2.0 terminals decode: an init segment with a subtitle track, and media segments of one sample each,
every sample a complete EBU-TT-D document for its segment's time span (times on the track's timeline)."""

from __future__ import annotations

import struct

import langcodes

from transcode import fmp4

TIMESCALE = 1_000_000          # the MPD's SegmentTemplate timescale (as the video's)
TRACK_ID = 1
EBU_TT_D_NS = "http://www.w3.org/ns/ttml http://www.w3.org/ns/ttml#parameter " \
              "http://www.w3.org/ns/ttml#styling http://www.w3.org/ns/ttml#metadata urn:ebu:tt:metadata " \
              "urn:ebu:tt:style"
CODECS = "stpp.ttml.etd1"       # RFC 6381 form for EBU-TT-D (W3C TTML profile registry)


def _matrix() -> bytes:
    return struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)


def init_segment(language: str) -> bytes:
    box, full = fmp4.box, fmp4.full_box
    ftyp = box(b"ftyp", b"iso6", struct.pack(">I", 0), b"iso6", b"dash", b"cmfc")
    mvhd = full(b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, TIMESCALE, 0), struct.pack(">IH", 0x00010000, 0x0100),
                b"\0" * 10, _matrix(), b"\0" * 24, struct.pack(">I", TRACK_ID + 1))
    tkhd = full(b"tkhd", 0, 3, struct.pack(">IIII", 0, 0, TRACK_ID, 0), struct.pack(">I", 0), b"\0" * 8,
                struct.pack(">hhhH", 0, 0, 0, 0), _matrix(), struct.pack(">II", 0, 0))
    lang = _packed_language(language)
    mdhd = full(b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, TIMESCALE, 0), struct.pack(">HH", lang, 0))
    hdlr = full(b"hdlr", 0, 0, struct.pack(">I", 0), b"subt", b"\0" * 12, b"EBU-TT-D\0")
    stpp = box(b"stpp", b"\0" * 6, struct.pack(">H", 1), EBU_TT_D_NS.encode() + b"\0", b"\0", b"\0")
    stbl = box(b"stbl", full(b"stsd", 0, 0, struct.pack(">I", 1), stpp), full(b"stts", 0, 0, b"\0" * 4),
               full(b"stsc", 0, 0, b"\0" * 4), full(b"stsz", 0, 0, b"\0" * 8), full(b"stco", 0, 0, b"\0" * 4))
    dinf = box(b"dinf", full(b"dref", 0, 0, struct.pack(">I", 1), full(b"url ", 0, 1)))
    minf = box(b"minf", full(b"sthd", 0, 0), dinf, stbl)
    trak = box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf))
    mvex = box(b"mvex", full(b"trex", 0, 0, struct.pack(">IIIII", TRACK_ID, 1, 0, 0, 0)))
    return ftyp + box(b"moov", mvhd, trak, mvex)


def _packed_language(tag: str) -> int:
    """mdhd's ISO 639-2/T code in 3x5 bits ("de" is "deu"); "und" when the tag has no such code."""
    try:
        code = langcodes.Language.get(tag).to_alpha3()
    except (LookupError, ValueError):
        code = "und"
    code = code if len(code) == 3 and code.isalpha() else "und"
    return sum((ord(c.lower()) - 0x60) << (10 - 5 * i) for i, c in enumerate(code))


def media_segment(document: bytes, number: int, start: int, duration: int) -> bytes:
    """Segment `number` (1-based) holding one EBU-TT-D document for [start, start + duration) in TIMESCALE."""
    info = fmp4.InitInfo(TRACK_ID, TIMESCALE, 0, "subt", "stpp")
    return fmp4.write_audio_segment(info, [fmp4.Sample(start, duration, 0, fmp4.SYNC_SAMPLE_FLAGS, document)],
                                    number)
