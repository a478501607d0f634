"""Reach under a test server into its metadata store, whichever one it runs on.

Tests that corrupt or inspect stored state read the ``objects`` table directly. Under
RS3GW_TEST_METADATA=postgresql the server of a data directory keeps that table in its own
PostgreSQL database (``pg_cluster.metadata_args``), not in ``DATA_DIR/meta.db``; the helpers here
open whichever store the server was started on, so such tests check the same thing in both modes.
Both schemas share table and column names; SQL written here must be portable between them (``?``
placeholders are translated for psycopg; compare booleans as ``WHERE is_latest``, not ``= 1``).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pg_cluster import server_metadata
from rs3gw.meta.dsn import split_params


class MetaDB:
    """One connection to a server's metadata database (SQLite file or PostgreSQL database)."""

    def __init__(self, data_dir: Path, *, read_only: bool = False) -> None:
        self.dsn = server_metadata(data_dir)
        self._conn: Any
        if self.dsn is None:
            db = data_dir / "meta.db"
            if read_only:
                self._conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            else:
                self._conn = sqlite3.connect(db, timeout=30)
        else:
            import psycopg

            self._conn = psycopg.connect(split_params(self.dsn)[0])

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.dsn is not None:
            sql = sql.replace("?", "%s")
        cur = self._conn.execute(sql, tuple(params))
        return list(cur.fetchall()) if cur.description else []

    def commit(self) -> None:
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()


@contextlib.contextmanager
def meta_db(data_dir: Path, *, read_only: bool = False) -> Iterator[MetaDB]:
    db = MetaDB(data_dir, read_only=read_only)
    try:
        yield db
        db.commit()
    finally:
        db.close()


def latest_segments(data_dir: Path, bucket: str, key: str) -> list[str]:
    """The blob ids of an object's latest version."""
    with meta_db(data_dir, read_only=True) as db:
        rows = db.execute(
            "SELECT segments FROM objects WHERE bucket=? AND key=? AND is_latest", (bucket, key.encode())
        )
    assert rows, f"no latest version of {bucket}/{key}"
    return [b for b, _ in json.loads(rows[0][0])]


def version_segments(data_dir: Path, key: str) -> dict[str, list[str]]:
    """Version id -> blob ids of every version of ``key`` (in any bucket)."""
    with meta_db(data_dir, read_only=True) as db:
        rows = db.execute("SELECT version_id, segments FROM objects WHERE key=?", (key.encode(),))
    return {vid: [b for b, _ in json.loads(segs)] for vid, segs in rows}


def set_recorded_checksum(data_dir: Path, key: str, algorithm: str, value: str) -> None:
    """Overwrite the checksum recorded for ``key`` (bytes intact, record wrong: the checksum path)."""
    with meta_db(data_dir) as db:
        rows = db.execute("SELECT bucket, seq, meta FROM objects WHERE key=?", (key.encode(),))
        assert rows, f"no object named {key!r}"
        for bucket, seq, meta in rows:
            doc = json.loads(meta)
            doc.setdefault("c", {})[algorithm] = value
            db.execute(
                "UPDATE objects SET meta=? WHERE bucket=? AND key=? AND seq=?",
                (json.dumps(doc), bucket, key.encode(), seq),
            )


def stored_metadata_bytes(data_dir: Path) -> bytes:
    """Everything the metadata store holds about objects, as bytes a secret must not appear in:
    the whole ``meta.db`` file for SQLite, every object row's text for PostgreSQL."""
    if server_metadata(data_dir) is None:
        return (data_dir / "meta.db").read_bytes()
    with meta_db(data_dir, read_only=True) as db:
        rows = db.execute("SELECT bucket, key, etag, meta, segments FROM objects")
    assert rows, "the metadata store holds no objects"
    return b"\n".join(
        bytes(c) if isinstance(c, bytes | memoryview) else str(c).encode() for r in rows for c in r
    )
