"""The few ISO-BMFF (fMP4/CMAF) boxes packaging reads and writes.

ffmpeg's DASH muxer writes good samples but imperfect segmentation and labelling: it flushes audio when the
video keyframe's *decode* time arrives (so audio segments end a B-frame delay and an AAC priming frame early),
labels sidx references SAP type 0 (unknown) and omits the CMAF brands. Packaging therefore reads the real
timing of every segment from its boxes (never from a rounded playlist), re-cuts the audio at the video's
presentation boundaries and patches the labels. Only what onair's own ffmpeg output uses is supported:
one track per file, version-0/1 tfdt, tfhd with default-base-is-moof.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"moof", b"traf", b"mvex", b"edts", b"stsd"}
STYP_BRANDS = (b"msdh", b"msix", b"cmfs", b"cmff")   # DASH media + indexed segment, CMAF segment + fragment
SAP_TYPE_1 = 1          # closed GOP, IDR first: decode order == presentation order at the start
SYNC_SAMPLE_FLAGS = 0x02000000   # sample_depends_on=2 (independent), is_non_sync=0


class BoxError(ValueError):
    pass


def iter_boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int, int]]:
    """(type, box offset, payload offset, box end) of the boxes directly inside data[start:end]."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise BoxError(f"box {kind!r} at {pos} overruns its parent")
        yield kind, pos, pos + header, pos + size
        pos += size


