"""The S3 store through aiobotocore."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from onair.core.settings import Settings
from onair.core.storage.common import (
    CHUNK,
    MULTIPART_THRESHOLD,
    MultipartError,
    ObjectInfo,
    ObjectNotFound,
    Part,
    check_key,
    check_part_number,
    check_parts,
    guess_type,
)

# What S3 answers when it will not take our requests at all: a wrong key or secret, a missing permission, a
# clock too far off for SigV4. Retrying does not help; an operator must fix the configuration.
REFUSALS = frozenset({"403", "SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "InvalidToken",
                      "ExpiredToken", "RequestTimeTooSkewed"})


class StorageRefused(Exception):
    """The object store refuses our credentials (readyz shows `failing: StorageRefused`)."""


class S3Store:
    """The S3 API through aiobotocore: path-style addressing, SigV4, multipart for large files."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bucket = settings.s3_bucket
        self._stack = AsyncExitStack()
        self._client = None

    async def setup(self) -> None:
        # Short timeouts and few attempts: the origin sits behind a CDN whose own origin timeout is ~10-30 s,
        # and a fast 503 (the CDN's stale-if-error covers it) beats botocore's default of ~90 s of retries.
        s = self.settings
        config = AioConfig(signature_version="s3v4", s3={"addressing_style": "path"},
                           retries={"max_attempts": s.s3_max_attempts, "mode": "standard"},
                           connect_timeout=s.s3_connect_timeout, read_timeout=s.s3_read_timeout,
                           max_pool_connections=64)
        self._client = await self._stack.enter_async_context(get_session().create_client(
            "s3", endpoint_url=self.settings.s3_endpoint, region_name=self.settings.s3_region,
            aws_access_key_id=self.settings.s3_access_key_id,
            aws_secret_access_key=self.settings.s3_secret_access_key, config=config))

    async def close(self) -> None:
        await self._stack.aclose()

    @property
    def client(self):
        if self._client is None:
            raise RuntimeError("S3Store.setup() was not awaited")
        return self._client

    def _refused(self, err: Exception) -> StorageRefused | None:
        code = str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))
        if code not in REFUSALS:
            return None
        return StorageRefused(f"{self.settings.s3_endpoint or 'S3'} refuses access key "
                              f"{self.settings.s3_access_key_id!r} on bucket {self.bucket!r} ({code}): wrong "
                              "secret, missing permission or a skewed clock")

    async def ensure_bucket(self) -> None:
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except self.client.exceptions.ClientError:
            try:
                await self.client.create_bucket(Bucket=self.bucket)
            except self.client.exceptions.ClientError as err:
                code = getattr(err, "response", {}).get("Error", {}).get("Code", "")
                if code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    return  # another replica starting at the same moment created it: just as good
                raise (self._refused(err) or err) from None

    def _not_found(self, err: Exception) -> bool:
        code = getattr(err, "response", {}).get("Error", {}).get("Code", "")
        return code in ("404", "NoSuchKey", "NotFound")

    @staticmethod
    def _info(key: str, head: dict) -> ObjectInfo:
        return ObjectInfo(key, head["ContentLength"], head["ETag"].strip('"'), head["LastModified"],
                          head.get("ContentType") or guess_type(key))

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        await self.client.put_object(Bucket=self.bucket, Key=check_key(key), Body=data,
                                     ContentType=content_type or guess_type(key))
        return await self.stat(key)

    async def put_file(self, key: str, path: Path, content_type: str | None = None) -> ObjectInfo:
        check_key(key)
        ctype = content_type or guess_type(key)
        size = (await asyncio.to_thread(path.stat)).st_size
        if size <= MULTIPART_THRESHOLD:
            return await self.put_bytes(key, await asyncio.to_thread(path.read_bytes), ctype)
        # Multipart: the object only appears when the upload completes.
        upload_id = await self.start_multipart(key, ctype)
        parts = []
        try:
            f = await asyncio.to_thread(open, path, "rb")
            with f:
                while chunk := await asyncio.to_thread(f.read, MULTIPART_THRESHOLD):
                    parts.append(await self.put_part(key, upload_id, len(parts) + 1, chunk))
            return await self.complete_multipart(key, upload_id, parts)
        except BaseException:
            await self.abort_multipart(key, upload_id)
            raise

    async def start_multipart(self, key: str, content_type: str | None = None) -> str:
        upload = await self.client.create_multipart_upload(Bucket=self.bucket, Key=check_key(key),
                                                           ContentType=content_type or guess_type(key))
        return upload["UploadId"]

    async def put_part(self, key: str, upload_id: str, number: int, data: bytes) -> Part:
        try:
            part = await self.client.upload_part(Bucket=self.bucket, Key=check_key(key), UploadId=upload_id,
                                                 PartNumber=check_part_number(number), Body=data)
        except self.client.exceptions.NoSuchUpload:
            raise MultipartError(f"no multipart upload {upload_id!r}") from None
        return Part(number, part["ETag"].strip('"'), len(data))

    async def complete_multipart(self, key: str, upload_id: str, parts: list[Part]) -> ObjectInfo:
        check_parts(parts)
        listed = [{"ETag": f'"{p.etag}"', "PartNumber": p.number} for p in parts]
        try:
            await self.client.complete_multipart_upload(Bucket=self.bucket, Key=check_key(key), UploadId=upload_id,
                                                        MultipartUpload={"Parts": listed})
        except self.client.exceptions.ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchUpload", "InvalidPart", "InvalidPartOrder", "EntityTooSmall"):
                raise MultipartError(f"cannot complete multipart upload {upload_id!r}: {code}") from None
            raise
        return await self.stat(key)

    async def stat(self, key: str) -> ObjectInfo:
        try:
            head = await self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except self.client.exceptions.ClientError as err:
            if self._not_found(err):
                raise ObjectNotFound(key) from None
            raise
        return self._info(key, head)

    async def _get(self, key: str, range_: str | None = None) -> dict:
        kwargs = {"Range": range_} if range_ else {}
        try:
            return await self.client.get_object(Bucket=self.bucket, Key=check_key(key), **kwargs)
        except self.client.exceptions.NoSuchKey:
            raise ObjectNotFound(key) from None
        except self.client.exceptions.ClientError as err:
            if self._not_found(err):
                raise ObjectNotFound(key) from None
            raise

    async def get_bytes(self, key: str) -> bytes:
        resp = await self._get(key)
        async with resp["Body"] as body:
            return await body.read()

    async def iter_range(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        range_ = f"bytes={start}-{'' if end is None else end}" if (start or end is not None) else None
        resp = await self._get(key, range_)
        async with resp["Body"] as body:
            while chunk := await body.read(CHUNK):  # works for plain and checksum-validating bodies
                yield chunk

    async def download(self, key: str, path: Path) -> None:
        out = await asyncio.to_thread(open, path, "wb")
        with out:
            async for chunk in self.iter_range(key):
                await asyncio.to_thread(out.write, chunk)

    async def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(keys)

    async def delete(self, key: str) -> None:
        await self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            await self.client.abort_multipart_upload(Bucket=self.bucket, Key=check_key(key), UploadId=upload_id)
        except self.client.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code", "") != "NoSuchUpload":
                raise

    async def delete_prefix(self, prefix: str) -> int:
        keys = await self.list(prefix)
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i:i + 1000]]
            await self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)

    def local_path(self, key: str) -> Path | None:
        return None

    async def presigned_url(self, key: str, expires: int = 300) -> str | None:
        return await self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": check_key(key)}, ExpiresIn=expires)

    async def check(self) -> None:
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except self.client.exceptions.ClientError as err:
            raise (self._refused(err) or err) from None
