"""AMF0, the subset RTMP commands use (numbers, booleans, strings, objects, arrays, null)."""

from __future__ import annotations

import struct
from typing import Any


class AmfError(ValueError):
    pass


def decode_all(data: bytes) -> list[Any]:
    values, pos = [], 0
    while pos < len(data):
        value, pos = _decode(data, pos)
        values.append(value)
    return values


def _string(data: bytes, pos: int, wide: bool = False) -> tuple[str, int]:
    n = struct.unpack_from(">I" if wide else ">H", data, pos)[0]
    pos += 4 if wide else 2
    return data[pos:pos + n].decode("utf-8", "replace"), pos + n


def _object(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    while True:
        if data[pos:pos + 3] == b"\x00\x00\x09":
            return out, pos + 3
        key, pos = _string(data, pos)
        out[key], pos = _decode(data, pos)


def _decode(data: bytes, pos: int) -> tuple[Any, int]:
    try:
        marker = data[pos]
        pos += 1
        if marker == 0:
            return struct.unpack_from(">d", data, pos)[0], pos + 8
        if marker == 1:
            return data[pos] != 0, pos + 1
        if marker == 2:
            return _string(data, pos)
        if marker == 3:
            return _object(data, pos)
        if marker in (5, 6):
            return None, pos
        if marker == 8:
            return _object(data, pos + 4)
        if marker == 10:
            n = struct.unpack_from(">I", data, pos)[0]
            pos += 4
            items = []
            for _ in range(n):
                item, pos = _decode(data, pos)
                items.append(item)
            return items, pos
        if marker == 11:
            return struct.unpack_from(">d", data, pos)[0], pos + 10
        if marker == 12:
            return _string(data, pos, wide=True)
    except (IndexError, struct.error):
        raise AmfError("truncated AMF0 value") from None
    raise AmfError(f"unsupported AMF0 marker {marker}")


def encode(value: Any) -> bytes:
    if value is None:
        return b"\x05"
    if isinstance(value, bool):
        return b"\x01" + bytes([value])
    if isinstance(value, (int, float)):
        return b"\x00" + struct.pack(">d", float(value))
    if isinstance(value, str):
        raw = value.encode()
        return b"\x02" + struct.pack(">H", len(raw)) + raw
    if isinstance(value, dict):
        body = b"".join(struct.pack(">H", len(k.encode())) + k.encode() + encode(v) for k, v in value.items())
        return b"\x03" + body + b"\x00\x00\x09"
    raise AmfError(f"cannot encode {type(value).__name__}")
