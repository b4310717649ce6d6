"""DASH thumbnails: the published MPD lists the storyboard sprite as a DASH-IF image adaptation set whose tile grid,
tile size and per-tile time match the sprite and the WebVTT storyboard; the MPD still validates."""

from __future__ import annotations

import io
import posixpath

import pytest
from lxml import etree
from PIL import Image

from tests.ingest_tools import make_clip, upload, wait_for
from tests.media_checks import MPD_NS
from tests.test_media_conformance import SCHEMA
from transcode import dash_thumbnails


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    return make_clip(tmp_path_factory.mktemp("thumbs") / "c.mp4", size="320x180", seconds=12).read_bytes()


async def test_mpd_lists_the_storyboard_as_a_dash_if_thumbnail_set(client, settings, clip):
    asset_id = await upload(client, clip, title="Thumbnails")
    body = await wait_for(client, asset_id, within=180)
    assert body["status"] == "ready", body["error"]
    site = settings.data_dir / "objects" / "assets" / asset_id
    raw = (site / "dash" / "manifest.mpd").read_bytes()
    mpd = etree.fromstring(raw)
    schema = etree.XMLSchema(etree.parse(str(SCHEMA)))
    assert schema.validate(mpd), schema.error_log

    (aset,) = mpd.iterfind(".//m:AdaptationSet[@contentType='image']", MPD_NS)
    assert aset.get("mimeType") == "image/jpeg"
    rep = aset.find("m:Representation", MPD_NS)
    prop = rep.find("m:EssentialProperty", MPD_NS)
    assert prop.get("schemeIdUri") == "http://dashif.org/thumbnail_tile"
    cols, rows = map(int, prop.get("value").split("x"))
    template = aset.find("m:SegmentTemplate", MPD_NS)
    sprite_path = posixpath.normpath(posixpath.join("dash", template.get("media")))
    assert sprite_path == "images/storyboard.jpg"
    sprite = Image.open(io.BytesIO((site / sprite_path).read_bytes()))
    storyboard = body["images"]["storyboard"]

    assert (int(rep.get("width")), int(rep.get("height"))) == sprite.size
    assert sprite.size == (cols * storyboard["tile_width"], rows * storyboard["tile_height"])
    per_tile = int(template.get("duration")) / int(template.get("timescale")) / (cols * rows)
    assert per_tile == pytest.approx(storyboard["interval"])
    assert cols * rows * per_tile >= body["duration"]   # one segment covers the whole presentation
    assert int(rep.get("bandwidth")) > 0
    # the WebVTT storyboard's first cue of the second row points where the grid says
    vtt = (site / "images" / "storyboard.vtt").read_text()
    assert f"storyboard.jpg#xywh=0,{storyboard['tile_height']}," in vtt if rows > 1 else True


def test_grid_time_covers_unused_tiles():
    spec = dash_thumbnails.StoryboardSpec(interval=2.0, tile_width=160, tile_height=90, columns=10, rows=2, count=13)
    assert dash_thumbnails.grid_seconds(spec) == 40.0
