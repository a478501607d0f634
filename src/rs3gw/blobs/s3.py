"""Blobs in a bucket of an S3-compatible upstream (SeaweedFS, MinIO, Ceph RGW, AWS S3, another rs3gw).

Why botocore on a private thread pool rather than an async client: aiobotocore pins botocore to a
narrow window (3.10 wants <1.43.118) that excludes the botocore our boto3 pin needs, and awscrt's S3
client would mean hand-written XML for listing and batch delete. botocore is thread-safe, retries
5xx, throttling and timeouts with exponential backoff and jitter ("standard" mode), and a dedicated
pool keeps slow upstream calls from starving the default executor that hashing and local I/O use.

Layout: blob ``<id>`` is the key ``<prefix>/<id[:2]>/<id[2:4]>/<id>``. Memory per writer is bounded:
bytes are buffered up to one part, at most one part is in flight while the next one fills, small blobs
are one PUT at close and larger ones a multipart upload completed at close — so a blob is visible to
readers only once ``close`` returns, and ``abort`` leaves nothing behind (AbortMultipartUpload).
Reads are ranged GETs streamed in 1 MiB pieces, resumed from the last byte if the connection drops.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, TypeVar

import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from rs3gw import errors
from rs3gw.blobs.base import NO_OPTIONS, BlobWriter, Tap, WriteOptions
from rs3gw.blobs.headcache import HEAD_CACHE, HeadCache
from rs3gw.blobs.remote import RemoteBlobStore, RemoteWriter, resumable_read, run_taps

PART_SIZE = 8 << 20  # S3's minimum part is 5 MiB; 8 MiB keeps memory low and requests few
READ_CHUNK = 1 << 20
DELETE_BATCH = 1000  # DeleteObjects' limit
POOL_THREADS = 32
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_T = TypeVar("_T")


@dataclass(frozen=True)
class S3BackendConfig:
    """Where the blobs live; empty credentials fall back to botocore's chain (env, profile, IMDS)."""

    bucket: str
    endpoint: str = ""  # empty: AWS S3 itself
    prefix: str = "rs3gw"
    region: str = "us-east-1"
    access_key: str = ""
    secret_key: str = ""
    part_size: int = PART_SIZE
    attempts: int = 5  # per request, with exponential backoff and jitter between them
    head_cache: int = HEAD_CACHE  # blobs whose size and first bytes are remembered at write; 0: none


class _Missing(Exception):
    """The upstream has no such key."""


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _status(e: ClientError) -> int:
    return int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def upstream_error(e: Exception) -> errors.S3Error:
    """What the client sees when the upstream fails after retries: 503 for outages (clients retry),
    500 for everything else (a misconfigured bucket or credentials is the gateway's fault)."""
    if isinstance(e, ClientError):
        if _status(e) >= 500 or _code(e) in ("SlowDown", "ServiceUnavailable", "RequestTimeout"):
            return errors.error_class("ServiceUnavailable")("The storage backend is unavailable.")
        return errors.InternalError(f"storage backend error: {_code(e) or _status(e)}")
    return errors.error_class("ServiceUnavailable")("The storage backend is unavailable.")


