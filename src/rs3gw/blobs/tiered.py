"""Archive tiers as a BlobStore layer right above the backend.

An archived blob keeps its id but its bytes move to a tier's own directory, so every layer above
(encryption binds chunks to the blob id, compression frames) reads it unchanged. Reads try the
backend first and fall back to the tier holding the id; a restore puts a temporary copy of the
same id back into the backend, and expiring the restore deletes that copy again.

Moves are crash-safe: the bytes are copied and fsynced at the destination before the engine
commits metadata, and the source is deleted only after that, so a crash leaves two copies (swept
or re-settled later), never none.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

from rs3gw import errors
from rs3gw.blobs.base import NO_OPTIONS, BlobStore, BlobWriter, WriteOptions
from rs3gw.blobs.local import LocalBlobStore


class TieredBlobStore(BlobStore):
    """The backend plus named tier directories (e.g. "glacier" → DATA/tiers/glacier)."""

    def __init__(self, inner: BlobStore, tiers: dict[str, Path], fsync: bool = True) -> None:
        self.inner = inner
        self.fsync = fsync
        self.tiers = {name: LocalBlobStore(path, fsync=fsync) for name, path in tiers.items()}

    @property
    def can_move(self) -> bool:
        """Moves copy files with the same id, which needs a local backend."""
        return isinstance(self.inner, LocalBlobStore)

    def new_writer(self, options: WriteOptions = NO_OPTIONS) -> BlobWriter:
        return self.inner.new_writer(options)

    async def _holder(self, blob_id: str) -> BlobStore | None:
        for tier in self.tiers.values():
            if await tier.exists(blob_id):
                return tier
        return None

    async def read(self, blob_id: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        it = self.inner.read(blob_id, offset, length).__aiter__()
        try:
            first = await it.__anext__()
        except StopAsyncIteration:
            return
        except errors.InternalError:
            holder = await self._holder(blob_id)
            if holder is None:
                raise
            async for chunk in holder.read(blob_id, offset, length):
                yield chunk
            return
        yield first
        async for chunk in it:
            yield chunk

    async def size(self, blob_id: str) -> int:
        try:
            return await self.inner.size(blob_id)
        except errors.InternalError:
            holder = await self._holder(blob_id)
            if holder is None:
                raise
            return await holder.size(blob_id)

    async def delete(self, blob_ids: Sequence[str]) -> None:
        await self.inner.delete(blob_ids)
        for tier in self.tiers.values():
            await tier.delete(blob_ids)

    async def exists(self, blob_id: str) -> bool:
        return await self.inner.exists(blob_id) or await self._holder(blob_id) is not None

    async def list_ids(self) -> AsyncIterator[str]:
        seen: set[str] = set()
        async for b in self.inner.list_ids():
            seen.add(b)
            yield b
        for tier in self.tiers.values():
            async for b in tier.list_ids():
                if b not in seen:
                    yield b

    async def sweep_orphans(self, referenced: Callable[[], Awaitable[set[str]]]) -> int:
        n = await self.inner.sweep_orphans(referenced)
        for tier in self.tiers.values():
            n += await tier.sweep_orphans(referenced)
        return n

    # -- moves between the backend and a tier ---------------------------------------------------
    async def in_backend(self, blob_id: str) -> bool:
        return await self.inner.exists(blob_id)

    async def in_tier(self, tier: str, blob_id: str) -> bool:
        return tier in self.tiers and await self.tiers[tier].exists(blob_id)

    async def copy_to_tier(self, tier: str, blob_ids: Sequence[str]) -> None:
        """Durably copy backend blobs into ``tier`` (ids already there are kept)."""
        dst = self.tiers[tier]
        await asyncio.to_thread(self._copy_all, self._backend(), dst, blob_ids)

    async def copy_from_tier(self, tier: str, blob_ids: Sequence[str]) -> None:
        """Durably copy a tier's blobs back into the backend: the restored, temporary copy."""
        await asyncio.to_thread(self._copy_all, self.tiers[tier], self._backend(), blob_ids)

    async def drop_from_backend(self, tier: str, blob_ids: Sequence[str]) -> None:
        """Delete backend copies, but only of blobs whose bytes the tier holds."""
        safe = [b for b in blob_ids if await self.in_tier(tier, b)]
        await self.inner.delete(safe)

    def _backend(self) -> LocalBlobStore:
        if not isinstance(self.inner, LocalBlobStore):
            raise errors.NotImplementedError_("archive tiers need the local backend")
        return self.inner

    def _copy_all(self, src: LocalBlobStore, dst: LocalBlobStore, blob_ids: Sequence[str]) -> None:
        for blob_id in blob_ids:
            target = dst.path(blob_id)
            if target.exists():
                continue
            tmp = dst.tmp_dir / f"{blob_id}.{os.getpid()}.tmp"
            packed = src.read_small(blob_id)  # a small blob is a row, not a file: it lands as a file
            with open(tmp, "wb") as fout:
                if packed is not None:
                    fout.write(packed)
                else:
                    with open(src.path(blob_id), "rb") as fin:
                        while data := fin.read(1 << 20):
                            fout.write(data)
                fout.flush()
                if self.fsync:
                    os.fsync(fout.fileno())
            final_dir = dst.ensure_dir(blob_id[:2])
            os.rename(tmp, final_dir / blob_id)
            if self.fsync:
                dfd = os.open(final_dir, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
