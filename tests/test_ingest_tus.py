"""Resumable uploads (tus 1.0) with the tuspy client: interrupted, resumed, transcoded."""

from __future__ import annotations

import asyncio

from tusclient.client import TusClient

from tests.conftest import ADMIN
from tests.ingest_tools import make_clip, wait_for

TUS = {"Tus-Resumable": "1.0.0"}


async def test_interrupted_upload_resumes_and_becomes_ready(client, settings, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", size="640x360", seconds=4)
    size = clip.stat().st_size
    endpoint = str(client.make_url("/api/v1/uploads/"))
    tus = TusClient(endpoint, headers=ADMIN)
    first = tus.async_uploader(file_path=str(clip), chunk_size=64 * 1024,
                               metadata={"title": "Resumed clip", "filename": "clip.mp4"})
    await first.upload(stop_at=size // 2)  # the connection "drops" half-way
    assert first.url and first.url.startswith(endpoint)

    head = await client.head(first.url.removeprefix(str(client.make_url(""))), headers={**ADMIN, **TUS})
    assert head.status == 200
    offset = int(head.headers["Upload-Offset"])
    assert size // 2 <= offset < size and int(head.headers["Upload-Length"]) == size
    asset_id = head.headers["Onair-Asset-Id"]
    assert (await wait_for(client, asset_id, ("uploading",), within=5))["title"] == "Resumed clip"

    # a new client (say, after a browser restart) asks the server where to carry on
    second = await asyncio.to_thread(tus.async_uploader, file_path=str(clip), url=first.url, chunk_size=64 * 1024)
    assert second.offset == offset
    await second.upload()
    body = await wait_for(client, asset_id)
    assert body["status"] == "ready", body["error"]
    stored = settings.data_dir / "objects" / f"sources/{asset_id}/original"
    assert not stored.exists() or stored.read_bytes() == clip.read_bytes()
    assert len(body["renditions"]) == 2


async def test_protocol_details(client):
    resp = await client.options("/api/v1/uploads/")
    assert resp.status == 204 and resp.headers["Tus-Version"] == "1.0.0"
    assert "creation" in resp.headers["Tus-Extension"] and "termination" in resp.headers["Tus-Extension"]
    # version required, admin required, length required, limits enforced
    assert (await client.post("/api/v1/uploads/", headers={**ADMIN, "Upload-Length": "10"})).status == 412
    assert (await client.post("/api/v1/uploads/", headers={**TUS, "Upload-Length": "10"})).status == 401
    assert (await client.post("/api/v1/uploads/", headers={**ADMIN, **TUS})).status == 400
    too_big = str(10 * 1024**4)
    assert (await client.post("/api/v1/uploads/", headers={**ADMIN, **TUS, "Upload-Length": too_big})).status == 413
    resp = await client.post("/api/v1/uploads/", headers={**ADMIN, **TUS, "Upload-Length": "10",
                                                          "Upload-Metadata": "title bm90IGEgY2xpcA=="})
    assert resp.status == 201
    location, asset_id = resp.headers["Location"], resp.headers["Onair-Asset-Id"]
    patch = {**ADMIN, **TUS, "Content-Type": "application/offset+octet-stream"}
    resp = await client.patch(location, data=b"12345", headers={**patch, "Upload-Offset": "3"})
    assert resp.status == 409  # wrong offset
    resp = await client.patch(location, data=b"12345", headers={**patch, "Content-Type": "text/plain",
                                                               "Upload-Offset": "0"})
    assert resp.status == 415
    resp = await client.patch(location, data=b"12345", headers={**patch, "Upload-Offset": "0"})
    assert resp.status == 204 and resp.headers["Upload-Offset"] == "5"
    resp = await client.patch(location, data=b"123456", headers={**patch, "Upload-Offset": "5"})
    assert resp.status == 400  # more than Upload-Length
    assert (await client.head(location, headers={**ADMIN, **TUS})).headers["Upload-Offset"] == "5"
    # termination removes the upload and its still-uploading asset
    assert (await client.delete(location, headers={**ADMIN, **TUS})).status == 204
    assert (await client.head(location, headers={**ADMIN, **TUS})).status == 404
    assert (await client.get(f"/api/v1/assets/{asset_id}", headers=ADMIN)).status == 404


async def test_empty_upload_completes_at_creation(client):
    resp = await client.post("/api/v1/uploads/", headers={**ADMIN, **TUS, "Upload-Length": "0"})
    assert resp.status == 201
    assert (await client.head(resp.headers["Location"], headers={**ADMIN, **TUS})).status == 404  # done already
    asset = await (await client.get(f"/api/v1/assets/{resp.headers['Onair-Asset-Id']}", headers=ADMIN)).json()
    assert asset["status"] != "uploading"  # queued (then failed: zero bytes are no video)
