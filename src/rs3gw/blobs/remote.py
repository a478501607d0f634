"""The write path the cloud backends (S3-compatible, GCS, Azure) share: buffer one part, keep at most
one part in flight while the next fills, publish at close, drop everything on abort.

Why one class: the memory bound (~2 parts per writer), the shielded wait that keeps a cancelled
request from racing ``abort``, and the write-time head cache are the same whatever SDK uploads the
parts; each backend supplies only its blocking upload calls and how to discard an unfinished upload.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing
from typing import Any

from rs3gw import errors
from rs3gw.blobs.base import BlobStore, BlobWriter, Tap
from rs3gw.blobs.headcache import HEAD_BYTES, HeadCache

_HEX = frozenset("0123456789abcdef")
READ_RESUMES = 3  # a ranged read survives this many dropped connections


class RemoteBlobStore(BlobStore):
    """What the cloud stores share above their SDK calls: the key layout, answering size and header
    probes of fresh blobs from the write-time cache, and never sweeping orphans.

    Subclasses set ``prefix`` and ``heads`` and implement ``_upstream_size`` and ``_upstream_read``."""

    prefix: str
    heads: HeadCache

    def key(self, blob_id: str) -> str:
        """Blob ``<id>`` is ``<prefix>/<id[:2]>/<id[2:4]>/<id>``: spread over many name prefixes."""
        if len(blob_id) < 5 or not _HEX.issuperset(blob_id):
            raise errors.InternalError("invalid blob reference")
        name = f"{blob_id[:2]}/{blob_id[2:4]}/{blob_id}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def list_prefix(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def blob_id_of(self, name: str) -> str | None:
        """The blob id an upstream object name holds, or None when the object is not one of ours."""
        blob_id = name.rsplit("/", 1)[-1]
        ours = _HEX.issuperset(blob_id) and len(blob_id) >= 5 and name == self.key(blob_id)
        return blob_id if ours else None

    @abstractmethod
    async def _upstream_size(self, blob_id: str) -> int:
        """The blob's size as the upstream reports it; InternalError when it is missing."""

    @abstractmethod
    def _upstream_read(self, blob_id: str, offset: int, length: int | None) -> AsyncGenerator[bytes, None]:
        """Stream a range (``length`` None: to the end, and never 0) in pieces of at most 1 MiB."""

    async def size(self, blob_id: str) -> int:
        if (known := self.heads.size(blob_id)) is not None:
            return known
        return await self._upstream_size(blob_id)

    async def read(self, blob_id: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        self.key(blob_id)  # an invalid id fails here, whatever the cache holds
        if (cached := self.heads.range(blob_id, offset, length)) is not None:
            if cached:
                yield cached
            return
        if length == 0:
            await self.size(blob_id)  # a read of nothing still fails on a missing blob, like local's
            return
        async with aclosing(self._upstream_read(blob_id, offset, length)) as chunks:
            async for chunk in chunks:  # closed with this generator: a client that leaves frees the GET
                yield chunk

    async def sweep_orphans(self, referenced: Callable[[], Awaitable[set[str]]]) -> int:
        """Never sweeps: several gateways share an upstream bucket, and none can tell a crash's
        debris from a sibling's blob that is published but whose metadata is not committed yet.
        ``rs3gw fsck`` against one gateway's metadata is the way to find orphans."""
        return 0


async def resumable_read(
    get: Callable[[str | None], Awaitable[Any]],
    read: Callable[[Any], Awaitable[bytes]],
    stream_errors: tuple[type[Exception], ...],
    fail: Callable[[Exception], errors.S3Error],
    offset: int,
    length: int | None,
) -> AsyncGenerator[bytes, None]:
    """A range streamed from ranged GETs, asked again from the first byte not yet delivered when the
    connection drops (``stream_errors``), up to READ_RESUMES times; then ``fail(error)`` is raised.

    ``get(range header or None)`` returns a body with ``close()``, or None when the range starts at or
    past the end; ``read(body)`` returns its next piece (b"" at the end)."""
    pos, end = offset, None if length is None else offset + length
    resumes = 0
    while end is None or pos < end:
        body = await get(
            None if pos == 0 and end is None else f"bytes={pos}-{'' if end is None else end - 1}"
        )
        if body is None:  # starts at or past the end
            if end is None:
                return
            raise errors.InternalError("object data is truncated")
        try:
            while chunk := await read(body):
                if end is not None and pos + len(chunk) > end:
                    chunk = chunk[: end - pos]  # a server ignoring the range sends it all
                pos += len(chunk)
                yield chunk
                if end is not None and pos >= end:
                    break
        except stream_errors as e:
            resumes += 1
            if resumes > READ_RESUMES:
                raise fail(e) from e
            continue
        finally:
            body.close()
        if end is None:
            return
        if pos < end:
            raise errors.InternalError("object data is truncated")


class RemoteWriter(BlobWriter):
    """Subclasses implement the blocking ``_part_sync`` / ``_finish_sync`` (run on the store's pool
    through ``call``) and ``_discard``; ``_part_target`` grows parts where the upstream caps their count."""

    def __init__(
        self, blob_id: str, call: Callable[..., Awaitable[Any]], heads: HeadCache, part_size: int
    ) -> None:
        self.blob_id = blob_id
        self._call = call
        self._heads = heads
        self.part_size = part_size
        self.buf = bytearray()
        self.size = 0
        self.head = b""
        self.in_flight: asyncio.Future[None] | None = None
        self.done = False

    @abstractmethod
    def _part_sync(self, data: bytearray, taps: Sequence[Tap]) -> None:
        """Upload one part (after running the taps over it)."""

    @abstractmethod
    def _finish_sync(self, data: bytearray, taps: Sequence[Tap]) -> None:
        """Upload what is left and publish the blob: one plain upload when no part went up yet."""

    @abstractmethod
    async def _discard(self) -> None:
        """Drop an unfinished upload's parts upstream; never raises for an upstream that is down."""

    def _part_target(self) -> int:
        return self.part_size

    async def _settle(self) -> None:
        """Wait for the part in flight; shielded, so a cancelled request never races abort()."""
        if self.in_flight is not None:
            await self._guard(asyncio.shield(self.in_flight))
            self.in_flight = None

    async def _guard(self, aw: Awaitable[Any]) -> None:
        try:
            await aw
        except errors.S3Error:
            await self.abort()
            raise

    async def write(self, data: bytes | bytearray | memoryview, taps: Sequence[Tap] = ()) -> None:
        if len(self.head) < HEAD_BYTES:
            self.head += bytes(data[: HEAD_BYTES - len(self.head)])
        self.buf += data
        self.size += len(data)
        if len(self.buf) >= self._part_target():
            await self._settle()  # one part in flight at most: memory stays at ~2 parts
            buf, self.buf = self.buf, bytearray()
            self.in_flight = asyncio.ensure_future(self._call(self._part_sync, buf, taps))

    async def close(self, taps: Sequence[Tap] = ()) -> int:
        await self._settle()
        buf, self.buf = self.buf, bytearray()
        await self._guard(self._call(self._finish_sync, buf, taps))
        self.done = True
        self._heads.remember(self.blob_id, self.size, self.head)
        return self.size

    async def abort(self) -> None:
        if self.done:
            return
        self.done = True
        self.buf = bytearray()
        if self.in_flight is not None:
            await asyncio.wait([self.in_flight])
            if not self.in_flight.cancelled():
                self.in_flight.exception()  # retrieved: the caller already has the error that matters
            self.in_flight = None
        await self._discard()


def run_taps(data: bytearray, taps: Sequence[Tap]) -> memoryview:
    """Feed a part to the taps (hashes) on the worker thread that uploads it; returns the view."""
    view = memoryview(data)
    for t in taps:
        t.update(view)
    return view
