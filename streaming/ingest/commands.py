"""`onair ingest PATH|URL [--title T]`: a client of a running server (upload bytes, then transcode percent)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
from pathlib import Path

import aiohttp
from tqdm import tqdm

from onair.core.auth import admin_token
from onair.core.settings import Settings

CHUNK = 4 * 1024 * 1024
DONE = ("ready", "failed")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="upload a file (or pull a URL) into a running onair and wait until it is ready")
    p.add_argument("source", metavar="PATH|URL", help="a local video file, or an http(s) URL for the server to pull")
    p.add_argument("--title", default=None, help="title (default: the file name)")
    p.add_argument("--server", default=None, help="server base URL (default ONAIR_PUBLIC_URL or http://HOST:PORT)")
    p.add_argument("--no-wait", action="store_true", help="return once queued")
    p.set_defaults(func=cmd_ingest)


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


async def _upload(session: aiohttp.ClientSession, base: str, path: Path, size: int, title: str) -> str:
    """Resumable (tus) upload in chunks, so the bar moves and a dropped connection could carry on."""
    tus = {"Tus-Resumable": "1.0.0"}
    meta = f"title {_b64(title)},filename {_b64(path.name)}"
    async with session.post(f"{base}/api/v1/uploads/", headers={**tus, "Upload-Length": str(size),
                                                                "Upload-Metadata": meta}) as resp:
        await _check(resp)
        location, asset_id = resp.headers["Location"], resp.headers["Onair-Asset-Id"]
    url = location if location.startswith("http") else base + location
    offset = 0
    with path.open("rb") as f, tqdm(total=size, unit="B", unit_scale=True, desc="upload") as bar:
        while offset < size:
            chunk = f.read(CHUNK)
            async with session.patch(url, data=chunk, headers={
                    **tus, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}) as resp:
                await _check(resp)
                new = int(resp.headers["Upload-Offset"])
            bar.update(new - offset)
            offset = new
            f.seek(offset)
    return asset_id


async def _check(resp: aiohttp.ClientResponse) -> None:
    if resp.status >= 400:
        try:
            detail = (await resp.json(content_type=None)).get("detail")
        except Exception:
            detail = await resp.text()
        raise SystemExit(f"onair: error: HTTP {resp.status}: {detail}")


async def ingest(settings: Settings, source: str, title: str | None, server: str | None, wait: bool) -> int:
    base = (server or settings.base_url).rstrip("/")
    headers = {"Authorization": f"Bearer {admin_token(settings)[0]}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        if source.startswith(("http://", "https://")):
            async with session.post(f"{base}/api/v1/assets",
                                    json={"source_url": source, "title": title or source}) as resp:
                await _check(resp)
                asset_id = (await resp.json())["id"]
        else:
            path = Path(source)
            asset_id = await _upload(session, base, path, _file_size(path), title or path.stem)
        print(f"asset {asset_id} queued", flush=True)
        if not wait:
            return 0
        body: dict = {}
        with tqdm(total=100, unit="%", desc="transcode", bar_format="{l_bar}{bar}| {n:.0f}% {postfix}") as bar:
            while body.get("status") not in DONE:
                async with session.get(f"{base}/api/v1/assets/{asset_id}") as resp:
                    await _check(resp)
                    body = await resp.json()
                bar.n = body.get("progress") or 0
                bar.set_postfix_str(body.get("status", ""))
                bar.refresh()
                if body.get("status") not in DONE:
                    await asyncio.sleep(0.5)
    if body["status"] == "failed":
        print(f"asset {asset_id} failed: {body.get('error')}", file=sys.stderr)
        return 1
    print(f"asset {asset_id} ready")
    for name, url in body["playback"].items():
        print(f"  {name:<5} {url}")
    return 0


def _file_size(path: Path) -> int:
    return path.stat().st_size


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    if not args.source.startswith(("http://", "https://")) and not Path(args.source).is_file():
        print(f"onair: error: {args.source} is not a file (or an http/https URL)", file=sys.stderr)
        return 2
    return asyncio.run(ingest(settings, args.source, args.title, args.server, not args.no_wait))
