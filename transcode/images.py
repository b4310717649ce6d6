"""Poster, thumbnails and the storyboard sprite with its WebVTT thumbnail track."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageStat

THUMB_WIDTHS = (320, 640)


@dataclass(frozen=True)
class StoryboardSpec:
    interval: float   # seconds between tiles
    tile_width: int
    tile_height: int
    columns: int
    rows: int
    count: int


def storyboard_spec(duration: float, display_width: int, display_height: int, *, max_tiles: int = 100,
                    tile_long_side: int = 160, columns: int = 10) -> StoryboardSpec:
    interval = max(1.0, math.ceil(duration / max_tiles))
    count = max(1, math.ceil(duration / interval))
    if display_width >= display_height:
        tw, th = tile_long_side, max(2, round(tile_long_side * display_height / display_width / 2) * 2)
    else:
        tw, th = max(2, round(tile_long_side * display_width / display_height / 2) * 2), tile_long_side
    cols = min(columns, count)
    return StoryboardSpec(float(interval), tw, th, cols, math.ceil(count / cols), count)


def _ts(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def storyboard_vtt(spec: StoryboardSpec, duration: float, image_name: str) -> str:
    """WebVTT thumbnail track: each cue points at one tile via a media fragment (#xywh=)."""
    lines = ["WEBVTT", ""]
    for i in range(spec.count):
        start, end = i * spec.interval, min((i + 1) * spec.interval, duration)
        if end <= start:
            break
        x, y = (i % spec.columns) * spec.tile_width, (i // spec.columns) * spec.tile_height
        lines += [f"{_ts(start)} --> {_ts(end)}", f"{image_name}#xywh={x},{y},{spec.tile_width},{spec.tile_height}",
                  ""]
    return "\n".join(lines)


def tile_sprite(tile_dir: Path, spec: StoryboardSpec, out: Path) -> Path | None:
    """Join the storyboard tiles of `tile_dir` (numbered in time order) row by row into one JPEG sprite, black
    where the grid has no tile. ffmpeg writes them one by one rather than through its `tile` filter: `tile`
    emits only at the end of the input, and ffmpeg prints no -progress until every output has started."""
    tiles = sorted(p for p in tile_dir.glob("*.png") if p.stat().st_size > 0)
    if not tiles:
        return None
    sprite = Image.new("RGB", (spec.columns * spec.tile_width, spec.rows * spec.tile_height))
    for i, path in enumerate(tiles[:spec.columns * spec.rows]):
        with Image.open(path) as tile:
            x, y = (i % spec.columns) * spec.tile_width, (i // spec.columns) * spec.tile_height
            sprite.paste(tile.convert("RGB").resize((spec.tile_width, spec.tile_height)), (x, y))
    sprite.save(out, "JPEG", quality=80)
    return out


def fit_within(display_width: int, display_height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """Even size with the *display* aspect (SAR applied: a 720x576 16:9 frame is 1024x576 to the eye), never
    larger than the box or the display size. Scaling a frame to exactly this size un-squeezes anamorphic SD."""
    scale = min(1.0, max_width / display_width, max_height / display_height)
    return max(2, round(display_width * scale / 2) * 2), max(2, round(display_height * scale / 2) * 2)


def image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.width, img.height


def poster_times(duration: float) -> list[float]:
    """Candidates away from the (often black) first frames and fades."""
    return sorted({round(min(max(duration * f, 0.0), max(duration - 0.1, 0.0)), 3) for f in (0.1, 0.3, 0.5)})


def liveliness(path: Path) -> float:
    """Higher for frames with detail: the spread of luma (a black or flat frame scores ~0)."""
    with Image.open(path) as img:
        return float(ImageStat.Stat(img.convert("L")).stddev[0])


def pick_poster(candidates: list[Path]) -> Path:
    return max(candidates, key=liveliness)


def make_thumbnails(poster: Path, out_dir: Path) -> list[tuple[int, int, Path]]:
    """Fixed widths, never upscaled; JPEG."""
    made = []
    with Image.open(poster) as img:
        for width in THUMB_WIDTHS:
            if width > img.width and made:
                continue
            w = min(width, img.width)
            h = max(2, round(img.height * w / img.width / 2) * 2)
            path = out_dir / f"thumb-{width}.jpg"
            img.convert("RGB").resize((w, h), Image.Resampling.LANCZOS).save(path, "JPEG", quality=85)
            made.append((w, h, path))
    return made
