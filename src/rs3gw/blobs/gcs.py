"""Blobs in a Google Cloud Storage bucket (or an emulator speaking its JSON API).

Why google-cloud-storage on a private thread pool: it is the maintained client, it signs with every
kind of Google credential and retries with backoff, but it is synchronous; a dedicated pool keeps slow
upstream calls from starving the default executor that hashing and local I/O use.

Layout: blob ``<id>`` is the object ``<prefix>/<id[:2]>/<id[2:4]>/<id>`` (as the S3 backend). A small
blob is one upload at close; a larger one is a resumable upload whose chunks go out while the next one
fills and which is finalized at close — GCS shows an object only once its upload is finalized, so a
blob is visible exactly when ``close`` returns, and ``abort`` cancels the session. Reads are one ranged
media GET streamed in 1 MiB pieces, resumed from the last byte if the connection drops.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import TransportError
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from rs3gw import errors
from rs3gw.blobs.base import NO_OPTIONS, BlobWriter, Tap, WriteOptions
from rs3gw.blobs.headcache import HEAD_CACHE, HeadCache
from rs3gw.blobs.remote import RemoteBlobStore, RemoteWriter, resumable_read, run_taps

PART_SIZE = 8 << 20  # resumable chunks must be multiples of 256 KiB
READ_CHUNK = 1 << 20
POOL_THREADS = 32
_T = TypeVar("_T")
_OUTAGE = (
    gexc.ServerError,
    gexc.TooManyRequests,
    TransportError,
    requests.ConnectionError,
    requests.Timeout,
    gexc.RetryError,
)


@dataclass(frozen=True)
class GCSBackendConfig:
    """Where the blobs live. No credentials file and no endpoint: Application Default Credentials;
    an endpoint (an emulator) without a credentials file: anonymous."""

    bucket: str
    prefix: str = "rs3gw"
    project: str = ""
    endpoint: str = ""  # empty: storage.googleapis.com
    credentials_file: str = ""  # a service account's JSON key
    part_size: int = PART_SIZE
    retry_seconds: float = 60.0  # how long one call keeps retrying transient failures
    head_cache: int = HEAD_CACHE  # blobs whose size and first bytes are remembered at write; 0: none


class _Missing(Exception):
    """GCS has no such object."""


def upstream_error(e: Exception) -> errors.S3Error:
    """503 for outages (clients retry), 500 for the rest (a wrong bucket or credentials is ours)."""
    if isinstance(e, _OUTAGE):
        return errors.error_class("ServiceUnavailable")("The storage backend is unavailable.")
    code = getattr(e, "code", "") or type(e).__name__
    return errors.InternalError(f"storage backend error: {code}")


class GCSBlobStore(RemoteBlobStore):
    def __init__(self, cfg: GCSBackendConfig) -> None:
        if not cfg.bucket:
            raise ValueError("the gcs backend needs a bucket")
        if cfg.part_size % (256 << 10):
            raise ValueError("the gcs part size must be a multiple of 256 KiB")
        self.cfg = cfg
        self.prefix = cfg.prefix.strip("/")
        self.pool = ThreadPoolExecutor(POOL_THREADS, thread_name_prefix="rs3gw-gcs")
        self.retry: Retry = DEFAULT_RETRY.with_timeout(cfg.retry_seconds)
        self.heads = HeadCache(cfg.head_cache)
        options = {"api_endpoint": cfg.endpoint} if cfg.endpoint else None
        project = cfg.project or None
        if cfg.credentials_file:
            self.client = storage.Client.from_service_account_json(
                cfg.credentials_file, project=project, client_options=options
            )
        elif cfg.endpoint:
            self.client = storage.Client(
                project=project or "rs3gw",
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options=options,
            )
        else:
            self.client = storage.Client(project=project)
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=POOL_THREADS)
        self.client._http.mount("https://", adapter)
        self.client._http.mount("http://", adapter)
        self.bucket = self.client.bucket(cfg.bucket)
        self.api_base = str(self.client._connection.API_BASE_URL).rstrip("/")

    # -- plumbing -------------------------------------------------------------------------------

    async def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run a blocking call on the pool; failures become S3 errors, a missing object ``_Missing``."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.pool, fn, *args)
        except gexc.NotFound:
            raise _Missing() from None
        except (gexc.GoogleAPIError, TransportError, requests.RequestException) as e:
            raise upstream_error(e) from e

    def close(self) -> None:
        self.pool.shutdown(wait=False)
        self.client._http.close()

    def check(self) -> None:
        """Fail at startup, not at the first request, when the bucket is unreachable or forbidden."""
        next(iter(self.client.list_blobs(self.bucket, max_results=1, prefix=self.prefix, retry=None)), None)

    # -- the contract ---------------------------------------------------------------------------

    def new_writer(self, options: WriteOptions = NO_OPTIONS) -> BlobWriter:
        return _GCSWriter(self, secrets.token_hex(16))

    async def _upstream_size(self, blob_id: str) -> int:
        key = self.key(blob_id)
        got = await self.call(lambda: self.bucket.get_blob(key, retry=self.retry))
        if got is None:
            raise errors.InternalError("object data is missing")
        return int(got.size or 0)

    async def exists(self, blob_id: str) -> bool:
        key = self.key(blob_id)
        return await self.call(lambda: self.bucket.get_blob(key, retry=self.retry)) is not None

    def _open(self, key: str, rng: str | None) -> requests.Response | None:
        """The streaming media response, or None when the range starts at or past the end."""
        url = (
            f"{self.api_base}/download/storage/v1/b/{quote(self.cfg.bucket, safe='')}/o/{quote(key, safe='')}"
        )
        headers = {"Range": rng} if rng else {}
        resp: requests.Response = self.client._http.get(
            url, params={"alt": "media"}, headers=headers, stream=True, timeout=(10, 60)
        )
        if resp.status_code == 416:
            resp.close()
            return None
        if resp.status_code >= 400:  # 404 becomes _Missing in call(); 5xx and 429 are retried
            resp.close()
            raise gexc.from_http_status(resp.status_code, f"media download: HTTP {resp.status_code}")  # type: ignore[no-untyped-call]
        return resp

    async def _upstream_read(
        self, blob_id: str, offset: int, length: int | None
    ) -> AsyncGenerator[bytes, None]:
        key = self.key(blob_id)
        loop = asyncio.get_running_loop()

        async def get(rng: str | None) -> requests.Response | None:
            try:
                return await self.call(self.retry(self._open), key, rng)
            except _Missing:
                raise errors.InternalError("object data is missing") from None

        async def read(resp: requests.Response) -> bytes:
            return await loop.run_in_executor(self.pool, resp.raw.read, READ_CHUNK)  # type: ignore[no-any-return]

        dropped = (requests.RequestException, OSError)
        async with aclosing(resumable_read(get, read, dropped, upstream_error, offset, length)) as chunks:
            async for chunk in chunks:
                yield chunk

    def _delete_one(self, key: str) -> None:
        try:
            self.bucket.delete_blob(key, retry=self.retry)
        except gexc.NotFound:
            pass

    async def delete(self, blob_ids: Sequence[str]) -> None:
        keys = sorted({self.key(b) for b in blob_ids})
        for b in blob_ids:
            self.heads.forget(b)
        # One call per object, many at once: a JSON-API batch saves round trips but fails as a
        # whole on a single missing object in some versions, and deletes are rare and off the hot path.
        for i in range(0, len(keys), POOL_THREADS):
            await asyncio.gather(*(self.call(self._delete_one, k) for k in keys[i : i + POOL_THREADS]))

    async def list_ids(self) -> AsyncIterator[str]:
        prefix = self.list_prefix()
        pages = iter(
            self.client.list_blobs(self.bucket, prefix=prefix, page_size=1000, retry=self.retry).pages
        )
        done = object()
        while (page := await self.call(next, pages, done)) is not done:
            for obj in page:  # type: ignore[attr-defined]
                if (blob_id := self.blob_id_of(str(obj.name))) is not None:
                    yield blob_id  # anything else in the bucket is not ours


class _GCSWriter(RemoteWriter):
    def __init__(self, store: GCSBlobStore, blob_id: str) -> None:
        super().__init__(blob_id, store.call, store.heads, store.cfg.part_size)
        self.store = store
        self.blob = store.bucket.blob(store.key(blob_id), chunk_size=store.cfg.part_size)
        self.session: Any = None  # google.cloud.storage.fileio.BlobWriter once past one part

    def _part_sync(self, data: bytearray, taps: Sequence[Tap]) -> None:
        view = run_taps(data, taps)
        if self.session is None:
            # A resumable session: chunks are uploaded as they fill, the object appears at finalize.
            self.session = self.blob.open("wb", ignore_flush=True, retry=self.store.retry)
        self.session.write(view)

    def _finish_sync(self, data: bytearray, taps: Sequence[Tap]) -> None:
        if self.session is None:
            run_taps(data, taps)
            self.blob.upload_from_string(bytes(data), retry=self.store.retry)
            return
        if data:
            self._part_sync(data, taps)
        self.session.close()  # uploads the rest and finalizes

    def _cancel_sync(self) -> None:
        """Cancel the resumable session (a DELETE on its URL) so its chunks are dropped now. The
        file-like writer must end closed whatever happens: as an io object, it would otherwise
        finalize — publish a truncated blob — when garbage-collected."""
        try:
            self.session.terminate()
        finally:
            if not self.session.closed:
                self.session._buffer.close()

    async def _discard(self) -> None:
        if self.session is not None:
            try:
                await self.store.call(self._cancel_sync)
            except (_Missing, errors.S3Error):
                pass  # unfinalized sessions expire on their own after a week, never visible
