"""Sizes and first bytes of blobs a gateway just wrote, for the cloud backends (S3, GCS, Azure).

Blobs are immutable and ids never reused, so what this gateway wrote stays true: the layers above
probe a blob's size and header (compression, encryption) on every read, and answering those from
memory saves two upstream round trips per GET of a fresh object. Bounded, least recently written out.
"""

from __future__ import annotations

from collections import OrderedDict

HEAD_BYTES = 64
HEAD_CACHE = 16384


class HeadCache:
    def __init__(self, capacity: int = HEAD_CACHE) -> None:
        self.capacity = capacity
        self._heads: OrderedDict[str, tuple[int, bytes]] = OrderedDict()

    def remember(self, blob_id: str, size: int, head: bytes) -> None:
        if self.capacity <= 0:
            return
        self._heads[blob_id] = (size, head[:HEAD_BYTES])
        if len(self._heads) > self.capacity:
            self._heads.popitem(last=False)

    def forget(self, blob_id: str) -> None:
        self._heads.pop(blob_id, None)

    def size(self, blob_id: str) -> int | None:
        got = self._heads.get(blob_id)
        return None if got is None else got[0]

    def range(self, blob_id: str, offset: int, length: int | None) -> bytes | None:
        """The range from memory, when it lies within the bytes remembered."""
        got = self._heads.get(blob_id)
        if got is None:
            return None
        size, head = got
        end = size if length is None else offset + length
        if end > len(head) or end > size:
            return None
        return head[offset:end]
