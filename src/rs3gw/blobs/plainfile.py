"""Zero-copy reads: find the file that holds a blob's bytes exactly as a client reads them.

A blob is plain when no layer transformed it: not a dedup manifest, not encrypted, not framed by
the compression layer, and it lives in a local directory. Each layer is asked about the *stored*
form in bottom-up order — encryption first, because the compression layer's own probe reads
through decryption and would call an encrypted-but-uncompressed blob plain (and for SSE-C it
cannot read it at all). The file's size must also equal the segment's logical size, a last guard
against serving a transformed blob raw.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from rs3gw.blobs.base import BlobStore
from rs3gw.blobs.compressed import CompressedBlobStore
from rs3gw.blobs.dedup import DedupBlobStore
from rs3gw.blobs.encrypted import EncryptedBlobStore
from rs3gw.blobs.local import READ_CHUNK, LocalBlobStore
from rs3gw.blobs.mmapread import mappable, mapped_chunks
from rs3gw.blobs.tiered import TieredBlobStore


@dataclass
class FileSpan:
    """An open blob file and the byte span to serve; open before the response starts, so a delete
    (an overwrite's GC) meanwhile only unlinks the name and the bytes stay readable."""

    file: BinaryIO
    offset: int
    count: int
    mmap: bool = False  # chunks() slices one mapping instead of a pread per chunk (blobs.mmapread)
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.file.close()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The ordinary read path, for servers (or TLS connections) without the zero-copy extension."""
        fd, pos, end = self.file.fileno(), self.offset, self.offset + self.count
        try:
            if self.mmap and mappable(fd, pos, self.count):
                for data in mapped_chunks(fd, pos, self.count, READ_CHUNK):
                    yield data
                return
            while pos < end:
                data = os.pread(fd, min(READ_CHUNK, end - pos), pos)
                if not data:
                    raise OSError("blob file is truncated")
                pos += len(data)
                yield data
        finally:
            self.close()


def _layers(store: BlobStore) -> list[BlobStore]:
    out = [store]
    while isinstance(inner := getattr(out[-1], "inner", None), BlobStore):
        out.append(inner)
    return out


async def plain_path(store: BlobStore, blob_id: str) -> Path | None:
    """The local file holding ``blob_id`` untransformed, or None when any layer changed the bytes."""
    layers = _layers(store)
    for layer in layers:
        if (
            isinstance(layer, DedupBlobStore)
            and await asyncio.to_thread(layer.index.manifest, blob_id) is not None
        ):
            return None
    for layer in reversed(layers):  # bottom-up: see the docstring
        if isinstance(layer, EncryptedBlobStore) and await layer.info(blob_id) is not None:
            return None
        if isinstance(layer, CompressedBlobStore) and await layer.info(blob_id) is not None:
            return None
    bottom = layers[-1]
    if isinstance(bottom, LocalBlobStore):
        path = bottom.path(blob_id)
        if path.exists():
            return path
        tiered = next((t for t in layers if isinstance(t, TieredBlobStore)), None)
        for tier in tiered.tiers.values() if tiered is not None else ():
            if isinstance(tier, LocalBlobStore) and await tier.exists(blob_id):
                return tier.path(blob_id)
    return None


async def open_span(
    store: BlobStore, blob_id: str, size: int, offset: int, count: int, mmap: bool = False
) -> FileSpan | None:
    """Open the blob's plain file for ``count`` bytes from ``offset``; None to take the normal path."""
    try:
        path = await plain_path(store, blob_id)
        if path is None:
            return None
        fh = open(path, "rb", buffering=0)  # noqa: SIM115 - owned by the FileSpan
    except Exception:  # anything odd about the blob: the layered read reports it properly
        return None
    if os.fstat(fh.fileno()).st_size != size:
        fh.close()
        return None
    return FileSpan(fh, offset, count, mmap)
