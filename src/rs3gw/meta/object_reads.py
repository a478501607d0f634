"""A per-connection memo of object-row reads (HEAD, GET), valid while the database is unchanged.

Why: reading an object's row (the query, then decoding its row and metadata document) was the
largest single cost of a small HEAD on the event loop after the request's own parsing, and the
workloads this gateway is for read the same objects again and again (a dataset read every epoch,
a model's shards by every worker) while nothing is written.

Validity comes from SQLite itself: ``PRAGMA data_version`` on a connection changes whenever any other
connection, in this process or another (other workers, the CLI, a second gateway on the same
data directory), has committed to the database since it was last asked. It is read before the row
is, so a row kept under a version is never older than that version; any commit anywhere drops every
kept row. The pragma costs a third of the query it saves, and a miss costs only the pragma more.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

MAX_ENTRIES = 4096
# Longer keys are refused by S3 (1,024 bytes) and longer names are no bucket's: requests may carry
# anything, so answers for them are not kept (4,096 answers for 60 KB keys would be 250 MB).
MAX_KEY = 1024
MAX_BUCKET = 63
_MISS = object()
_DATA_VERSION = "PRAGMA data_version"


class ObjectReads:
    """One read connection's kept rows (the connection is one thread's: so is this)."""

    __slots__ = ("rows", "version")

    def __init__(self) -> None:
        self.version = -1
        self.rows: dict[tuple[str, bytes, str | None], Any] = {}

    def read(
        self,
        conn: sqlite3.Connection,
        bucket: str,
        key: bytes,
        version_id: str | None,
        load: Callable[[], Any],
    ) -> Any:
        """``load()``'s answer for this object, or the one kept since the database last changed."""
        if len(key) > MAX_KEY or len(bucket) > MAX_BUCKET:
            return load()
        version = conn.execute(_DATA_VERSION).fetchone()[0]
        ident = (bucket, key, version_id)
        if version != self.version:
            self.version = version
            self.rows = {}
        else:
            kept = self.rows.get(ident, _MISS)
            if kept is not _MISS:
                return kept
        value = load()
        rows = self.rows
        if len(rows) >= MAX_ENTRIES:
            rows.clear()
        rows[ident] = value
        return value
