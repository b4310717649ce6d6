"""A small RTMP server for publishers (OBS, ffmpeg, phones): handshake, chunk streams, the publish commands.

Why our own front end instead of ffmpeg's `-listen 1`: ffmpeg's RTMP listener takes one connection per process
and port and does not check the stream name, so it cannot refuse a wrong key before transcoding starts. Here the
key is checked at `publish` (a wrong key gets NetStream.Publish.BadName and the socket closes; no process ever
starts), and the audio/video messages of an accepted publisher are rewritten as FLV tags for the encoder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from streaming.live import amf

log = logging.getLogger("onair.live.rtmp")

HANDSHAKE = 1536
STALL_SECONDS = 10.0     # default: a publisher that sends nothing this long (socket open) is dropped
ACK_WINDOW = 2_500_000
OUT_CHUNK = 4096
# control (1-6), audio, video, AMF3/AMF0 data, shared objects and commands (15-20), aggregate (22)
MESSAGE_TYPES = frozenset({1, 2, 3, 4, 5, 6, 8, 9, 15, 16, 17, 18, 19, 20, 22})


class Sink(Protocol):
    async def write(self, data: bytes) -> None: ...
    async def close(self, reason: str) -> None: ...
    stopped: asyncio.Event


Accept = Callable[[str, str], Awaitable[Sink | str]]   # (app, stream key) -> sink, or the refusal reason


class RtmpError(ConnectionError):
    pass


@dataclass
class _Chunk:
    timestamp: int = 0
    delta: int = 0
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    extended: bool = False
    body: bytearray = field(default_factory=bytearray)


def flv_header() -> bytes:
    return b"FLV\x01\x05\x00\x00\x00\x09" + b"\x00\x00\x00\x00"


def flv_tag(type_id: int, timestamp: int, data: bytes) -> bytes:
    ts = timestamp & 0xFFFFFFFF
    head = bytes([type_id]) + len(data).to_bytes(3, "big") + (ts & 0xFFFFFF).to_bytes(3, "big") + \
        bytes([ts >> 24]) + b"\x00\x00\x00"
    return head + data + struct.pack(">I", 11 + len(data))


def _message(csid: int, type_id: int, stream_id: int, payload: bytes) -> bytes:
    out = bytearray()
    for i in range(0, max(len(payload), 1), OUT_CHUNK):
        if i == 0:
            out += bytes([csid]) + b"\x00\x00\x00" + len(payload).to_bytes(3, "big") + bytes([type_id]) + \
                struct.pack("<I", stream_id)
        else:
            out += bytes([0xC0 | csid])
        out += payload[i:i + OUT_CHUNK]
    return bytes(out)


def _command(name: str, txn: float, *args: object, stream_id: int = 0) -> bytes:
    payload = amf.encode(name) + amf.encode(txn) + b"".join(amf.encode(a) for a in args)
    return _message(3, 20, stream_id, payload)


def _status(level: str, code: str, description: str) -> bytes:
    return _command("onStatus", 0, None, {"level": level, "code": code, "description": description}, stream_id=1)


class RtmpConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, accept: Accept,
                 stall_seconds: float = STALL_SECONDS) -> None:
        self.reader, self.writer, self.accept = reader, writer, accept
        self.stall_seconds = stall_seconds
        self.chunk_size = 128
        self.chunks: dict[int, _Chunk] = {}
        self.app = ""
        self.sink: Sink | None = None
        self.received = 0
        self.acked = 0
        self.ack_window = ACK_WINDOW
        self.sent_header = False

    async def _read(self, n: int) -> bytes:
        try:
            data = await asyncio.wait_for(self.reader.readexactly(n), self.stall_seconds)
        except asyncio.IncompleteReadError:
            raise RtmpError("publisher closed the connection") from None
        except TimeoutError:
            raise RtmpError(f"publisher sent nothing for {self.stall_seconds:g} s") from None
        self.received += n
        return data

    async def handshake(self) -> None:
        c0c1 = await self._read(1 + HANDSHAKE)
        if c0c1[0] != 3:
            raise RtmpError(f"not RTMP (version byte {c0c1[0]})")
        s1 = b"\x00" * 8 + os.urandom(HANDSHAKE - 8)   # zero version: the plain (undigested) handshake
        self.writer.write(b"\x03" + s1 + c0c1[1:])
        await self.writer.drain()
        await self._read(HANDSHAKE)

    async def _next_message(self) -> tuple[int, int, bytes]:
        first = (await self._read(1))[0]
        fmt, csid = first >> 6, first & 0x3F
        if csid == 0:
            csid = 64 + (await self._read(1))[0]
        elif csid == 1:
            b = await self._read(2)
            csid = 64 + b[0] + b[1] * 256
        st = self.chunks.setdefault(csid, _Chunk())
        starting = not st.body
        if fmt <= 2:
            h = await self._read((11, 7, 3)[fmt])
            ts = int.from_bytes(h[0:3], "big")
            if fmt <= 1:
                st.length, st.type_id = int.from_bytes(h[3:6], "big"), h[6]
            if fmt == 0:
                st.stream_id = struct.unpack("<I", h[7:11])[0]
            st.extended = ts == 0xFFFFFF
            if st.extended:
                ts = struct.unpack(">I", await self._read(4))[0]
            if fmt == 0:
                st.timestamp, st.delta = ts, 0
            else:
                st.delta = ts
                st.timestamp += ts
        else:
            if st.extended:
                await self._read(4)
            if starting:
                st.timestamp += st.delta
        if st.length > 16 * 1024 * 1024:
            raise RtmpError("publisher sent invalid RTMP data (a message of more than 16 MiB)")
        if st.type_id not in MESSAGE_TYPES:   # garbage in the chunk stream: refuse it rather than forward it
            raise RtmpError(f"publisher sent invalid RTMP data (message type {st.type_id})")
        take = min(self.chunk_size, st.length - len(st.body))
        st.body += await self._read(take)
        if len(st.body) < st.length:
            return -1, 0, b""
        body, st.body = bytes(st.body), bytearray()
        return st.type_id, st.timestamp, body

    async def _ack(self) -> None:
        if self.received - self.acked >= self.ack_window:
            self.acked = self.received
            self.writer.write(_message(2, 3, 0, struct.pack(">I", self.received & 0xFFFFFFFF)))

    async def run(self) -> None:
        await self.handshake()
        while True:
            type_id, timestamp, body = await self._next_message()
            await self._ack()
            if type_id == -1:
                continue
            if type_id == 1:
                self.chunk_size = max(1, struct.unpack(">I", body[:4])[0] & 0x7FFFFFFF)
            elif type_id == 5:
                self.ack_window = max(1, struct.unpack(">I", body[:4])[0])
            elif type_id in (20, 17):
                if not await self._command(body[1:] if type_id == 17 else body):
                    return
            elif type_id in (8, 9, 18) and self.sink is not None:
                if self.sink.stopped.is_set():
                    raise RtmpError("the channel was ended")
                await self._media(type_id, timestamp, body)

    async def _media(self, type_id: int, timestamp: int, body: bytes) -> None:
        if type_id == 18:
            values = amf.decode_all(body) if body[:1] == b"\x02" else []
            if values[:1] == ["@setDataFrame"]:
                body = body[3 + len("@setDataFrame"):]   # FLV files carry onMetaData without the wrapper
        if not self.sent_header:
            self.sent_header = True
            await self.sink.write(flv_header())  # type: ignore[union-attr]
        await self.sink.write(flv_tag(type_id, timestamp, body))  # type: ignore[union-attr]

    async def _command(self, body: bytes) -> bool:
        values = amf.decode_all(body)
        name, txn = [*values, None, 0][:2]
        if name == "connect":
            props = values[2] if len(values) > 2 and isinstance(values[2], dict) else {}
            self.app = str(props.get("app", "")).strip("/")
            self.writer.write(_message(2, 5, 0, struct.pack(">I", ACK_WINDOW)) +
                              _message(2, 6, 0, struct.pack(">IB", ACK_WINDOW, 2)) +
                              _message(2, 1, 0, struct.pack(">I", OUT_CHUNK)))
            self.writer.write(_command("_result", txn, {"fmsVer": "FMS/3,0,1,123", "capabilities": 31},
                                       {"level": "status", "code": "NetConnection.Connect.Success",
                                        "description": "Connection succeeded.", "objectEncoding": 0}))
        elif name == "createStream":
            self.writer.write(_command("_result", txn, None, 1))
        elif name in ("releaseStream", "FCPublish"):
            self.writer.write(_command("_result", txn, None))
        elif name == "publish":
            key = str(values[3] if len(values) > 3 else "").split("?", 1)[0]
            outcome = await self.accept(self.app, key)
            if isinstance(outcome, str):
                self.writer.write(_status("error", "NetStream.Publish.BadName", outcome))
                await self.writer.drain()
                return False
            self.sink = outcome
            self.writer.write(_status("status", "NetStream.Publish.Start", "Publishing."))
        elif name in ("FCUnpublish", "deleteStream", "closeStream"):
            return False
        await self.writer.drain()
        return True


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, accept: Accept,
                stall_seconds: float = STALL_SECONDS) -> None:
    conn = RtmpConnection(reader, writer, accept, stall_seconds)
    reason = "publisher finished"
    try:
        await conn.run()
    except (RtmpError, amf.AmfError, ConnectionError, struct.error, IndexError) as exc:
        reason = str(exc) or type(exc).__name__
    finally:
        if conn.sink is not None:
            await conn.sink.close(reason)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
