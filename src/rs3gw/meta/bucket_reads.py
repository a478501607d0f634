"""A per-process memo of the bucket reads every request makes (the bucket row and its documents).

Why: authorization reads the bucket and its policy (and lifecycle, and for writes the encryption,
lock and compression documents) on every request, one SQLite query on the event loop each; for a
HEAD that was about a tenth of the server's CPU. These change rarely, so each process keeps what it
read and drops it all whenever ``<meta.db>-buckets``, a counter shared by every process of the data
directory (``rs3gw.shared_counter``), moves: every SQLite store bumps it after each write to a bucket
row or document commits, before the request that wrote it is answered. A process killed between its
commit and its bump leaves the others up to ``TTL`` behind, never longer.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from rs3gw.shared_counter import SharedCounter

log = logging.getLogger("rs3gw.meta")

TTL = 1.0  # seconds an entry is trusted without the counter moving: the backstop described above
MAX_ENTRIES = 4096
# Longer names are no bucket's (S3 allows 63 characters); requests may carry any name, so answers
# for such names are not kept: 4,096 kept answers for 100 KB names would be hundreds of MB.
MAX_NAME = 63
MISS = object()


class BucketReads:
    def __init__(self) -> None:
        self._counter: SharedCounter | None = None
        self._memo: dict[Any, tuple[int, float, Any]] = {}

    def open(self, db_path: Path) -> None:
        """Map the counter beside the database; without one (unwritable directory) nothing is kept."""
        try:
            self._counter = SharedCounter(db_path.with_name(db_path.name + "-buckets"), owner_like=db_path)
        except OSError as exc:
            log.warning("bucket read memo off: %s-buckets unusable (%s)", db_path, exc)
            self._counter = None

    def generation(self) -> int | None:
        """Read before a query: what the query's result is stored under."""
        return None if self._counter is None else self._counter.current()

    def get(self, key: Any, generation: int | None) -> Any:
        if generation is None:
            return MISS
        hit = self._memo.get(key)
        if hit is None or hit[0] != generation or time.monotonic() - hit[1] > TTL:
            return MISS
        return hit[2]

    def put(self, bucket: str, key: Any, generation: int | None, value: Any) -> None:
        if generation is None or len(bucket) > MAX_NAME:
            return
        if len(self._memo) >= MAX_ENTRIES:
            self._memo.clear()
        self._memo[key] = (generation, time.monotonic(), value)

    def changed(self) -> None:
        """After a write to a bucket row or document has committed (or failed: a spare bump costs
        nothing), before its caller hears of it: on the writer thread, so a write whose caller was
        cancelled meanwhile is still counted."""
        self._memo.clear()
        if self._counter is not None:
            try:
                self._counter.bump()
            except OSError as exc:
                log.warning("bucket read memo: could not bump %s (%s)", self._counter.path, exc)

    def close(self) -> None:
        self._memo.clear()
        if self._counter is not None:
            self._counter.close()
            self._counter = None
