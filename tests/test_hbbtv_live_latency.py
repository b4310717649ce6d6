"""Issue 14 for HbbTV: a low-latency channel also has a standard-latency MPD (same segments, no early announcement)
for DASH players before HbbTV 2.0.3, valid against the MPEG schema; the origin serves it for every channel; the
app document names the MPD its terminal can play."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from lxml import etree

from hbbtv_apps import useragent
from onair.core.storage import STORE
from streaming.live import origin
from streaming.live.channels import live_prefix
from tests.conftest import ADMIN
from tests.live_helpers import create
from tests.test_live import SCHEMA, live  # noqa: F401 (fixture)
from tests.test_live_ll_playlists import timeline
from transcode import live_manifests

M = {"m": "urn:mpeg:dash:schema:mpd:2011"}
TV_2_0_2 = "Mozilla/5.0 (Linux armv7l) AppleWebKit/537.36 Chrome/79.0 Safari/537.36 HbbTV/1.5.1 (; LGE; 2022; ; ; ;)"
TV_2_0_3 = "Mozilla/5.0 (Linux armv7l) AppleWebKit/537.36 Chrome/94.0 Safari/537.36 HbbTV/1.6.1 (; Sony; BRAVIA; ; ;)"


def _state() -> dict:
    state = {**timeline(6, 2), "ast": 1767000000.0, "utc_timing": "/api/v1/time"}
    state["tracks"]["v0"] |= {"name": "270p", "width": 480, "height": 270, "codecs": "avc1.64001e",
                              "bandwidth": 600000, "frame_rate": 25.0}
    state["tracks"]["a"] = {**state["tracks"]["a"], "codecs": "mp4a.40.2", "bandwidth": 96000,
                            "inits": {"1": "cmaf/a/init-1.mp4"}}
    return state


def test_the_standard_mpd_of_a_low_latency_channel_is_valid_and_lists_the_same_segments() -> None:
    state = _state()
    low = etree.fromstring(live_manifests.mpd(state, now=1767000013.0, low=True))
    standard = etree.fromstring(live_manifests.mpd(state, now=1767000013.0))
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    schema.assertValid(low)
    schema.assertValid(standard)
    assert low.xpath("//m:SegmentTemplate/@availabilityTimeOffset", namespaces=M)
    assert not standard.xpath("//m:SegmentTemplate/@availabilityTimeOffset | //m:ServiceDescription"
                              " | //m:ProducerReferenceTime", namespaces=M)
    assert live_manifests.LL_PROFILE not in standard.get("profiles")
    starts = "//m:SegmentTemplate/@media | //m:SegmentTemplate/@startNumber"
    assert standard.xpath(starts, namespaces=M) == low.xpath(starts, namespaces=M)
    # the LL MPD announces the segment being encoded on the edge; the standard one only complete segments
    count = "count(//m:AdaptationSet[@contentType='video']//m:S) + sum(//m:AdaptationSet[@contentType='video']//m:S/@r)"
    assert standard.xpath(count, namespaces=M) + 1 == low.xpath(count, namespaces=M)


def test_key_names_agree() -> None:
    assert origin.STANDARD_MPD == live_manifests.STANDARD_MPD_KEY == useragent.STANDARD_MPD
    assert origin.LL_MPD == live_manifests.MPD_KEY == useragent.LL_DASH_MPD


async def test_origin_serves_a_standard_mpd_for_low_and_standard_channels(live: TestClient) -> None:  # noqa: F811
    store = live.app[STORE]
    body = await create(live, latency="low")
    low = body["id"]
    assert body["playback"]["dash_standard"].endswith(f"/live/{low}/dash/standard.mpd")
    await store.put_bytes(live_prefix(low) + "dash/manifest.mpd", b"<ll/>")
    await store.put_bytes(live_prefix(low) + "dash/standard.mpd", b"<standard/>")
    resp = await live.get(f"/live/{low}/dash/standard.mpd")
    assert resp.status == 200 and await resp.read() == b"<standard/>"
    assert resp.headers["Content-Type"].startswith("application/dash+xml")
    assert await (await live.get(f"/live/{low}/dash/manifest.mpd")).read() == b"<ll/>"
    plain = (await create(live, latency="standard"))["id"]
    await store.put_bytes(live_prefix(plain) + "dash/manifest.mpd", b"<only/>")
    resp = await live.get(f"/live/{plain}/dash/standard.mpd")
    assert resp.status == 200 and await resp.read() == b"<only/>"


async def test_the_document_names_the_live_mpd_for_the_terminal(client: TestClient) -> None:
    assert (await client.post("/api/v1/hbbtv/apps", headers=ADMIN, json={
        "slug": "cam", "name": "Cam", "org_id": 4660, "app_id": 9})).status == 201
    for ua, mpd in ((TV_2_0_2, "dash/standard.mpd"), (TV_2_0_3, "dash/manifest.mpd")):
        text = await (await client.get("/hbbtv/cam/", headers={"User-Agent": ua})).text()
        assert f'<meta name="onair:livempd" content="{mpd}" />' in text, ua
