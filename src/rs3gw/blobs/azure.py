"""Blobs in an Azure Blob Storage container (or Azurite).

Why azure-storage-blob's synchronous client on a private thread pool: it is the maintained SDK and
retries with exponential backoff; its async flavour needs aiohttp, and a dedicated pool keeps slow
upstream calls from starving the default executor that hashing and local I/O use.

Layout: blob ``<id>`` is the block blob ``<prefix>/<id[:2]>/<id[2:4]>/<id>`` (as the S3 backend). A
small blob is one Put Blob at close; a larger one stages a block per part while the next one fills
and commits the block list at close. Uncommitted blocks are invisible, so a blob is visible exactly
when ``close`` returns; ``abort`` commits an empty list and deletes it, dropping the staged blocks now
rather than after Azure's seven-day collection. Reads are ranged downloads streamed in 1 MiB pieces.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobBlock, BlobServiceClient, ExponentialRetry

from rs3gw import errors
from rs3gw.blobs.base import NO_OPTIONS, BlobWriter, Tap, WriteOptions
from rs3gw.blobs.headcache import HEAD_CACHE, HeadCache
from rs3gw.blobs.remote import RemoteBlobStore, RemoteWriter, run_taps

PART_SIZE = 8 << 20
READ_CHUNK = 1 << 20
GET_SIZE = 4 << 20  # bytes per ranged GET of a download; yielded in READ_CHUNK slices
DELETE_BATCH = 256  # Blob Batch's limit
POOL_THREADS = 32
_T = TypeVar("_T")


@dataclass(frozen=True)
class AzureBackendConfig:
    """Where the blobs live: a connection string, or an account URL with the account's key."""

    container: str
    prefix: str = "rs3gw"
    connection_string: str = ""
    account_url: str = ""  # https://ACCOUNT.blob.core.windows.net
    account_name: str = ""  # empty: the first label of the account URL's host
    account_key: str = ""
    part_size: int = PART_SIZE
    attempts: int = 5  # per request, with exponential backoff between them
    head_cache: int = HEAD_CACHE  # blobs whose size and first bytes are remembered at write; 0: none


class _Missing(Exception):
    """The container has no such blob."""


def upstream_error(e: Exception) -> errors.S3Error:
    """503 for outages (clients retry), 500 for the rest (a wrong container or key is ours)."""
    if isinstance(e, (ServiceRequestError, ServiceResponseError)) or (
        isinstance(e, HttpResponseError) and (e.status_code or 0) in (408, 429, 500, 502, 503, 504)
    ):
        return errors.error_class("ServiceUnavailable")("The storage backend is unavailable.")
    code = getattr(e, "error_code", None) or getattr(e, "status_code", None) or type(e).__name__
    return errors.InternalError(f"storage backend error: {code}")


def _is_missing_blob(e: ResourceNotFoundError) -> bool:
    return str(getattr(e, "error_code", "") or "") != "ContainerNotFound"


def block_id(n: int) -> str:
    """Block ids of one blob must all have the same length."""
    return base64.b64encode(f"{n:08d}".encode()).decode()


