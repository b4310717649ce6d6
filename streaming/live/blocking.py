"""LL-HLS blocking playlist reload (RFC 8216bis 6.2.5.2): `?_HLS_msn=M&_HLS_part=P` holds the request until the
media playlist contains part P of segment M (segment M whole without `_HLS_part`).

A held request is one coroutine waiting on a bus subscription, never a poll loop: the encoder's publisher writes
each part, rewrites the playlist, then announces the part on `live-parts:<channel>` (Redis across processes,
in-process otherwise); every origin process holding a request for that channel wakes, re-reads the playlist once
and answers those whose part is now in it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from onair.core.bus import Bus, live_parts_channel
from onair.core.errors import AppError, BadRequest

HOLD_TARGETS = 3            # a held request gives up after this many target durations (the spec's bound)
SEGMENT = re.compile(r"(?P<base>e\d+/cmaf/(?P<track>[A-Za-z0-9]+)/)(?P<seq>\d{6})\.m4s")
QUEUE = 16                  # announcements a held request may fall behind by (it re-reads the playlist anyway)


class PartNotYetAvailable(AppError):
    status = 503
    code = "part-not-available"
    title = "The requested part did not appear in time"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})


@dataclass(frozen=True)
class Wanted:
    msn: int
    part: int | None


@dataclass
class Edge:
    """What a media playlist holds: complete segments up to `last_msn`, parts per segment, whether it ended."""
    last_msn: int = -1
    parts: dict[int, int] = field(default_factory=dict)
    target: float = 2.0
    ended: bool = False


def wanted(query: dict[str, str]) -> Wanted | None:
    """The blocking request's target from the query; None for a plain playlist request."""
    msn, part = query.get("_HLS_msn"), query.get("_HLS_part")
    if msn is None:
        if part is not None:
            raise BadRequest("_HLS_part needs _HLS_msn", code="invalid-query", field="_HLS_part")
        return None
    values = []
    for name, raw in (("_HLS_msn", msn), ("_HLS_part", part)):
        if raw is None:
            values.append(None)
        elif not raw.isdigit() or len(raw) > 12:
            raise BadRequest(f"{name} must be a non-negative integer", code="invalid-query", field=name)
        else:
            values.append(int(raw))
    return Wanted(values[0], values[1])


def edge(text: str) -> Edge:
    found, msn, pending = Edge(), 0, False
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            msn = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            found.target = float(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-PART:"):
            found.parts[msn] = found.parts.get(msn, 0) + 1
        elif line.startswith("#EXTINF:"):
            pending = True
        elif line == "#EXT-X-ENDLIST":
            found.ended = True
        elif pending and line and not line.startswith("#"):
            found.last_msn, msn, pending = msn, msn + 1, False
    return found


def satisfied(have: Edge, want: Wanted) -> bool:
    if have.ended:
        return True
    if want.part is None:
        return want.msn <= have.last_msn
    if want.msn <= have.last_msn:
        listed = have.parts.get(want.msn)
        if listed is not None and want.part >= listed:  # past the segment's last part: part 0 of the next one
            return satisfied(have, Wanted(want.msn + 1, 0))
        return True
    return want.msn == have.last_msn + 1 and have.parts.get(want.msn, 0) > want.part


def too_far(have: Edge, want: Wanted) -> bool:
    """RFC 8216bis: more than two segments past the last one in the playlist is a client error (400)."""
    return not have.ended and want.msn > have.last_msn + 2


class SharedReads:
    """Held requests woken by the same announcement share one read of their playlist (per process): a crowd of N held
    requests costs one store read per part instead of N (N thread-pool reads on the local store, N GETs on S3).

    Keyed by the announcement itself: the publisher writes the playlist before announcing the part, and the read is
    started by the first request to see that announcement, so everyone sharing it sees at least that part. A request
    that wakes after the shared read has finished starts a fresh one."""

    def __init__(self) -> None:
        self._reads: dict[tuple, asyncio.Future[bytes]] = {}

    async def read(self, key: tuple, read: Callable[[], Awaitable[bytes]]) -> bytes:
        found = self._reads.get(key)
        if found is None:
            found = asyncio.ensure_future(read())
            self._reads[key] = found
            found.add_done_callback(lambda done: self._done(key, done))
        return await asyncio.shield(found)   # one waiter giving up does not cancel the others' read

    def _done(self, key: tuple, done: asyncio.Future[bytes]) -> None:
        self._reads.pop(key, None)
        if not done.cancelled():
            done.exception()   # retrieved here too, in case every waiter gave up


SHARED = SharedReads()


async def hold(bus: Bus, channel_id: str, track: str, want: Wanted,
               read: Callable[[], Awaitable[bytes]], shared_key: str | None = None) -> bytes:
    """The playlist once it satisfies `want`; 400 when it asks too far ahead, 503 after HOLD_TARGETS targets.
    With `shared_key` (the playlist's store key), requests woken by one announcement share one read (SharedReads)."""
    # Subscribe before the first read, so a part announced in between is never missed.
    async with bus.subscribe(live_parts_channel(channel_id), maxsize=QUEUE) as sub:
        data = await read()
        have = edge(data.decode())
        if too_far(have, want):
            raise BadRequest(f"_HLS_msn {want.msn} is more than two segments past the live edge ({have.last_msn})",
                             code="msn-too-far", field="_HLS_msn")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HOLD_TARGETS * have.target
        while not satisfied(have, want):
            try:
                async with asyncio.timeout_at(deadline):
                    message = await sub.get()
                    while message.get("track") != track:
                        message = await sub.get()
            except TimeoutError:
                raise PartNotYetAvailable(f"segment {want.msn} part {want.part} did not appear within "
                                          f"{HOLD_TARGETS} target durations") from None
            if shared_key is None:
                data = await read()
            else:
                announced = (shared_key, message.get("msn"), message.get("part"), message.get("complete"))
                data = await SHARED.read(announced, read)
            have = edge(data.decode())
        return data


async def _next_announcement(sub, track: str, deadline: float) -> None:
    async with asyncio.timeout_at(deadline):
        while (await sub.get()).get("track") != track:
            pass


async def open_segment(bus: Bus, channel_id: str, track: str, base: str, seq: int, seconds: float,
                       read: Callable[[str], Awaitable[bytes | None]]) -> AsyncIterator[bytes]:
    """LL-DASH chunked delivery of a segment still being encoded: its parts, each as soon as it is written, until
    the segment object exists (parts are written before it, so none is missed). Raises PartNotYetAvailable when
    no part comes for `seconds` (before the first one: nothing was sent and the origin answers 404/503)."""
    loop = asyncio.get_running_loop()
    async with bus.subscribe(live_parts_channel(channel_id), maxsize=QUEUE) as sub:
        index, deadline = 0, loop.time() + seconds
        while True:
            part = await read(f"{base}{seq:06d}.{index}.m4s")
            if part is not None:
                yield part
                index, deadline = index + 1, loop.time() + seconds
                continue
            if await read(f"{base}{seq:06d}.m4s") is not None:
                return
            try:
                await _next_announcement(sub, track, deadline)
            except TimeoutError:
                raise PartNotYetAvailable(f"segment {seq} has no part {index} yet") from None
