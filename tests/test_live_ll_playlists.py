"""LL-HLS playlists from a timeline, read back by the origin's blocking-reload rules (pure: no encoder)."""

from __future__ import annotations

import pytest

from onair.core.errors import BadRequest
from streaming.live import blocking, delta
from streaming.live.blocking import Wanted
from transcode import live_manifests

TS = 12800


def timeline(complete: int, open_parts: int) -> dict:
    """`complete` 2 s segments of 5 parts each, then a segment being filled with `open_parts` parts."""
    segs = [[i, 1, (i - 1) * 2 * TS, 2 * TS, 1767000000.0 + 2 * (i - 1)] for i in range(1, complete + 1)]
    parts = [[s, k, 2 * TS // 5, k == 0] for s in range(max(1, complete - 2), complete + 1) for k in range(5)]
    opened = None
    if open_parts:
        seq = complete + 1
        parts += [[seq, k, 2 * TS // 5, k == 0] for k in range(open_parts)]
        opened = [seq, 1, complete * 2 * TS, 1767000000.0 + 2 * complete]
    video = {"kind": "video", "timescale": TS, "inits": {"1": "cmaf/v0/init-1.mp4"}, "segments": segs,
             "parts": parts, "open": opened}
    audio = {**video, "kind": "audio", "parts": parts[-3:]}
    return {"segment_seconds": 2.0, "dvr_seconds": 60, "media_url": "../e1/", "part_target": 0.4,
            "tracks": {"v0": video, "a": audio}}


def test_standard_playlists_carry_no_low_latency_tags() -> None:
    text = live_manifests.media_playlist(timeline(4, 2), "v0")
    assert "#EXT-X-PART" not in text and "PRELOAD-HINT" not in text and "SERVER-CONTROL" not in text
    assert text.count("#EXTINF:") == 4


def test_the_origin_reads_the_live_edge_the_publisher_wrote() -> None:
    text = live_manifests.media_playlist(timeline(4, 2), "v0", low=True)
    assert '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="../e1/cmaf/v0/000005.2.m4s"' in text
    assert '#EXT-X-RENDITION-REPORT:URI="a.m3u8",LAST-MSN=5,LAST-PART=1' in text
    assert text.count(",INDEPENDENT=YES") == 4      # first part of segments 2, 3, 4 and of the open one
    edge = blocking.edge(text)
    assert edge.last_msn == 4 and edge.parts[5] == 2 and edge.target == 2
    assert blocking.satisfied(edge, Wanted(5, 1)) and not blocking.satisfied(edge, Wanted(5, 2))
    assert blocking.satisfied(edge, Wanted(4, None)) and not blocking.satisfied(edge, Wanted(5, None))
    # Past a complete segment's last part means part 0 of the next one (RFC 8216bis 6.2.5.2).
    assert blocking.satisfied(edge, Wanted(4, 5)) and not blocking.satisfied(blocking.edge(
        live_manifests.media_playlist(timeline(4, 0), "v0", low=True)), Wanted(4, 5))
    assert not blocking.too_far(edge, Wanted(6, 0)) and blocking.too_far(edge, Wanted(7, 0))


def test_an_ended_event_answers_every_blocking_request() -> None:
    text = live_manifests.media_playlist(timeline(4, 0), "v0", ended=True)
    edge = blocking.edge(text)
    assert edge.ended and blocking.satisfied(edge, Wanted(99, 0)) and not blocking.too_far(edge, Wanted(99, 0))


def _segment_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.endswith(".m4s") and not line.startswith("#")]


def test_a_delta_update_skips_all_but_the_last_six_target_durations() -> None:
    full = live_manifests.media_playlist(timeline(20, 2), "v0", low=True)
    assert "CAN-SKIP-UNTIL=12.0" in full    # 6 target durations of 2 s (the spec's floor)
    text = delta.skip(full)
    # 40 s of 2 s segments: those ending more than 12 s before the end (1..14) become one EXT-X-SKIP line.
    assert "#EXT-X-SKIP:SKIPPED-SEGMENTS=14" in text and "#EXT-X-VERSION:9" in text
    assert "#EXT-X-MEDIA-SEQUENCE:1" in text           # unchanged: the player counts the skipped ones
    assert _segment_lines(text) == _segment_lines(full)[14:]
    # Everything after the skipped segments is the full playlist's, from segment 15's date on: parts, preload hint,
    # rendition reports; the skipped ones' EXT-X-MAP is not repeated (the player has it).
    after = text.split("#EXT-X-SKIP:SKIPPED-SEGMENTS=14\n", 1)[1]
    assert after.startswith("#EXT-X-PROGRAM-DATE-TIME") and full.endswith(after) and "#EXT-X-MAP" not in after
    assert blocking.edge(full).last_msn == 20


def test_a_delta_update_of_a_short_or_ended_playlist_is_the_playlist() -> None:
    short = live_manifests.media_playlist(timeline(6, 2), "v0", low=True)    # 12 s: nothing older than 12 s
    assert delta.skip(short) == short
    ended = live_manifests.media_playlist(timeline(20, 0), "v0", ended=True)
    assert delta.skip(ended) == ended
    standard = live_manifests.media_playlist(timeline(20, 0), "v0")         # no CAN-SKIP-UNTIL offered
    assert delta.skip(standard) == standard


def test_skip_values() -> None:
    assert delta.wants_skip({"_HLS_skip": "YES"}) and delta.wants_skip({"_HLS_skip": "v2"})
    assert not delta.wants_skip({})
    with pytest.raises(BadRequest) as err:
        delta.wants_skip({"_HLS_skip": "NO"})
    assert err.value.extra["field"] == "_HLS_skip"


async def test_requests_woken_by_one_announcement_share_one_playlist_read() -> None:
    import asyncio

    shared, reads, gate = blocking.SharedReads(), [], asyncio.Event()

    async def read() -> bytes:
        reads.append(1)
        await gate.wait()
        return b"#EXTM3U\n"

    crowd = [asyncio.create_task(shared.read(("k", 5, 1, False), read)) for _ in range(200)]
    await asyncio.sleep(0)
    crowd[0].cancel()                  # one viewer gives up: the others still get the read
    gate.set()
    answers = await asyncio.gather(*crowd[1:])
    assert answers == [b"#EXTM3U\n"] * 199 and len(reads) == 1
    # The next announcement (or a late waker after the read finished) reads again: never an older playlist.
    assert await shared.read(("k", 5, 2, False), read) == b"#EXTM3U\n" and len(reads) == 2
