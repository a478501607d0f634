"""A small in-memory LRU of transformation results, bounded in bytes (one per server process).

Keys hold the source object's identity (bucket, key, version, ETag) and the canonical chain, so
an overwritten object never serves a stale result; entries over a quarter of the budget are not kept.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    body: bytes
    content_type: str


CacheKey = tuple[str, ...]


class ResultCache:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[CacheKey, Result] = OrderedDict()

    def get(self, key: CacheKey) -> Result | None:
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item

    def put(self, key: CacheKey, result: Result) -> bool:
        """Whether it was kept."""
        n = len(result.body)
        if n > self.max_bytes // 4:
            return False
        old = self._items.pop(key, None)
        if old is not None:
            self.size -= len(old.body)
        self._items[key] = result
        self.size += n
        while self.size > self.max_bytes:
            _, gone = self._items.popitem(last=False)
            self.size -= len(gone.body)
        return True

    def __len__(self) -> int:
        return len(self._items)
