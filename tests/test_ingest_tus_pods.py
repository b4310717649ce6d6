"""Acceptance: a tus upload started on one `onair serve` and resumed on another that shares nothing with it but
the database and the S3 server (each has its own data dir), with a PATCH racing another across the two."""

from __future__ import annotations

import asyncio
import io
import os
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
from tusclient.client import TusClient

from onair.core.settings import Settings
from onair.core.storage import close_store, open_store
from streaming import catalog
from streaming.ingest.tus_store import PART_SIZE, PREFIX
from tests.conftest import ADMIN
from tests.s3_server import ACCESS_KEY, SECRET_KEY
from tests.test_polls_durability import live_server

TUS = {"Tus-Resumable": "1.0.0"}
PATCH = {**ADMIN, **TUS, "Content-Type": "application/offset+octet-stream"}
MiB = 1024 * 1024


async def test_upload_resumed_on_another_replica(tmp_path: Path, database_url: str, s3_endpoint: str) -> None:
    s3 = {"ONAIR_STORAGE": "s3", "ONAIR_S3_ENDPOINT": s3_endpoint, "ONAIR_S3_BUCKET": f"tus{uuid.uuid4().hex[:8]}",
          "ONAIR_S3_ACCESS_KEY_ID": ACCESS_KEY, "ONAIR_S3_SECRET_ACCESS_KEY": SECRET_KEY}
    a, b = live_server(tmp_path, "a", database_url, ""), live_server(tmp_path, "b", database_url, "")
    a.env.update(s3, ONAIR_DB_POOL_SIZE="1")  # one connection: a PATCH that held it would block HEAD below
    b.env.update(s3)
    a.start()
    b.start()
    data = os.urandom(2 * PART_SIZE + 300_000)  # two full parts and a short last one, from small tus chunks
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            await asyncio.gather(asyncio.to_thread(a.wait_ready), asyncio.to_thread(b.wait_ready))
            # 1. started on A: 3 MiB in 1 MiB chunks (each below S3's 5 MiB part minimum)
            first = TusClient(a.url + "/api/v1/uploads/", headers=ADMIN).async_uploader(
                file_stream=io.BytesIO(data), chunk_size=MiB, metadata={"title": "Two pods"})
            await first.upload(stop_at=3 * MiB)
            path = first.url.removeprefix(a.url)
            offset = 3 * MiB

            # 2. a slow PATCH on A; meanwhile B refuses a second PATCH at the same offset, and A still answers
            #    HEAD with its single database connection (none is held while a body is read)
            go = asyncio.Event()

            async def slow_body() -> AsyncIterator[bytes]:
                yield data[offset:offset + 100_000]
                await go.wait()
                yield data[offset + 100_000:offset + 4 * MiB]

            slow = asyncio.create_task(http.patch(a.url + path, data=slow_body(),
                                                  headers={**PATCH, "Upload-Offset": str(offset)}))
            await _until_claimed(database_url, path.rsplit("/", 1)[1])
            async with http.patch(b.url + path, data=data[offset:offset + 10],
                                  headers={**PATCH, "Upload-Offset": str(offset)}) as resp:
                assert resp.status == 409 and "Retry-After" in resp.headers, await resp.text()
            async with http.head(a.url + path, headers={**ADMIN, **TUS}) as resp:
                assert resp.status == 200 and int(resp.headers["Upload-Offset"]) == offset
                asset_id = resp.headers["Onair-Asset-Id"]
            go.set()
            async with await slow as resp:
                assert resp.status == 204, await resp.text()
                offset = int(resp.headers["Upload-Offset"])
            assert offset == 7 * MiB  # crossed PART_SIZE: A's earlier pieces went into part 1

            # 3. resumed on B by a fresh client that asks B where to carry on
            second = await asyncio.to_thread(TusClient(b.url + "/api/v1/uploads/", headers=ADMIN).async_uploader,
                                             file_stream=io.BytesIO(data), url=b.url + path, chunk_size=MiB)
            assert second.offset == offset
            await second.upload()

            async with http.head(b.url + path, headers={**ADMIN, **TUS}) as resp:
                assert resp.status == 404  # done: the upload is gone
            async with http.get(f"{a.url}/api/v1/assets/{asset_id}", headers=ADMIN) as resp:
                assert (await resp.json())["status"] == "queued"  # no worker runs here
    finally:
        a.stop()
        b.stop()
    store = await open_store(Settings(data_dir=tmp_path / "check", storage="s3", s3_endpoint=s3_endpoint,
                                      s3_bucket=s3["ONAIR_S3_BUCKET"], s3_access_key_id=ACCESS_KEY,
                                      s3_secret_access_key=SECRET_KEY))
    try:
        assert await store.get_bytes(catalog.source_key(asset_id)) == data  # exactly the bytes sent
        assert await store.list(PREFIX) == []  # no staged piece left behind
    finally:
        await close_store(store)


async def _until_claimed(database_url: str, upload_id: str, within: float = 20) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + within
        while not await conn.fetchval("SELECT lease_token IS NOT NULL FROM uploads WHERE id = $1", upload_id):
            assert time.monotonic() < deadline, "the slow PATCH never claimed the upload"
            await asyncio.sleep(0.02)
    finally:
        await conn.close()
