"""The blob-store contract: opaque, immutable, id-named byte blobs (object keys never reach it).

Objects are made of blobs (one per single-part object, one per part of a multipart object), so a
backend only stores, ranges and deletes bytes; every S3 semantic lives in the engine.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from typing import Protocol


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


class BlobStore(ABC):
    @abstractmethod
    def new_writer(self) -> BlobWriter: ...

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