class S3BlobStore(RemoteBlobStore):
    def __init__(self, cfg: S3BackendConfig) -> None:
        if not cfg.bucket:
            raise ValueError("the s3 backend needs a bucket")
        self.cfg = cfg
        self.bucket = cfg.bucket
        self.prefix = cfg.prefix.strip("/")
        self.pool = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="rs3gw-s3")
        self.heads = HeadCache(cfg.head_cache)
        session = botocore.session.get_session()
        self.client: Any = session.create_client(
            "s3",
            region_name=cfg.region or "us-east-1",
            endpoint_url=cfg.endpoint or None,
            aws_access_key_id=cfg.access_key or None,
            aws_secret_access_key=cfg.secret_key or None,
            config=Config(
                retries={"mode": "standard", "max_attempts": cfg.attempts},
                connect_timeout=5,
                read_timeout=60,
                max_pool_connections=POOL_THREADS,
                # path style for self-hosted endpoints, whose buckets have no DNS names
                s3={"addressing_style": "path" if cfg.endpoint else "auto"},
                # older S3-compatible stores reject the CRC trailers botocore now adds by default
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    # -- plumbing -------------------------------------------------------------------------------

    async def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run a blocking botocore call on the pool; upstream failures become S3 errors, a missing key
        becomes ``_Missing`` for the caller to interpret."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.pool, fn, *args)
        except ClientError as e:
            if _code(e) in _MISSING_CODES or (_status(e) == 404 and _code(e) != "NoSuchBucket"):
                raise _Missing() from None
            raise upstream_error(e) from e
        except BotoCoreError as e:
            raise upstream_error(e) from e

    def close(self) -> None:
        """Release the connection pool and threads (tests open many stores; a server keeps one)."""
        self.pool.shutdown(wait=False)
        self.client.close()

    def check(self) -> None:
        """Fail at startup, not at the first request, when the bucket is unreachable or forbidden."""
        self.client.head_bucket(Bucket=self.bucket)

    # -- the contract ---------------------------------------------------------------------------

    def new_writer(self, options: WriteOptions = NO_OPTIONS) -> BlobWriter:
        return _S3Writer(self, secrets.token_hex(16))

    async def _upstream_size(self, blob_id: str) -> int:
        try:
            head = await self.call(lambda: self.client.head_object(Bucket=self.bucket, Key=self.key(blob_id)))
        except _Missing:
            raise errors.InternalError("object data is missing") from None
        return int(head["ContentLength"])

    async def exists(self, blob_id: str) -> bool:
        try:
            await self.call(lambda: self.client.head_object(Bucket=self.bucket, Key=self.key(blob_id)))
        except _Missing:
            return False
        return True

    def _get(self, key: str, rng: str | None) -> Any:
        """The response body, or None when the range starts at or past the end (416)."""
        kw = {"Range": rng} if rng else {}
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key, **kw)["Body"]
        except ClientError as e:
            if _code(e) == "InvalidRange" or _status(e) == 416:
                return None
            raise

    async def _upstream_read(
        self, blob_id: str, offset: int, length: int | None
    ) -> AsyncGenerator[bytes, None]:
        key = self.key(blob_id)
        loop = asyncio.get_running_loop()

        async def get(rng: str | None) -> Any:
            try:
                return await self.call(self._get, key, rng)
            except _Missing:
                raise errors.InternalError("object data is missing") from None

        async def read(body: Any) -> bytes:
            return await loop.run_in_executor(self.pool, body.read, READ_CHUNK)  # type: ignore[no-any-return]

        dropped = (ResponseStreamingError, IncompleteReadError, ReadTimeoutError, BotoConnectionError)
        async with aclosing(resumable_read(get, read, dropped, upstream_error, offset, length)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def delete(self, blob_ids: Sequence[str]) -> None:
        keys = [self.key(b) for b in blob_ids]
        for b in blob_ids:
            self.heads.forget(b)
        for i in range(0, len(keys), DELETE_BATCH):
            batch = {"Objects": [{"Key": k} for k in keys[i : i + DELETE_BATCH]], "Quiet": True}
            out = await self.call(lambda b=batch: self.client.delete_objects(Bucket=self.bucket, Delete=b))
            failed = [e for e in out.get("Errors", []) if e.get("Code") not in _MISSING_CODES]
            if failed:
                raise errors.InternalError(f"storage backend refused to delete {failed[0].get('Key')}")

    async def list_ids(self) -> AsyncIterator[str]:
        prefix = self.list_prefix()
        token: str | None = None
        while True:
            kw: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": 1000}
            if token:
                kw["ContinuationToken"] = token
            page = await self.call(lambda kw=kw: self.client.list_objects_v2(**kw))
            for obj in page.get("Contents", []):
                if (blob_id := self.blob_id_of(str(obj["Key"]))) is not None:
                    yield blob_id  # anything else in the bucket is not ours
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                return


class _S3Writer(RemoteWriter):
    def __init__(self, store: S3BlobStore, blob_id: str) -> None:
        super().__init__(blob_id, store.call, store.heads, store.cfg.part_size)
        self.store = store
        self.key = store.key(blob_id)
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []

    def _part_sync(self, data: bytearray, taps: Sequence[Tap]) -> None:
        run_taps(data, taps)
        c, s = self.store.client, self.store
        if self.upload_id is None:
            self.upload_id = c.create_multipart_upload(Bucket=s.bucket, Key=self.key)["UploadId"]
        n = len(self.parts) + 1
        out = c.upload_part(Bucket=s.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=n, Body=data)
        self.parts.append({"PartNumber": n, "ETag": out["ETag"]})

    def _finish_sync(self, data: bytearray, taps: Sequence[Tap]) -> None:
        c, s = self.store.client, self.store
        if self.upload_id is None:
            run_taps(data, taps)
            c.put_object(Bucket=s.bucket, Key=self.key, Body=bytes(data))
            return
        if data:
            self._part_sync(data, taps)
        c.complete_multipart_upload(
            Bucket=s.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}
        )

    def _part_target(self) -> int:
        """S3 allows 10,000 parts: the size doubles every 1,000 of them, so 8 MiB parts reach 8 TiB
        (past S3's 5 TiB object limit) while blobs under 8 GiB never buffer more than 8 MiB."""
        return self.store.cfg.part_size << (len(self.parts) // 1000)

    async def _discard(self) -> None:
        if self.upload_id is not None:
            s, upload_id = self.store, self.upload_id
            try:
                await s.call(
                    lambda: s.client.abort_multipart_upload(Bucket=s.bucket, Key=self.key, UploadId=upload_id)
                )
            except (_Missing, errors.S3Error):
                pass  # already gone, or the upstream is down: its lifecycle rule must reap the parts
