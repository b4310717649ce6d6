"""Live (and recorded) manifests from a channel event's timeline: HLS media/master playlists and a DVB-DASH MPD.

The timeline (`state`) is plain JSON, kept in the object store next to nothing public, so an encoder run that
takes over after a reconnect (on any worker) continues the same event:

    {"event": 3, "segment_seconds": 2.0, "dvr_seconds": 7200, "media_url": "../e3/", "utc_timing": URL,
     "ast": 1767000000.0,                       # availabilityStartTime (epoch seconds)
     "tracks": {"v0": {"kind": "video", "name": "360p", "width": 640, "height": 360, "codecs": "avc1.64001e",
                       "bandwidth": 800000, "frame_rate": 25.0, "timescale": 12800,
                       "inits": {"1": "cmaf/v0/init-1.mp4"},
                       "segments": [[seq, run, decode_time, duration, wall_start], ...],
                       # low latency only: the parts of the last few segments and the one being filled
                       "parts": [[seq, index, duration, independent], ...], "open": [seq, run, decode_time, wall]},
                "a": {...}},
     "part_target": 0.40533}                     # low latency: EXT-X-PART-INF:PART-TARGET (null: standard)

Segments are numbered per track across the whole event; a new encoder run (reconnect) gets a new init segment
and starts an HLS discontinuity / a new DASH Period.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from lxml import etree

MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
PROFILES = "urn:dvb:dash:profile:dvb-dash:2014,urn:mpeg:dash:profile:isoff-live:2011"
LL_PROFILE = "http://www.dashif.org/guidelines/low-latency-live-v5"
UTC_SCHEME = "urn:mpeg:dash:utc:http-iso:2014"
SEQ, RUN, T, D, WALL = range(5)
MPD_KEY = "dash/manifest.mpd"          # LL-DASH on a low-latency channel
STANDARD_MPD_KEY = "dash/standard.mpd"   # low-latency channels only: the same segments for players without LL


def segment_key(track: str, seq: int) -> str:
    return f"cmaf/{track}/{seq:06d}.m4s"


def part_key(track: str, seq: int, index: int) -> str:
    """A low-latency part: an object of its own, written once (immutable), named after its segment."""
    return f"cmaf/{track}/{seq:06d}.{index}.m4s"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _dur(seconds: float) -> str:
    return f"PT{max(seconds, 0):.3f}S"


def window(state: dict[str, Any], track: dict[str, Any], vod: bool) -> list[list]:
    segs = track["segments"]
    if vod or not segs:
        return segs
    horizon = segs[-1][WALL] - state["dvr_seconds"]
    return [s for s in segs if s[WALL] >= horizon]


def media_playlist(state: dict[str, Any], tid: str, *, vod: bool = False, ended: bool = False,
                   low: bool = False) -> str:
    """RFC 8216 media playlist; with `low` (and a part target), RFC 8216bis low-latency tags: parts of the last
    segments, the preload hint for the next part and rendition reports for the other tracks."""
    track = state["tracks"][tid]
    ts, all_segs = track["timescale"], track["segments"]
    segs = window(state, track, vod)
    first = len(all_segs) - len(segs)
    disc_seq = sum(1 for i in range(1, first + 1) if all_segs[i][RUN] != all_segs[i - 1][RUN]) if first else 0
    # RFC 8216 4.3.3.1: each EXTINF *rounded to the nearest integer* is at most the target duration.
    target = max([int(s[D] / ts + 0.5) for s in segs] or [math.ceil(state["segment_seconds"])])
    part_target = state.get("part_target") if low else None
    opened = track.get("open") if part_target else None
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{target}"]
    if part_target:
        # PART-HOLD-BACK at least 3 part targets (the spec's floor is 2; 3 rides out one late part).
        # CAN-SKIP-UNTIL: delta updates (streaming/live/delta.py) keep the last 6 target durations, the spec's floor.
        lines += [f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={3 * part_target:.3f},"
                  f"CAN-SKIP-UNTIL={6 * target:.1f}",
                  f"#EXT-X-PART-INF:PART-TARGET={part_target:.5f}"]
    first_seq = segs[0][SEQ] if segs else (opened or [0])[SEQ]
    lines += [f"#EXT-X-MEDIA-SEQUENCE:{first_seq}", f"#EXT-X-DISCONTINUITY-SEQUENCE:{disc_seq}",
              "#EXT-X-INDEPENDENT-SEGMENTS"]
    if vod:
        lines.insert(2, "#EXT-X-PLAYLIST-TYPE:VOD")
    url, run = state["media_url"], None
    parts: dict[int, list[list]] = {}
    for part in (track.get("parts") or []) if part_target else []:
        parts.setdefault(part[0], []).append(part)
    for s in [*segs, *([opened] if opened else [])]:
        if s[RUN] != run:
            if run is not None:
                lines.append("#EXT-X-DISCONTINUITY")
            run = s[RUN]
            lines.append(f'#EXT-X-MAP:URI="{url}{track["inits"][str(run)]}"')
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_iso(s[WALL if s is not opened else 3])}")
        lines += [f'#EXT-X-PART:DURATION={p[2] / ts:.5f},URI="{url}{part_key(tid, p[0], p[1])}"'
                  + (",INDEPENDENT=YES" if p[3] else "") for p in parts.get(s[SEQ], [])]
        if s is not opened:
            lines += [f"#EXTINF:{s[D] / ts:.6f},", url + segment_key(tid, s[SEQ])]
    if vod or ended:
        lines.append("#EXT-X-ENDLIST")
    elif part_target:
        lines += _low_latency_tail(state, tid, opened, parts)
    return "\n".join(lines) + "\n"


def last_part(track: dict[str, Any]) -> tuple[int, int]:
    """(LAST-MSN, LAST-PART) of a track: its newest part, or its last segment with part -1 before any part."""
    if track.get("parts"):
        return track["parts"][-1][0], track["parts"][-1][1]
    return (track["segments"][-1][SEQ] if track["segments"] else 0), -1


def _low_latency_tail(state: dict[str, Any], tid: str, opened: list | None, parts: dict[int, list[list]]) -> list[str]:
    track, url = state["tracks"][tid], state["media_url"]
    if opened:   # the next part of the segment being filled
        nxt = (opened[SEQ], len(parts.get(opened[SEQ], [])))
    else:        # the first part of the next segment
        nxt = ((track["segments"][-1][SEQ] if track["segments"] else 0) + 1, 0)
    lines = [f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{url}{part_key(tid, *nxt)}"']
    for other, t in state["tracks"].items():
        if other != tid and (t.get("parts") or t["segments"]):
            msn, part = last_part(t)
            lines.append(f'#EXT-X-RENDITION-REPORT:URI="{other}.m3u8",LAST-MSN={msn}'
                         + (f",LAST-PART={part}" if part >= 0 else ""))
    return lines


def master_playlist(state: dict[str, Any]) -> str:
    tracks = state["tracks"]
    audio = tracks.get("a")
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if audio:
        lines.append('#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="Main",LANGUAGE="und",DEFAULT=YES,'
                     'AUTOSELECT=YES,CHANNELS="2",URI="a.m3u8"')
    for tid, t in tracks.items():
        if t["kind"] != "video":
            continue
        codecs = t["codecs"] + (f",{audio['codecs']}" if audio else "")
        bandwidth = int(t["bandwidth"] * 1.5) + (audio["bandwidth"] if audio else 0)
        lines += [f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},CODECS="{codecs}",RESOLUTION={t["width"]}x{t["height"]},'
                  f'FRAME-RATE={t["frame_rate"]:.3f}' + (',AUDIO="aac"' if audio else ""), f"{tid}.m3u8"]
    return "\n".join(lines) + "\n"


def _sub(parent: etree._Element, tag: str, **attrs: Any) -> etree._Element:
    return etree.SubElement(parent, f"{{{MPD_NS}}}{tag}", {k: str(v) for k, v in attrs.items()})


def _timeline(template: etree._Element, segs: list[list]) -> None:
    timeline = _sub(template, "SegmentTimeline")
    last: etree._Element | None = None
    expected = None
    for s in segs:
        if last is not None and s[T] == expected and int(last.get("d")) == s[D]:
            last.set("r", str(int(last.get("r", "0")) + 1))
        else:
            last = _sub(timeline, "S", t=s[T], d=s[D])
        expected = s[T] + s[D]


def _low_latency(aset: etree._Element, template: etree._Element, state: dict[str, Any], first: list,
                 segs: list[list], timescale: int, edge: bool) -> list[list]:
    """LL-DASH (DASH-IF low-latency, DVB A168): the producer's clock for the first segment of the run, segments
    requestable `segment - part` seconds before they are complete (the live origin sends their chunks as they are
    encoded), and on the live edge the segment being encoded announced at its nominal length."""
    prt = etree.Element(f"{{{MPD_NS}}}ProducerReferenceTime", {"id": "0", "type": "encoder",
                                                              "wallClockTime": _iso(first[WALL]),
                                                              "presentationTime": str(first[T])})
    if state.get("utc_timing"):
        _sub(prt, "UTCTiming", schemeIdUri=UTC_SCHEME, value=state["utc_timing"])
    aset.insert(0, prt)   # RepresentationBase elements come before SegmentTemplate
    template.set("availabilityTimeOffset", f"{state['segment_seconds'] - state['part_target']:.3f}")
    template.set("availabilityTimeComplete", "false")
    if not edge or not segs:
        return segs
    last = segs[-1]
    return [*segs, [last[SEQ] + 1, last[RUN], last[T] + last[D], round(state["segment_seconds"] * timescale), 0.0]]


def _adaptation(period: etree._Element, state: dict[str, Any], tids: list[str], run: int, segs: list[list],
                first: list, first_t: int, set_id: int, low: bool = False, edge: bool = False) -> None:
    tracks = state["tracks"]
    ref = tracks[tids[0]]
    video = ref["kind"] == "video"
    aset = _sub(period, "AdaptationSet", id=set_id, contentType="video" if video else "audio",
                mimeType="video/mp4" if video else "audio/mp4", segmentAlignment="true", startWithSAP="1")
    if not video:
        aset.set("lang", "und")
    url = state["media_url"]
    template = _sub(aset, "SegmentTemplate", timescale=ref["timescale"], startNumber=segs[0][SEQ],
                    presentationTimeOffset=first_t,
                    initialization=f"{url}cmaf/$RepresentationID$/init-{run}.mp4",
                    media=f"{url}cmaf/$RepresentationID$/$Number%06d$.m4s")
    if low:
        segs = _low_latency(aset, template, state, first, segs, ref["timescale"], edge)
    _timeline(template, segs)
    for tid in tids:
        t = tracks[tid]
        if video:
            _sub(aset, "Representation", id=tid, bandwidth=t["bandwidth"], width=t["width"], height=t["height"],
                 codecs=t["codecs"], frameRate=f"{round(t['frame_rate'] * 1000)}/1000", sar="1:1")
        else:
            rep = _sub(aset, "Representation", id=tid, bandwidth=t["bandwidth"], codecs=t["codecs"],
                       audioSamplingRate=48000)
            _sub(rep, "AudioChannelConfiguration",
                 schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011", value=2)


def _common_video(state: dict[str, Any], vod: bool) -> list[list]:
    """Video segments every rung has (rungs finish a GOP at nearly the same moment; list only complete ones)."""
    videos = [t for t in state["tracks"].values() if t["kind"] == "video"]
    last = min((t["segments"][-1][SEQ] for t in videos if t["segments"]), default=-1)
    if any(not t["segments"] for t in videos):
        return []
    return [s for s in window(state, videos[0], vod) if s[SEQ] <= last]


def latency_target(state: dict[str, Any]) -> float:
    """What a low-latency player aims for (s): about a second of encoder and publisher, plus the part hold-back."""
    return round(1.0 + 3 * state["part_target"], 1)


def _service_description(root: etree._Element, state: dict[str, Any]) -> None:
    root.set("profiles", f"{PROFILES},{LL_PROFILE}")
    target = latency_target(state)
    root.set("suggestedPresentationDelay", _dur(target))
    service = _sub(root, "ServiceDescription", id=0)
    _sub(service, "Latency", referenceId=0, target=round(target * 1000), min=round(target * 500),
         max=round(target * 2000))
    _sub(service, "PlaybackRate", min="0.9", max="1.1")   # catch up (or fall back) by at most 10 %


def mpd(state: dict[str, Any], *, now: float, vod: bool = False, ended: bool = False, low: bool = False) -> bytes:
    """Dynamic MPD while live (static for a recording); one Period per encoder run in the window."""
    seg = state["segment_seconds"]
    root = etree.Element(f"{{{MPD_NS}}}MPD", nsmap={None: MPD_NS})
    root.set("profiles", PROFILES)
    root.set("minBufferTime", _dur(2 * seg))
    root.set("maxSegmentDuration", _dur(seg * 1.5))
    groups: list[tuple[list[str], list[list]]] = []
    vids = [tid for tid, t in state["tracks"].items() if t["kind"] == "video"]
    if vids:
        groups.append((vids, _common_video(state, vod)))
    if "a" in state["tracks"]:
        groups.append((["a"], window(state, state["tracks"]["a"], vod)))
    runs = sorted({s[RUN] for _, segs in groups for s in segs})
    low = low and not vod and not ended and bool(state.get("part_target"))
    if vod:
        root.set("type", "static")
        total = sum(s[D] / state["tracks"][vids[0]]["timescale"] for s in groups[0][1]) if groups else 0.0
        root.set("mediaPresentationDuration", _dur(total))
    else:
        root.set("type", "dynamic")
        root.set("availabilityStartTime", _iso(state["ast"]))
        root.set("publishTime", _iso(now))
        root.set("timeShiftBufferDepth", _dur(state["dvr_seconds"]))
        root.set("suggestedPresentationDelay", _dur(3 * seg))
        if low:
            _service_description(root, state)
        if ended:
            last_wall = max((s[WALL] + s[D] / state["tracks"][ids[0]]["timescale"]
                             for ids, segs in groups for s in segs[-1:]), default=state["ast"])
            root.set("mediaPresentationDuration", _dur(last_wall - state["ast"]))
        else:
            root.set("minimumUpdatePeriod", _dur(seg))
    offset = 0.0
    for run in runs:
        period = _sub(root, "Period", id=f"p{run}")
        starts = []
        for set_id, (tids, segs) in enumerate(groups):
            mine = [s for s in segs if s[RUN] == run]
            if not mine:
                continue
            track = state["tracks"][tids[0]]
            first = next(s for s in track["segments"] if s[RUN] == run)
            starts.append(first[WALL])
            if vod:
                # A recording is contiguous: each run's first listed segment starts where the last run ended.
                _adaptation(period, state, tids, run, mine, first, mine[0][T], set_id)
            else:
                _adaptation(period, state, tids, run, mine, first, first[T], set_id, low, edge=run == runs[-1])
        if vod:
            period.set("start", _dur(offset))
            offset += sum(s[D] for s in groups[0][1] if s[RUN] == run) / state["tracks"][groups[0][0][0]]["timescale"]
        else:
            period.set("start", _dur(min(starts) - state["ast"]))
    if not vod and state.get("utc_timing"):
        _sub(root, "UTCTiming", schemeIdUri=UTC_SCHEME, value=state["utc_timing"])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
