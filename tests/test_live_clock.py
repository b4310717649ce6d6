"""The live clock LL-DASH players steer by: the MPD's availabilityStartTime says when media time 0 came out of the
encoder. The encoder starts on a second of buffered input and works that backlog off in a burst, so its first
part comes out late; a clock anchored on that part alone made dash.js believe the media was ~1 s younger than it
was, and it settled ~1 s further behind the live edge than its target (glass-to-glass 3.1 s for a 2.2 s target)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lxml import etree

from onair.core.storage.local import LocalStore
from transcode import live_publisher
from transcode.fmp4_stream import Fragment
from transcode.live_publisher import Publisher

TS = 12800          # video timescale
PART = 2 * TS // 5  # five 0.4 s parts a 2 s segment
START = 1767000000.0
M = {"m": "urn:mpeg:dash:schema:mpd:2011"}


async def _report(_progress: Any, **_kw: Any) -> None:
    return None


def _publisher(store: LocalStore) -> Publisher:
    payload = {"channel_id": "c1", "event": 1, "segment_seconds": 2.0, "dvr_seconds": 60, "media_url": "../e1/",
               "utc_timing": "/api/v1/time", "latency": "low", "part_seconds": 0.4, "media_prefix": "live/c1/e1/",
               "live_prefix": "live/c1/", "state_key": "live/c1/state.json"}
    ctx = SimpleNamespace(payload=payload, resources=SimpleNamespace(store=store, bus=None, settings=None),
                          report=_report)
    state: dict[str, Any] = {"tracks": {}, "event": 1, "segment_seconds": 2.0, "dvr_seconds": 60,
             "media_url": "../e1/", "utc_timing": "/api/v1/time", "ast": None, "runs": 1, "part_target": 0.4}
    state["tracks"]["v0"] = {"kind": "video", "name": "360p", "width": 640, "height": 360, "codecs": "avc1.64001e",
                             "bandwidth": 800000, "frame_rate": 25.0, "timescale": TS,
                             "inits": {"1": "cmaf/v0/init-1.mp4", "2": "cmaf/v0/init-2.mp4"},
                             "segments": [], "parts": [], "open": None}
    return Publisher(ctx, state, 1)


async def test_the_mpd_clock_follows_the_encoder_once_its_startup_backlog_is_worked_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Media time t is encoded at START + t; the first four parts come out together 1.1 s late (the backlog).
    arrivals = [START + 1.5, START + 1.55, START + 1.6, START + 1.65, START + 2.0,
                START + 2.4, START + 2.8, START + 3.2, START + 3.6, START + 4.0]
    store = LocalStore(tmp_path)
    pub = _publisher(store)
    for n, at in enumerate(arrivals):
        monkeypatch.setattr(live_publisher.time, "time", lambda at=at: at)
        await pub.fragment("v0", Fragment(b"\0" * 8, n * PART, PART))

    root = etree.fromstring(await store.get_bytes("live/c1/dash/manifest.mpd"))
    ast = datetime.fromisoformat(root.get("availabilityStartTime").replace("Z", "+00:00")).timestamp()
    assert ast == pytest.approx(START, abs=0.002)
    assert root.find("m:Period", M).get("start") == "PT0.000S"
    prt = root.find(".//m:ProducerReferenceTime", M)
    assert datetime.fromisoformat(prt.get("wallClockTime").replace("Z", "+00:00")).timestamp() == pytest.approx(START)
    # The same clock stamps the HLS segments (PROGRAM-DATE-TIME), and it no longer moves once published.
    assert [s[4] for s in pub.state["tracks"]["v0"]["segments"]] == [START, START + 2.0]
    monkeypatch.setattr(live_publisher.time, "time", lambda: START + 3.0)   # a part out early: the clock holds
    await pub.fragment("v0", Fragment(b"\0" * 8, 10 * PART, PART))
    assert pub.state["ast"] == pytest.approx(START, abs=0.002)
    assert pub.state["tracks"]["v0"]["open"][3] == START + 4.0


async def test_a_later_encoder_run_keeps_the_event_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path)
    pub = _publisher(store)
    pub.state["ast"] = START - 60.0   # the event's first run fixed it
    second = Publisher(pub.ctx, pub.state, 2)
    monkeypatch.setattr(live_publisher.time, "time", lambda: START + 1.5)
    await second.fragment("v0", Fragment(b"\0" * 8, 0, PART))
    monkeypatch.setattr(live_publisher.time, "time", lambda: START + 0.8)
    await second.fragment("v0", Fragment(b"\0" * 8, PART, PART))
    assert pub.state["ast"] == START - 60.0
    assert pub.state["tracks"]["v0"]["open"][3] == START   # the run's own clock settled on the earliest bound
