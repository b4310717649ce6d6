"""The publisher's stream on its way to the live encoder, read as units (FLV tags from the RTMP ingest, 188-byte
MPEG-TS packets from SRT): what the first second's probe cannot tell, measured for as long as the event runs
(bitrate, keyframe interval, a variable frame rate), and where the encoder may be restarted (a video keyframe,
after the `prelude` a new decoder needs: FLV header, metadata and sequence headers; or the PAT and PMT).

Parsing stays at the container level on purpose: no decoding, a few bytes looked at per frame.
"""

from __future__ import annotations

import collections
import itertools
import statistics
import time
from dataclasses import dataclass

TS_PACKET = 188
FLV_HEAD = 13                 # the 9-byte header and the first (zero) previous-tag-size
BITRATE_WINDOW = 5.0          # s of arrival time the bitrate is averaged over
INTERVALS_KEPT = 60           # frame intervals the frame-rate check looks at
VFR_SPREAD = 0.25             # frame intervals spreading more than this around the median: variable frame rate


@dataclass(frozen=True)
class Unit:
    data: bytes
    keyframe: bool = False    # a video keyframe starts here: the encoder may restart on it


class InputMeter:
    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.buf = bytearray()
        self.arrivals: collections.deque[tuple[float, int]] = collections.deque()
        self.progress: collections.deque[tuple[float, float]] = collections.deque()   # (wall, media time)
        self.frame_times: collections.deque[float] = collections.deque(maxlen=INTERVALS_KEPT + 1)
        self.keyframes: list[float] = []      # media time (s) of the last keyframes
        self.longest_gop = 0.0
        self.last_media = 0.0
        self.garbage = 0                      # bytes skipped to find the next TS sync byte
        # FLV: header, onMetaData and the codec configurations; TS: the latest PAT and PMT packets
        self.saved: dict[str, bytes] = {}
        self.pmt_pids: set[int] = set()
        self.video_pid: int | None = None

    def feed(self, data: bytes) -> list[Unit]:
        now = time.monotonic()
        self.arrivals.append((now, len(data)))
        while self.arrivals and now - self.arrivals[0][0] > BITRATE_WINDOW:
            self.arrivals.popleft()
        self.buf += data
        pieces = self._flv() if self.fmt == "flv" else self._ts()
        self.progress.append((now, self.last_media))
        while len(self.progress) > 2 and now - self.progress[1][0] >= 120:   # speed() trims to its window
            self.progress.popleft()
        # one unit per keyframe (and one for what comes before the first): few writes to the encoder's stdin
        units: list[Unit] = []
        run = bytearray()
        starts_at_key = False
        for piece in pieces:
            if piece.keyframe and run:
                units.append(Unit(bytes(run), starts_at_key))
                run = bytearray()
            if not run:
                starts_at_key = piece.keyframe
            run += piece.data
        if run:
            units.append(Unit(bytes(run), starts_at_key))
        return units

    def speed(self, window: float) -> float | None:
        """Media seconds arriving per wall second over `window`: below 1 the publisher itself is slow, and an
        encoder keeping pace with it is not behind."""
        now = time.monotonic()
        while len(self.progress) > 2 and now - self.progress[1][0] >= window:
            self.progress.popleft()
        (w0, m0), (w1, m1) = self.progress[0], self.progress[-1]
        return (m1 - m0) / (w1 - w0) if w1 - w0 > 0.5 and m0 > 0 else None

    def prelude(self) -> bytes:
        order = ("header", "meta", "video_config", "audio_config") if self.fmt == "flv" else ("pat", "pmt")
        return b"".join(self.saved[k] for k in order if k in self.saved)

    # --- FLV (our RTMP front end writes it, so it is well formed) ---
    def _flv(self) -> list[Unit]:
        units: list[Unit] = []
        if "header" not in self.saved:
            if len(self.buf) < FLV_HEAD:
                return units
            self.saved["header"] = bytes(self.buf[:FLV_HEAD])
            units.append(Unit(self.saved["header"]))
            del self.buf[:FLV_HEAD]
        while len(self.buf) >= 11:
            size = int.from_bytes(self.buf[1:4], "big")
            end = 11 + size + 4
            if len(self.buf) < end:
                break
            tag = bytes(self.buf[:end])
            del self.buf[:end]
            units.append(Unit(tag, self._flv_tag(tag, size)))
        return units

    def _flv_tag(self, tag: bytes, size: int) -> bool:
        kind = tag[0] & 0x1F
        ts = (int.from_bytes(tag[4:7], "big") | tag[7] << 24) / 1000
        body = tag[11:11 + size]
        if kind == 18:
            self.saved["meta"] = tag
        elif kind == 8 and len(body) > 1 and body[0] >> 4 == 10 and body[1] == 0:
            self.saved["audio_config"] = tag
        elif kind == 9 and body:
            enhanced = bool(body[0] & 0x80)     # enhanced RTMP (HEVC, AV1...): FourCC instead of a codec id
            frame_type = (body[0] >> 4) & 0x07 if enhanced else body[0] >> 4
            # AVC-style codecs carry a packet type: 0 configuration, 1 frames, 2 end of sequence (flagged key)
            avc_style = not enhanced and body[0] & 0x0F in (7, 12, 13) and len(body) > 1
            packet = body[0] & 0x0F if enhanced else (body[1] if avc_style else 1)
            if packet == 0:                     # sequence start / decoder configuration
                self.saved["video_config"] = tag
                return False
            if packet not in ((1, 3) if enhanced else (1,)):
                return False
            return self._frame(ts, frame_type == 1)
        return False

    # --- MPEG-TS ---
    def _ts(self) -> list[Unit]:
        units: list[Unit] = []
        buf, i = self.buf, 0
        while len(buf) - i >= TS_PACKET:
            if buf[i] != 0x47:
                sync = buf.find(b"\x47", i + 1)
                skip = (sync if sync > 0 else len(buf)) - i
                self.garbage += skip
                i += skip
                continue
            pkt = bytes(buf[i:i + TS_PACKET])
            i += TS_PACKET
            units.append(Unit(pkt, self._ts_packet(pkt)))
        del buf[:i]
        return units

    def _ts_packet(self, pkt: bytes) -> bool:
        pid = (pkt[1] & 0x1F) << 8 | pkt[2]
        start = bool(pkt[1] & 0x40)
        afc = (pkt[3] >> 4) & 0x03
        payload = 4
        rai = False
        if afc & 0x02:
            alen = pkt[4]
            rai = alen > 0 and bool(pkt[5] & 0x40)
            payload = 5 + alen
        if not afc & 0x01 or payload >= TS_PACKET:
            return False
        body = pkt[payload:]
        if pid == 0 and start:
            self.saved["pat"] = pkt
            self._pat(body)
        elif pid in self.pmt_pids and start:
            self.saved["pmt"] = pkt
        elif start and body[:3] == b"\x00\x00\x01" and len(body) > 13 and 0xE0 <= body[3] <= 0xEF:
            self.video_pid = pid
            flags = body[7] >> 6
            at = 14 if flags == 3 else 9      # DTS when there is one, else PTS
            if flags >= 2 and len(body) >= at + 5:
                b = body[at:at + 5]
                t = ((b[0] >> 1) & 0x07) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1
                return self._frame(t / 90000, rai)
        return False

    def _pat(self, body: bytes) -> None:
        section = body[1 + body[0]:]
        length = ((section[1] & 0x0F) << 8 | section[2]) if len(section) > 3 else 0
        for i in range(8, min(3 + length - 4, len(section) - 3), 4):
            program = section[i] << 8 | section[i + 1]
            if program:
                self.pmt_pids.add((section[i + 2] & 0x1F) << 8 | section[i + 3])

    # --- what is measured ---
    def _frame(self, media: float, keyframe: bool) -> bool:
        self.frame_times.append(media)
        self.last_media = max(self.last_media, media)
        if keyframe:
            if self.keyframes:
                self.longest_gop = max(self.longest_gop, media - self.keyframes[-1])
            self.keyframes = [*self.keyframes[-3:], media]
        return keyframe

    def keyframe_interval(self) -> float | None:
        """The longest keyframe interval seen, or the time since the last keyframe when that is longer (a 10 s
        GOP shows up before its second keyframe arrives)."""
        if not self.keyframes:
            return None
        pending = self.last_media - self.keyframes[-1]
        longest = max(self.longest_gop, pending)
        return round(longest, 3) if longest > 0 else None

    def variable_frame_rate(self) -> bool | None:
        times = sorted(self.frame_times)
        steps = [b - a for a, b in itertools.pairwise(times) if b > a]
        if len(steps) < 10:
            return None
        median = statistics.median(steps)
        return any(abs(s - median) > max(0.002, VFR_SPREAD * median) for s in steps)

    def facts(self) -> dict[str, object]:
        span = self.arrivals[-1][0] - self.arrivals[0][0] if len(self.arrivals) > 1 else 0.0
        received = sum(n for _, n in list(self.arrivals)[1:])
        return {"bitrate": int(received * 8 / span) if span > 0.5 else None,
                "keyframe_interval": self.keyframe_interval(),
                "variable_frame_rate": self.variable_frame_rate(),
                "skipped_bytes": self.garbage}


