"""Low-latency live: ffmpeg publishes over RTMP to a `latency: low` channel; the encoder writes ~0.4 s parts and the
same 2 s segments as standard latency; the LL-HLS playlist carries parts, preload hint and rendition reports; a
blocking reload for the hinted part is held until the part exists (in one process, and across two `onair serve`
processes sharing Redis), a request far past the live edge is refused; the LL-DASH MPD validates."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from lxml import etree

from onair.app import create_app
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.helpers import OnairServer
from tests.nginx_cdn import nginx_binary, running_nginx
from tests.test_live import SCHEMA, create, publish, wait_status
from tests.tools import free_port, missing

LL = {"live_segment_seconds": 2.0, "live_part_seconds": 0.5, "live_max_height": 270, "live_preset": "ultrafast"}
HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+/(\d+)\.(\d+)\.m4s)"')


@pytest.fixture
async def live(settings) -> AsyncIterator[TestClient]:
    s = settings.with_(live_rtmp_port=free_port(), live_srt_port=free_port(), live_reconnect_seconds=2.0, **LL)
    async with TestClient(TestServer(create_app(s, s.database_url or ""))) as c:
        yield c


def hint(playlist: str) -> tuple[str, int, int]:
    found = HINT.search(playlist)
    assert found, playlist
    return found.group(1), int(found.group(2)), int(found.group(3))


def part_uris(playlist: str) -> list[str]:
    return re.findall(r'#EXT-X-PART:[^\n]*URI="([^"]+)"', playlist)


def check_low_latency_tags(text: str) -> None:
    part_target = float(re.search(r"#EXT-X-PART-INF:PART-TARGET=([\d.]+)", text).group(1))
    assert 0.3 <= part_target <= 1.0, text
    hold_back = float(re.search(r"CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=([\d.]+)", text).group(1))
    assert hold_back >= 3 * part_target - 0.001
    durations = [float(d) for d in re.findall(r"#EXT-X-PART:DURATION=([\d.]+)", text)]
    assert durations and max(durations) <= part_target
    assert ",INDEPENDENT=YES" in text and "#EXT-X-PROGRAM-DATE-TIME:" in text
    assert re.search(r'#EXT-X-RENDITION-REPORT:URI="a\.m3u8",LAST-MSN=\d+,LAST-PART=\d+', text), text


async def test_low_latency_channel_blocks_reloads_until_the_part_exists(live: TestClient):
    body = await create(live, dvr_seconds=60)
    assert body["latency"] == "low"   # the deployment default out of the box
    cid = body["id"]
    pub = publish(body["ingest"]["rtmp"], 9)
    try:
        await wait_status(live, cid, "live")
        resp = await live.get(f"/live/{cid}/hls/v0.m3u8")
        assert resp.headers["Cache-Control"] == "public, max-age=1"
        text = await resp.text()
        check_low_latency_tags(text)
        uri, msn, part = hint(text)
        assert uri not in part_uris(text)
        started = time.monotonic()
        held = await live.get(f"/live/{cid}/hls/v0.m3u8", params={"_HLS_msn": msn, "_HLS_part": part})
        waited = time.monotonic() - started
        assert held.status == 200 and held.headers["Cache-Control"] == "public, max-age=6"
        answer = await held.text()
        assert uri in part_uris(answer), answer
        assert hint(answer)[0] != uri   # the hint moved on to the part after it
        assert waited < 3, waited
        part_resp = await live.get(f"/live/{cid}/{uri.removeprefix('../')}")
        assert part_resp.status == 200 and "immutable" in part_resp.headers["Cache-Control"]

        last = max(int(m) for m in re.findall(r"cmaf/v0/(\d+)\.m4s", answer))
        far = await live.get(f"/live/{cid}/hls/v0.m3u8", params={"_HLS_msn": last + 3, "_HLS_part": 0})
        assert far.status == 400 and (await far.json())["field"] == "_HLS_msn"
        bad = await live.get(f"/live/{cid}/hls/v0.m3u8", params={"_HLS_msn": "x"})
        assert bad.status == 400
        whole = await live.get(f"/live/{cid}/hls/v0.m3u8", params={"_HLS_msn": last + 1})
        assert f"cmaf/v0/{last + 1:06d}.m4s" in await whole.text()   # no _HLS_part: the whole segment

        # The segment object is its parts, back to back (standard HLS and DASH read the same bytes).
        seg = await (await live.get(f"/live/{cid}/e1/cmaf/v0/{last:06d}.m4s")).read()
        parts = [await (await live.get(f"/live/{cid}/e1/cmaf/v0/{last:06d}.{i}.m4s")).read()
                 for i in range(len(re.findall(rf"cmaf/v0/{last:06d}\.\d+\.m4s", answer)))]
        assert parts and seg == b"".join(parts)

        # LL-DASH: the segment being encoded is served early, chunk by chunk, and ends up the complete segment.
        _, edge_msn, _ = hint(await (await live.get(f"/live/{cid}/hls/v0.m3u8")).text())
        early = await live.get(f"/live/{cid}/e1/cmaf/v0/{edge_msn:06d}.m4s")
        assert early.status == 200 and early.headers.get("Transfer-Encoding") == "chunked"
        streamed = await early.read()
        assert streamed == await (await live.get(f"/live/{cid}/e1/cmaf/v0/{edge_msn:06d}.m4s")).read()

        mpd = etree.fromstring(await (await live.get(f"/live/{cid}/dash/manifest.mpd")).read())
        etree.XMLSchema(etree.parse(str(SCHEMA))).assertValid(mpd)
        ns = {"m": "urn:mpeg:dash:schema:mpd:2011"}
        assert "low-latency-live" in mpd.get("profiles")
        assert int(mpd.find("m:ServiceDescription/m:Latency", ns).get("target")) <= 2500
        assert mpd.find("m:UTCTiming", ns) is not None
        for aset in mpd.iterfind(".//m:AdaptationSet", ns):
            assert aset.find("m:ProducerReferenceTime", ns).get("wallClockTime")
            assert float(aset.find("m:SegmentTemplate", ns).get("availabilityTimeOffset")) > 1.0
        # the same channel for DASH players without low latency (HbbTV before 2.0.3): complete segments only
        standard = etree.fromstring(await (await live.get(f"/live/{cid}/dash/standard.mpd")).read())
        etree.XMLSchema(etree.parse(str(SCHEMA))).assertValid(standard)
        assert standard.find(".//m:SegmentTemplate[@availabilityTimeOffset]", ns) is None
        assert standard.find("m:ServiceDescription", ns) is None and standard.get("type") == "dynamic"
    finally:
        await asyncio.to_thread(pub.wait, 30)


def serve(data_dir: Path, name: str, database_url: str, redis_url: str, worker: bool) -> OnairServer:
    env = {"ONAIR_DATABASE_URL": database_url, "ONAIR_REDIS_URL": redis_url, "ONAIR_ADMIN_TOKEN": ADMIN_TOKEN,
           "ONAIR_SIGNING_KEY": "ll-test-key", "ONAIR_LOG_LEVEL": "WARNING",
           "ONAIR_LIVE_RTMP_PORT": str(free_port()), "ONAIR_LIVE_SRT_PORT": str(free_port()),
           **{f"ONAIR_{k.upper()}": str(v) for k, v in LL.items()}}
    args = ("--workers", "1", "--no-sample", *(() if worker else ("--no-worker",)))
    server = OnairServer(data_dir, env, args=args)
    server.log = data_dir.parent / f"{name}.log"
    return server


async def _held(s: aiohttp.ClientSession, url: str, msn: int, part: int) -> tuple[int, str, float]:
    async with s.get(url, params={"_HLS_msn": msn, "_HLS_part": part}) as resp:
        return resp.status, await resp.text(), time.time()


async def test_a_part_published_through_one_process_wakes_a_request_held_by_the_other(
        tmp_path: Path, database_url: str, redis_url: str) -> None:
    data = tmp_path / "shared"     # one local object store for both processes
    a = serve(data, "a", database_url, redis_url, worker=True)     # ingest and the encoder job
    b = serve(data, "b", database_url, redis_url, worker=False)    # origin only: learns of parts via Redis
    a.start()
    b.start()
    pub = None
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:
            await asyncio.gather(a.ready(), b.ready())
            async with s.post(f"{a.url}/api/v1/live/channels", headers=ADMIN,
                              json={"title": "Presser", "latency": "low", "dvr_seconds": 60}) as resp:
                assert resp.status == 201, await resp.text()
                body = await resp.json()
            pub = publish(body["ingest"]["rtmp"], 12)
            playlist = f"/live/{body['id']}/hls/v0.m3u8"
            async with asyncio.timeout(40):
                while True:
                    async with s.get(b.url + playlist) as resp:
                        if resp.status == 200 and HINT.search(text := await resp.text()):
                            break
                    await asyncio.sleep(0.2)
            uri, msn, part = hint(text)
            results = await asyncio.gather(*(_held(s, srv.url + playlist, msn, part) for srv in (a, b)))
            part_file = data / "objects" / "live" / body["id"] / "e1" / "cmaf" / "v0" / Path(uri).name
            for status, answer, _ in results:
                assert status == 200 and uri in part_uris(answer), answer
            if part_file.exists():   # local store layout known: how long after the part's write each answered
                wrote = part_file.stat().st_mtime
                delays = [round((at - wrote) * 1000) for _, _, at in results]
                print(f"held reload answered {delays} ms after the part was written (a: encoder, b: via Redis)")
                assert max(delays) < 1000, delays
    finally:
        if pub is not None:
            pub.kill()
            await asyncio.to_thread(pub.wait, 10)
        a.stop()
        b.stop()


@pytest.fixture
async def logged_live(settings) -> AsyncIterator[tuple[TestClient, list[tuple[str, int]]]]:
    s = settings.with_(live_rtmp_port=free_port(), live_srt_port=free_port(), live_reconnect_seconds=2.0, **LL)
    app = create_app(s, s.database_url or "")
    seen: list[tuple[str, int]] = []

    async def log(request, response) -> None:   # the origin's access log
        seen.append((request.path_qs, response.status))

    app.on_response_prepare.append(log)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c, seen


async def test_through_nginx_a_crowd_shares_each_blocking_reload_and_part(logged_live, tmp_path: Path):
    binary = nginx_binary()
    if binary is None:
        missing("nginx", "apt-get install nginx-light  (or nginx)")
    live, seen = logged_live
    body = await create(live, dvr_seconds=60)
    cid = body["id"]
    pub = publish(body["ingest"]["rtmp"], 9)
    origin = str(live.make_url("")).rstrip("/").removeprefix("http://")
    try:
        await wait_status(live, cid, "live")
        with running_nginx(binary, tmp_path / "nginx", origin) as cdn:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as s:
                async with s.get(f"{cdn}/live/{cid}/hls/v0.m3u8") as resp:
                    uri, msn, part = hint(await resp.text())
                crowd = 50
                results = await asyncio.gather(*(_held(s, f"{cdn}/live/{cid}/hls/v0.m3u8", msn, part)
                                                 for _ in range(crowd)))
                assert all(st == 200 and uri in part_uris(text) for st, text, _ in results)
                async with s.get(f"{cdn}/live/{cid}/hls/v0.m3u8", params={"_HLS_msn": msn, "_HLS_part": part,
                                                                         "x": "bust"}) as again:
                    assert again.headers["X-Cache-Status"] == "HIT"
                part_url = f"{cdn}/live/{cid}/{uri.removeprefix('../')}"
                statuses = []
                for _ in range(2):
                    async with s.get(part_url) as resp:
                        statuses.append((resp.status, resp.headers["X-Cache-Status"]))
                assert statuses == [(200, "MISS"), (200, "HIT")], statuses
        key = f"_HLS_msn={msn}&_HLS_part={part}"
        at_origin = [p for p, _ in seen if key in p]
        spread = max(t for *_, t in results) - min(t for *_, t in results)
        print(f"nginx: {crowd} concurrent blocking reloads -> {len(at_origin)} at the origin (no cache lock on "
              f"playlists), answered within {spread * 1000:.0f} ms of each other; part fetched once")
        assert 1 <= len(at_origin) <= crowd and [p for p, _ in seen].count(f"/live/{cid}/{uri[3:]}") == 1
    finally:
        await asyncio.to_thread(pub.wait, 30)


async def test_delta_updates_answer_plain_and_blocking_reloads(live: TestClient):
    """`_HLS_skip=YES` on a playlist the publisher wrote (no encoder needed): the older segments become EXT-X-SKIP,
    alone or with a blocking reload; a value other than YES/v2 is a 400 naming the field."""
    from onair.core.storage import STORE
    from streaming.live.channels import live_prefix
    from tests.test_live_ll_playlists import timeline
    from transcode import live_manifests

    cid = (await create(live, dvr_seconds=60))["id"]
    full = live_manifests.media_playlist(timeline(20, 2), "v0", low=True)
    await live.app[STORE].put_bytes(live_prefix(cid) + "hls/v0.m3u8", full.encode())
    url = f"/live/{cid}/hls/v0.m3u8"
    assert await (await live.get(url)).text() == full
    plain = await live.get(url, params={"_HLS_skip": "YES"})
    assert plain.status == 200 and plain.headers["Cache-Control"] == "public, max-age=1"
    assert "#EXT-X-SKIP:SKIPPED-SEGMENTS=14" in await plain.text()
    held = await live.get(url, params={"_HLS_msn": 21, "_HLS_part": 1, "_HLS_skip": "YES"})
    text = await held.text()
    assert held.status == 200 and "#EXT-X-SKIP:SKIPPED-SEGMENTS=14" in text and "000021.1.m4s" in text
    bad = await live.get(url, params={"_HLS_skip": "NO"})
    assert bad.status == 400 and (await bad.json())["field"] == "_HLS_skip"
