"""The blob-store contract: opaque, immutable, id-named byte blobs (object keys never reach it).

Objects are made of blobs (one per single-part object, one per part of a multipart object), so a
backend only stores, ranges and deletes bytes; every S3 semantic lives in the engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from rs3gw import errors


class Tap(Protocol):
    """Anything that observes the bytes as they are written (hashes, checksums)."""

    def update(self, data: bytes | memoryview, /) -> None: ...


class BlobWriter(ABC):
    """One new blob being written; invisible until ``close`` returns."""

    blob_id: str

    @abstractmethod
    async def write(self, data: bytes | bytearray | memoryview, taps: Sequence[Tap] = ()) -> None:
        """Append bytes. Taps run on the same worker thread as the write, so hashing large bodies
        never blocks the event loop and costs one thread hop per buffer, not two."""

    @abstractmethod
    async def close(self, taps: Sequence[Tap] = ()) -> int:
        """Flush (through ``taps``), make durable and publish; returns the blob size."""

    @abstractmethod
    async def abort(self) -> None:
        """Discard everything written; safe to call at any point, more than once."""


@dataclass(frozen=True)
class WriteOptions:
    """Per-write choices made above the blob layer (a bucket's settings); wrappers consume what they
    implement and pass the rest to their inner store, so every layer of a stack sees the same value."""

    compression: str | None = None  # a bucket's override ("none", "lz4", "zstd:9"); None: the default
    encryption: Encryption | None = None  # None: stored as written (see blobs.encrypted)
    binding: bytes = b""  # what the bytes are (blobs.binding); encryption binds every chunk to it

    @property
    def shareable(self) -> bool:
        """Whether the bytes may be shared with other blobs (dedup): not when only a customer's
        key (SSE-C) opens them, or another object's reads would need that key."""
        return self.encryption is None or self.encryption.customer_key is None


@dataclass(frozen=True)
class Encryption:
    """Envelope encryption of one write: the data key is wrapped by the current version of the
    KEK named ``key_name`` or, for SSE-C, by a key derived from ``customer_key`` (never stored)."""

    key_name: str = "aws/s3"
    customer_key: bytes | None = None


NO_OPTIONS = WriteOptions()


def checked_span(offset: int, length: int | None, size: int) -> int:
    """How many bytes a read of ``length`` (None: to the end) from ``offset`` covers in a blob that
    presents ``size`` bytes; a span past the end means the stored form lost bytes, never a client
    error (ranges were resolved against the object's size long before)."""
    if length is None:
        length = size - offset
    if offset < 0 or length < 0 or offset + length > size:
        raise errors.InternalError("object data is truncated")
    return length


class BlobStore(ABC):
    @abstractmethod
    def new_writer(self, options: WriteOptions = NO_OPTIONS) -> BlobWriter: ...

    @abstractmethod
    def read(self, blob_id: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes from ``offset`` (to the end when None)."""

    @abstractmethod
    async def delete(self, blob_ids: Sequence[str]) -> None:
        """Remove blobs; missing ones are ignored (deletion is retried from the GC queue)."""

    @abstractmethod
    async def exists(self, blob_id: str) -> bool: ...

    @abstractmethod
    def list_ids(self) -> AsyncIterator[str]:
        """Every blob present (for orphan sweeps and fsck)."""

    async def size(self, blob_id: str) -> int:
        """The blob's length as ``read`` presents it. Wrappers that change the stored form (framing,
        compression) need it to find their trailers; backends should override this slow default."""
        n = 0
        async for chunk in self.read(blob_id):
            n += len(chunk)
        return n

    async def sweep_orphans(self, referenced: Callable[[], Awaitable[set[str]]]) -> int:
        """At startup, delete blobs that ``referenced()`` does not name (a crash between publishing
        a blob and committing its metadata leaves one); returns how many. Backends that cannot tell
        a crash's debris from a live sibling's upload about to commit do nothing."""
        return 0