KEYFRAME_WARN = 4.0           # s: a longer input GOP delays starts, reconnects and ladder changes


def warnings(probed: dict[str, object], measured: dict[str, object], ladder: dict[str, object]) -> list[str]:
    """What the channel tells the studio about its input: each line says what onair does about it."""
    out: list[str] = []
    rungs = ladder.get("rungs") or []
    top = rungs[0]["name"] if isinstance(rungs, list) and rungs else "?"
    fps_in, fps_out = float(probed.get("fps") or 0), float(ladder.get("fps") or 0)  # type: ignore[arg-type]
    if ladder.get("capped") or (fps_out and fps_in > fps_out + 0.01):
        out.append(f"input is {probed.get('width')}x{probed.get('height')} at {fps_in:g} fps: the live ladder "
                   f"tops out at {top} ({ladder.get('max_height')}p cap on this host) and {fps_out:g} fps")
    pix = str(probed.get("pix_fmt") or "")
    if probed.get("video_codec") not in ("h264", None) or any(d in pix for d in ("10", "12")):
        out.append(f"input is {probed.get('video_codec')} {pix}: decoded and re-encoded as 8-bit H.264")
    if measured.get("variable_frame_rate"):
        out.append(f"input has a variable frame rate: made constant at {fps_out:g} fps")
    interval = measured.get("keyframe_interval")
    if isinstance(interval, float) and interval > KEYFRAME_WARN:
        out.append(f"input keyframe interval is {interval:.1f} s or more (2 s recommended): the live encoder "
                   f"re-keys every {ladder.get('segment_seconds')} s anyway; a start, a reconnect or a ladder "
                   "change waits for an input keyframe")
    return out
