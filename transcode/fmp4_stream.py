"""Fragmented MP4 as a stream: the init segment (ftyp+moov), then one fragment (moof+mdat) at a time with its
decode time and duration. The live packager cuts segments from these fragments itself, so a low-latency mode can
make fragments shorter (LL-HLS parts) and group several into one segment. (transcode/fmp4.py is the box library
for whole files: reading samples, writing segments.)"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

from transcode.fmp4 import BoxError, find, iter_boxes


class Fmp4Error(BoxError):
    pass


@dataclass(frozen=True)
class Fragment:
    data: bytes
    decode_time: int      # tfdt, in the track's timescale
    duration: int         # sum of sample durations, same timescale


def timescale(init: bytes) -> int:
    found = find(init, b"moov", b"trak", b"mdia", b"mdhd")
    if found is None:
        raise Fmp4Error("init segment has no mdhd")
    body = found[0]
    version = init[body]
    return struct.unpack_from(">I", init, body + (20 if version == 1 else 12))[0]


def codecs(init: bytes) -> str:
    """RFC 6381 codec string: avc1.PPCCLL from avcC, AAC-LC otherwise."""
    at = init.find(b"avcC")
    if at >= 0:
        profile, compat, level = init[at + 5], init[at + 6], init[at + 7]
        return f"avc1.{profile:02x}{compat:02x}{level:02x}"
    return "mp4a.40.2"


def fragment_timing(moof: bytes) -> tuple[int, int]:
    """(decode time, duration) of a moof's first track fragment."""
    traf = find(moof, b"moof", b"traf")
    if traf is None:
        raise Fmp4Error("moof has no traf")
    default_duration, decode_time, duration = 0, 0, 0
    for kind, _, body, _stop in iter_boxes(moof, *traf):
        flags = int.from_bytes(moof[body + 1:body + 4], "big")
        if kind == b"tfhd":
            pos = body + 8 + (8 if flags & 0x1 else 0) + (4 if flags & 0x2 else 0)
            if flags & 0x8:
                default_duration = struct.unpack_from(">I", moof, pos)[0]
        elif kind == b"tfdt":
            decode_time = (struct.unpack_from(">Q", moof, body + 4)[0] if moof[body] == 1
                           else struct.unpack_from(">I", moof, body + 4)[0])
        elif kind == b"trun":
            count = struct.unpack_from(">I", moof, body + 4)[0]
            pos = body + 8 + (4 if flags & 0x1 else 0) + (4 if flags & 0x4 else 0)
            fields = [f for f in (0x100, 0x200, 0x400, 0x800) if flags & f]
            for _ in range(count):
                duration += struct.unpack_from(">I", moof, pos)[0] if flags & 0x100 else default_duration
                pos += 4 * len(fields)
    return decode_time, duration


async def _box(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    try:
        header = await reader.readexactly(8)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise Fmp4Error("stream ended inside a box header") from None
        return None
    size, kind = struct.unpack(">I4s", header)
    if size == 1:
        large = await reader.readexactly(8)
        size, header = struct.unpack(">Q", large)[0], header + large
    if size < len(header):
        raise Fmp4Error(f"box {kind!r} has an impossible size {size}")
    return kind, header + await reader.readexactly(size - len(header))


async def read_stream(reader: asyncio.StreamReader):
    """Yield ("init", bytes) once, then ("fragment", Fragment) until the stream ends."""
    init, moof = b"", b""
    while (box := await _box(reader)) is not None:
        kind, data = box
        if kind in (b"ftyp", b"moov"):
            init += data
            if kind == b"moov":
                yield "init", init
        elif kind == b"moof":
            moof = data
        elif kind == b"mdat" and moof:
            decode_time, duration = fragment_timing(moof)
            yield "fragment", Fragment(moof + data, decode_time, duration)
            moof = b""