def find(data: bytes, *path: bytes, start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    """(payload offset, end) of the first box along `path`."""
    for kind, _, payload, box_end in iter_boxes(data, start, end):
        if kind == path[0]:
            if len(path) == 1:
                return payload, box_end
            inner = payload + (8 if kind == b"stsd" else 0)
            return find(data, *path[1:], start=inner, end=box_end)
    return None


def _must(data: bytes, *path: bytes) -> tuple[int, int]:
    found = find(data, *path)
    if found is None:
        raise BoxError("missing box " + "/".join(p.decode() for p in path))
    return found


@dataclass(frozen=True)
class InitInfo:
    track_id: int
    timescale: int
    media_time: int        # edit list shift: presentation = decode + cto - media_time
    handler: str           # vide | soun
    sample_entry: str      # avc1, avc3, mp4a...


def read_init(data: bytes) -> InitInfo:
    tkhd, _ = _must(data, b"moov", b"trak", b"tkhd")
    version = data[tkhd]
    track_id = struct.unpack_from(">I", data, tkhd + (20 if version == 1 else 12))[0]
    mdhd, _ = _must(data, b"moov", b"trak", b"mdia", b"mdhd")
    timescale = struct.unpack_from(">I", data, mdhd + (20 if data[mdhd] == 1 else 12))[0]
    hdlr, _ = _must(data, b"moov", b"trak", b"mdia", b"hdlr")
    media_time = 0
    elst = find(data, b"moov", b"trak", b"edts", b"elst")
    if elst:
        v1 = data[elst[0]] == 1
        media_time = struct.unpack_from(">q" if v1 else ">i", data, elst[0] + 8 + (8 if v1 else 4))[0]
    stsd, _ = _must(data, b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd")
    entry = data[stsd + 12:stsd + 16].decode("ascii", "replace")
    return InitInfo(track_id, timescale, max(media_time, 0), data[hdlr + 8:hdlr + 12].decode("ascii"), entry)


@dataclass
class Sample:
    decode_time: int
    duration: int
    cto: int
    flags: int
    payload: bytes = field(repr=False)
    offset: int = 0          # where the payload starts in the segment it was read from (I-frame byte ranges)


def read_samples(data: bytes, default_flags: int = 0) -> list[Sample]:
    """Every sample of every fragment (moof+mdat pair) in a segment, with its absolute decode time."""
    samples: list[Sample] = []
    for kind, moof, payload, moof_end in iter_boxes(data):
        if kind != b"moof":
            continue
        tfhd, _ = find(data, b"traf", b"tfhd", start=payload, end=moof_end) or (0, 0)
        if not tfhd:
            raise BoxError("moof without tfhd")
        defaults = _fragment_defaults(data, tfhd, moof, default_flags)
        tfdt = find(data, b"traf", b"tfdt", start=payload, end=moof_end)
        if tfdt is None:
            raise BoxError("moof without tfdt")
        decode_time = struct.unpack_from(">Q" if data[tfdt[0]] == 1 else ">I", data, tfdt[0] + 4)[0]
        trun, _ = find(data, b"traf", b"trun", start=payload, end=moof_end) or (0, 0)
        if not trun:
            raise BoxError("moof without trun")
        samples += _run_samples(data, trun, decode_time, defaults)
    return samples


def _fragment_defaults(data: bytes, tfhd: int, moof: int, default_flags: int) -> tuple[int, int, int, int]:
    """From a tfhd: (data base offset, default sample duration, size, flags)."""
    tf_flags = int.from_bytes(data[tfhd + 1:tfhd + 4], "big")
    pos = tfhd + 8
    base = moof
    if tf_flags & 0x1:
        base = struct.unpack_from(">Q", data, pos)[0]
        pos += 8
    if tf_flags & 0x2:
        pos += 4
    duration = size = 0
    flags = default_flags
    if tf_flags & 0x8:
        duration = struct.unpack_from(">I", data, pos)[0]
        pos += 4
    if tf_flags & 0x10:
        size = struct.unpack_from(">I", data, pos)[0]
        pos += 4
    if tf_flags & 0x20:
        flags = struct.unpack_from(">I", data, pos)[0]
    return base, duration, size, flags


def _run_samples(data: bytes, trun: int, decode_time: int, defaults: tuple[int, int, int, int]) -> list[Sample]:
    """The samples a trun lists, each with its bytes from the mdat and its decode time."""
    base, dflt_dur, dflt_size, dflt_flags = defaults
    tr_flags = int.from_bytes(data[trun + 1:trun + 4], "big")
    count = struct.unpack_from(">I", data, trun + 4)[0]
    pos = trun + 8
    offset = 0
    if tr_flags & 0x1:
        offset = struct.unpack_from(">i", data, pos)[0]
        pos += 4
    first_flags = None
    if tr_flags & 0x4:
        first_flags = struct.unpack_from(">I", data, pos)[0]
        pos += 4
    cursor, t, out = base + offset, decode_time, []
    for i in range(count):
        dur, size, flags, cto = dflt_dur, dflt_size, dflt_flags, 0
        if tr_flags & 0x100:
            dur = struct.unpack_from(">I", data, pos)[0]
            pos += 4
        if tr_flags & 0x200:
            size = struct.unpack_from(">I", data, pos)[0]
            pos += 4
        if tr_flags & 0x400:
            flags = struct.unpack_from(">I", data, pos)[0]
            pos += 4
        elif i == 0 and first_flags is not None:
            flags = first_flags
        if tr_flags & 0x800:
            cto = struct.unpack_from(">i" if data[trun] == 1 else ">I", data, pos)[0]
            pos += 4
        out.append(Sample(t, dur, cto, flags, data[cursor:cursor + size], cursor))
        cursor += size
        t += dur
    return out


def presentation_span(samples: list[Sample], media_time: int) -> tuple[int, int]:
    """(earliest presentation time, end of presentation) in the track timescale."""
    start = min(s.decode_time + s.cto for s in samples) - media_time
    end = max(s.decode_time + s.cto + s.duration for s in samples) - media_time
    return start, end


def _box(kind: bytes, *parts: bytes) -> bytes:
    body = b"".join(parts)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


box, full_box = _box, _full   # public names for writers of other tracks (transcode/stpp.py)


def styp() -> bytes:
    return _box(b"styp", STYP_BRANDS[0], struct.pack(">I", 0), *STYP_BRANDS)


def write_audio_segment(info: InitInfo, samples: list[Sample], sequence: int) -> bytes:
    """One CMAF segment: styp, sidx (one reference, SAP type 1), one moof+mdat. Every AAC frame is a sync
    sample, so any sample may start a segment."""
    mfhd = _full(b"mfhd", 0, 0, struct.pack(">I", sequence))
    tfhd = _full(b"tfhd", 0, 0x020020, struct.pack(">II", info.track_id, SYNC_SAMPLE_FLAGS))
    tfdt = _full(b"tfdt", 1, 0, struct.pack(">Q", samples[0].decode_time))
    rows = b"".join(struct.pack(">II", s.duration, len(s.payload)) for s in samples)

    def moof_with(data_offset: int) -> bytes:
        trun = _full(b"trun", 0, 0x000301, struct.pack(">Ii", len(samples), data_offset), rows)
        return _box(b"moof", mfhd, _box(b"traf", tfhd, tfdt, trun))

    moof = moof_with(len(moof_with(0)) + 8)  # sample data starts right after the mdat header
    mdat = _box(b"mdat", *(s.payload for s in samples))
    start, end = presentation_span(samples, info.media_time)
    sidx = _full(b"sidx", 1, 0, struct.pack(">IIQQHH", info.track_id, info.timescale, max(start, 0), 0, 0, 1),
                 struct.pack(">III", len(moof) + len(mdat), end - max(start, 0), (1 << 31) | (SAP_TYPE_1 << 28)))
    return styp() + sidx + moof + mdat


def relabel_segment(data: bytes) -> bytes:
    """ffmpeg's segment with the CMAF styp and every sidx reference marked SAP type 1 (our GOPs are closed and
    start with an IDR). Offsets inside sidx/trun are relative to boxes after styp, so resizing styp is safe."""
    out = bytearray()
    for kind, start, payload, end in iter_boxes(data):
        if kind == b"styp":
            out += styp()
            continue
        box = bytearray(data[start:end])
        if kind == b"sidx":
            rel = payload - start
            v1 = box[rel] == 1
            count_at = rel + 4 + 8 + (16 if v1 else 8) + 2
            count = struct.unpack_from(">H", box, count_at)[0]
            for i in range(count):
                sap_at = count_at + 2 + i * 12 + 8
                word = struct.unpack_from(">I", box, sap_at)[0]
                if word >> 31:
                    struct.pack_into(">I", box, sap_at, (1 << 31) | (SAP_TYPE_1 << 28) | (word & 0x0FFFFFFF))
        out += box
    return bytes(out)


def add_cmaf_brand(init: bytes) -> bytes:
    """ftyp with `cmfc` (CMAF track) among the compatible brands; the rest of the init is position-independent."""
    for kind, start, payload, end in iter_boxes(init):
        if kind == b"ftyp":
            brands = [init[i:i + 4] for i in range(payload + 8, end, 4)]
            if b"cmfc" in brands:
                return init
            ftyp = _box(b"ftyp", init[payload:payload + 8], *brands, b"cmfc")
            return init[:start] + ftyp + init[end:]
    raise BoxError("init segment has no ftyp")
