"""LL-HLS playlists from a timeline, read back by the origin's blocking-reload rules (pure: no encoder)."""

from __future__ import annotations

from streaming.live import blocking
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
