"""One contract, two backends: the local folder store and S3 over a real S3-speaking server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from onair.core.settings import Settings
from onair.core.storage import (
    MIN_PART_SIZE,
    InvalidKey,
    LocalStore,
    MultipartError,
    ObjectNotFound,
    S3Store,
    StorageRefused,
    close_store,
    open_store,
)
from tests.s3_server import ACCESS_KEY, SECRET_KEY


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LocalStore | S3Store]:
    if request.param == "local":
        s = await open_store(Settings(data_dir=tmp_path))
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        s = await open_store(Settings(data_dir=tmp_path, storage="s3", s3_endpoint=endpoint, s3_bucket="contract",
                                      s3_access_key_id=ACCESS_KEY, s3_secret_access_key=SECRET_KEY))
        await s.delete_prefix("")
    yield s
    await close_store(s)


async def test_put_stat_get_roundtrip(store: LocalStore | S3Store) -> None:
    info = await store.put_bytes("assets/a1/hls/master.m3u8", b"#EXTM3U\n")
    assert info.size == 8 and info.etag and info.content_type == "application/vnd.apple.mpegurl"
    again = await store.stat("assets/a1/hls/master.m3u8")
    assert again.etag == info.etag and again.size == 8
    assert await store.get_bytes("assets/a1/hls/master.m3u8") == b"#EXTM3U\n"


async def test_etag_changes_when_object_is_replaced(store: LocalStore | S3Store) -> None:
    first = await store.put_bytes("k/obj.bin", b"one")
    second = await store.put_bytes("k/obj.bin", b"two!")
    assert first.etag != second.etag and second.size == 4


async def test_ranges(store: LocalStore | S3Store) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB, more than one chunk
    await store.put_bytes("r/seg.m4s", data)
    got = b"".join([c async for c in store.iter_range("r/seg.m4s", 1000, 1999)])
    assert got == data[1000:2000]
    tail = b"".join([c async for c in store.iter_range("r/seg.m4s", len(data) - 10)])
    assert tail == data[-10:]
    whole = b"".join([c async for c in store.iter_range("r/seg.m4s")])
    assert whole == data


async def test_put_file_and_download(store: LocalStore | S3Store, tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(b"x" * 100_000)
    info = await store.put_file("f/in.mp4", src)
    assert info.size == 100_000 and info.content_type == "video/mp4"
    dest = tmp_path / "out.bin"
    await store.download("f/in.mp4", dest)
    assert dest.read_bytes() == src.read_bytes()


async def test_missing_objects(store: LocalStore | S3Store) -> None:
    with pytest.raises(ObjectNotFound):
        await store.stat("nope/x")
    with pytest.raises(ObjectNotFound):
        await store.get_bytes("nope/x")
    with pytest.raises(ObjectNotFound):
        [c async for c in store.iter_range("nope/x")]


async def test_list_and_delete_prefix_leave_other_assets(store: LocalStore | S3Store) -> None:
    for key in ("assets/a/1.m4s", "assets/a/sub/2.m4s", "assets/ab/3.m4s", "assets/b/4.m4s"):
        await store.put_bytes(key, b"1")
    assert await store.list("assets/a/") == ["assets/a/1.m4s", "assets/a/sub/2.m4s"]
    assert await store.delete_prefix("assets/a/") == 2
    assert await store.list("assets/") == ["assets/ab/3.m4s", "assets/b/4.m4s"]


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a/../../b", "a//b", "a/./b", "a\\b", "dir/"])
async def test_keys_cannot_escape(store: LocalStore | S3Store, key: str) -> None:
    with pytest.raises(InvalidKey):
        await store.put_bytes(key, b"x")


async def test_readers_never_see_partial_objects(store: LocalStore | S3Store) -> None:
    """While a large object is rewritten, every read returns one complete version."""
    old, new = b"a" * 3_000_000, b"b" * 3_000_000
    await store.put_bytes("big/obj", old)
    writer = asyncio.create_task(store.put_bytes("big/obj", new))
    seen = set()
    while not writer.done():
        body = await store.get_bytes("big/obj")
        seen.add(body[:1] + bytes([len(body) == 3_000_000]))
        await asyncio.sleep(0)
    await writer
    assert seen <= {b"a\x01", b"b\x01"}
    assert await store.get_bytes("big/obj") == new


async def test_multipart_object_appears_whole_on_completion(store: LocalStore | S3Store) -> None:
    first, second, last = b"1" * MIN_PART_SIZE, b"2" * MIN_PART_SIZE, b"tail"
    upload = await store.start_multipart("m/obj.bin")
    await store.put_part("m/obj.bin", upload, 1, b"x" * MIN_PART_SIZE)
    parts = [await store.put_part("m/obj.bin", upload, 1, first),  # sent again: replaces the earlier part 1
             await store.put_part("m/obj.bin", upload, 2, second), await store.put_part("m/obj.bin", upload, 3, last)]
    with pytest.raises(ObjectNotFound):
        await store.stat("m/obj.bin")  # nothing visible before completion
    info = await store.complete_multipart("m/obj.bin", upload, parts)
    assert info.size == 2 * MIN_PART_SIZE + 4
    assert await store.get_bytes("m/obj.bin") == first + second + last
    assert await store.list("m/") == ["m/obj.bin"]


async def test_multipart_rules_are_the_same_on_both_backends(store: LocalStore | S3Store) -> None:
    upload = await store.start_multipart("m/small.bin")
    parts = [await store.put_part("m/small.bin", upload, 1, b"small"),
             await store.put_part("m/small.bin", upload, 2, b"last")]
    with pytest.raises(MultipartError):  # a part other than the last below 5 MiB
        await store.complete_multipart("m/small.bin", upload, parts)
    await store.abort_multipart("m/small.bin", upload)
    await store.abort_multipart("m/small.bin", upload)  # idempotent (moto answers 500 to any later use)
    one = await store.start_multipart("m/one.bin")
    only = await store.put_part("m/one.bin", one, 1, b"")  # a single (last) part may be empty or small
    assert (await store.complete_multipart("m/one.bin", one, [only])).size == 0


async def test_check_reports_readiness(store: LocalStore | S3Store) -> None:
    await store.check()


async def test_s3_refuses_a_wrong_secret(s3_endpoint: str, tmp_path: Path) -> None:
    """The test server checks SigV4 signatures, as AWS does: a signing mistake cannot pass unnoticed. The store
    still opens (the server starts, not ready) and names the refusal; every request is refused."""
    s = await open_store(Settings(data_dir=tmp_path, storage="s3", s3_endpoint=s3_endpoint, s3_bucket="wrong",
                                  s3_access_key_id=ACCESS_KEY, s3_secret_access_key="not-the-secret"))
    try:
        with pytest.raises(StorageRefused, match=r"refuses access key .* \(403\)"):
            await s.check()
        with pytest.raises(StorageRefused, match="SignatureDoesNotMatch"):
            await s.ensure_bucket()
        with pytest.raises(Exception, match="SignatureDoesNotMatch"):
            await s.put_bytes("x/y.bin", b"data")
    finally:
        await close_store(s)


async def test_s3_presigned_url_fetches_the_object(s3_endpoint: str, tmp_path: Path) -> None:
    s = await open_store(Settings(data_dir=tmp_path, storage="s3", s3_endpoint=s3_endpoint, s3_bucket="presign",
                                  s3_access_key_id=ACCESS_KEY, s3_secret_access_key=SECRET_KEY))
    try:
        await s.put_bytes("p/poster.jpg", b"\xff\xd8jpeg")
        url = await s.presigned_url("p/poster.jpg", 60)
        assert url and "X-Amz-Signature" in url
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            assert resp.status == 200 and await resp.read() == b"\xff\xd8jpeg"
        # A tampered URL is refused: another key under the same signature, a longer lifetime, a changed signature.
        await s.put_bytes("p/secret.jpg", b"other")
        signature = url.split("X-Amz-Signature=")[1].split("&")[0]
        tampered = (url.replace("p/poster.jpg", "p/secret.jpg"), url.replace("X-Amz-Expires=60", "X-Amz-Expires=6000"),
                    url.replace(signature, ("0" if signature[0] != "0" else "1") + signature[1:]))
        async with aiohttp.ClientSession() as http:
            for bad in tampered:
                assert bad != url
                async with http.get(bad) as resp:
                    assert resp.status == 403, (bad, resp.status)
                    assert b"SignatureDoesNotMatch" in await resp.read()
    finally:
        await close_store(s)