class AzureBlobStore(RemoteBlobStore):
    def __init__(self, cfg: AzureBackendConfig) -> None:
        if not cfg.container:
            raise ValueError("the azure backend needs a container")
        self.cfg = cfg
        self.prefix = cfg.prefix.strip("/")
        self.pool = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="rs3gw-azure")
        self.heads = HeadCache(cfg.head_cache)
        kw: dict[str, Any] = {
            "max_single_get_size": GET_SIZE,
            "max_chunk_get_size": GET_SIZE,
            # The SDK's default waits 15 s before the first retry: too long for a client waiting on
            # a GET. 1 s, then 1 + 2^n s (jittered): 5 attempts give up after ~18 s, like botocore's.
            "retry_policy": ExponentialRetry(
                initial_backoff=1, increment_base=2, retry_total=cfg.attempts, random_jitter_range=1
            ),
            "connection_timeout": 10,
            "read_timeout": 60,
        }
        if cfg.connection_string:
            self.service = BlobServiceClient.from_connection_string(cfg.connection_string, **kw)
        elif cfg.account_url and cfg.account_key:
            name = cfg.account_name or (urlsplit(cfg.account_url).hostname or "").split(".")[0]
            cred = {"account_name": name, "account_key": cfg.account_key}
            self.service = BlobServiceClient(cfg.account_url, credential=cred, **kw)
        else:
            raise ValueError("the azure backend needs a connection string, or an account URL and key")
        self.container = self.service.get_container_client(cfg.container)

    # -- plumbing -------------------------------------------------------------------------------

    def blob(self, blob_id: str) -> Any:
        return self.container.get_blob_client(self.key(blob_id))

    async def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run a blocking SDK call on the pool; failures become S3 errors, a missing blob ``_Missing``."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.pool, fn, *args)
        except ResourceNotFoundError as e:
            if _is_missing_blob(e):
                raise _Missing() from None
            raise upstream_error(e) from e
        except AzureError as e:
            raise upstream_error(e) from e

    def close(self) -> None:
        self.pool.shutdown(wait=False)
        self.service.close()

    def check(self) -> None:
        """Fail at startup, not at the first request, when the container is unreachable or forbidden."""
        self.container.get_container_properties()

    # -- the contract ---------------------------------------------------------------------------

    def new_writer(self, options: WriteOptions = NO_OPTIONS) -> BlobWriter:
        return _AzureWriter(self, secrets.token_hex(16))

    async def _upstream_size(self, blob_id: str) -> int:
        client = self.blob(blob_id)
        try:
            props = await self.call(client.get_blob_properties)
        except _Missing:
            raise errors.InternalError("object data is missing") from None
        return int(props.size)

    async def exists(self, blob_id: str) -> bool:
        client = self.blob(blob_id)
        try:
            await self.call(client.get_blob_properties)
        except _Missing:
            return False
        return True

    def _download(self, client: Any, offset: int, length: int | None) -> Any:
        """The downloader, or None when the range starts at or past the end (416)."""
        try:
            start = offset if offset or length is not None else None  # the SDK wants an offset with a length
            return client.download_blob(offset=start, length=length, max_concurrency=1)
        except HttpResponseError as e:
            if e.status_code == 416:
                return None
            raise

    async def _upstream_read(
        self, blob_id: str, offset: int, length: int | None
    ) -> AsyncGenerator[bytes, None]:
        client = self.blob(blob_id)
        try:
            down = await self.call(self._download, client, offset, length)
        except _Missing:
            raise errors.InternalError("object data is missing") from None
        if down is None:
            if length is None:
                return
            raise errors.InternalError("object data is truncated")
        chunks = down.chunks()  # each a ranged GET, retried by the SDK
        done, got = object(), 0
        while (chunk := await self.call(next, chunks, done)) is not done:
            assert isinstance(chunk, bytes)
            for i in range(0, len(chunk), READ_CHUNK):
                yield chunk[i : i + READ_CHUNK]
            got += len(chunk)
        if length is not None and got < length:
            raise errors.InternalError("object data is truncated")

    def _delete_batch(self, names: list[str]) -> None:
        try:
            replies = self.container.delete_blobs(*names, raise_on_any_failure=False)
        except HttpResponseError:
            replies = None  # no Blob Batch here (an older emulator): one by one
        if replies is not None:
            for name, reply in zip(names, replies, strict=False):
                if reply.status_code not in (200, 202, 404):
                    raise errors.InternalError(f"storage backend refused to delete {name}")
            return
        for name in names:
            try:
                self.container.delete_blob(name)
            except ResourceNotFoundError:
                pass

    async def delete(self, blob_ids: Sequence[str]) -> None:
        names = sorted({self.key(b) for b in blob_ids})
        for b in blob_ids:
            self.heads.forget(b)
        for i in range(0, len(names), DELETE_BATCH):
            await self.call(self._delete_batch, names[i : i + DELETE_BATCH])

    async def list_ids(self) -> AsyncIterator[str]:
        prefix = self.list_prefix()
        pages = iter(self.container.list_blobs(name_starts_with=prefix, results_per_page=1000).by_page())
        done = object()
        while (page := await self.call(next, pages, done)) is not done:
            items: list[Any] = await self.call(list, page)
            for item in items:
                if (blob_id := self.blob_id_of(str(item.name))) is not None:
                    yield blob_id  # anything else in the container is not ours


class _AzureWriter(RemoteWriter):
    def __init__(self, store: AzureBlobStore, blob_id: str) -> None:
        super().__init__(blob_id, store.call, store.heads, store.cfg.part_size)
        self.store = store
        self.client = store.blob(blob_id)
        self.blocks: list[BlobBlock] = []

    def _part_sync(self, data: bytearray, taps: Sequence[Tap]) -> None:
        run_taps(data, taps)
        bid = block_id(len(self.blocks))
        self.client.stage_block(bid, bytes(data), length=len(data))
        self.blocks.append(BlobBlock(block_id=bid))

    def _finish_sync(self, data: bytearray, taps: Sequence[Tap]) -> None:
        if not self.blocks:
            run_taps(data, taps)
            self.client.upload_blob(bytes(data), blob_type="BlockBlob", overwrite=True)
            return
        if data:
            self._part_sync(data, taps)
        self.client.commit_block_list(self.blocks)

    def _discard_sync(self) -> None:
        """Staged blocks of a never-committed blob live until Azure collects them (a week) unless a
        commit of nothing replaces them; the empty blob it makes is deleted at once."""
        self.client.commit_block_list([])
        self.client.delete_blob()

    def _part_target(self) -> int:
        """Azure allows 50,000 blocks: the size doubles every 5,000, so 8 MiB parts reach past 190 TiB."""
        return self.store.cfg.part_size << (len(self.blocks) // 5000)

    async def _discard(self) -> None:
        if self.blocks:
            try:
                await self.store.call(self._discard_sync)
            except (_Missing, errors.S3Error):
                pass  # the upstream is down: Azure collects uncommitted blocks after a week
