"""Reach under a test server into its metadata store, whichever one it runs on.

Tests that corrupt or inspect stored state read the ``objects`` table directly. Under
RS3GW_TEST_METADATA=postgresql the server of a data directory keeps that table in its own
PostgreSQL database (``pg_cluster.metadata_args``), not in ``DATA_DIR/meta.db``; the helpers here
open whichever store the server was started on, so such tests check the same thing in both modes.
Both schemas share table and column names; SQL written here must be portable between them (``?``
placeholders are translated for psycopg; compare booleans as ``WHERE is_latest``, not ``= 1``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pg_cluster import server_metadata
from rs3gw.meta.dsn import split_params
from rs3gw.meta.store import MetadataStore


class MetaDB:
    """One connection to a server's metadata database (SQLite file or PostgreSQL database).
    ``sqlite_db``: a copy of the server's ``meta.db`` to open instead of ``DATA_DIR/meta.db``."""

    def __init__(self, data_dir: Path, *, read_only: bool = False, sqlite_db: Path | None = None) -> None:
        self.dsn = server_metadata(data_dir)
        self._conn: Any
        if self.dsn is None:
            db = sqlite_db or data_dir / "meta.db"
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
def meta_db(data_dir: Path, *, read_only: bool = False, sqlite_db: Path | None = None) -> Iterator[MetaDB]:
    db = MetaDB(data_dir, read_only=read_only, sqlite_db=sqlite_db)
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


def integrity_problems(data_dir: Path, *, sqlite_db: Path | None = None) -> list[str]:
    """What is wrong with the stored metadata itself, [] when nothing: SQLite's own
    ``PRAGMA integrity_check``; on PostgreSQL (no such check; pages are its business) every object
    row must still hold a well-formed segment list."""
    with meta_db(data_dir, read_only=True, sqlite_db=sqlite_db) as db:
        if db.dsn is None:
            return [str(r[0]) for r in db.execute("PRAGMA integrity_check") if r[0] != "ok"]
        bad: list[str] = []
        for bucket, key, segments in db.execute("SELECT bucket, key, segments FROM objects"):
            try:
                assert all(isinstance(b, str) and int(n) >= 0 for b, n in json.loads(segments))
            except (ValueError, TypeError, AssertionError) as exc:
                bad.append(f"{bucket}/{bytes(key)!r}: segments {segments!r}: {exc!r}")
        return bad


def dedup_chunk_counts(data_dir: Path) -> tuple[int, int]:
    """(chunks, chunk blobs queued for deletion) in the dedup chunk index of the server of
    ``data_dir``: the ``dedup_*`` tables of its PostgreSQL database, else ``DATA_DIR/dedup.db``."""
    dsn = server_metadata(data_dir)
    if dsn is not None:
        import psycopg

        with psycopg.connect(split_params(dsn)[0]) as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM dedup_chunks), (SELECT count(*) FROM dedup_chunk_gc)"
            ).fetchone()
    else:
        index = data_dir / "dedup.db"
        assert index.exists(), f"no chunk index at {index}"
        db = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
        try:
            row = db.execute(
                "SELECT (SELECT count(*) FROM chunks), (SELECT count(*) FROM chunk_gc)"
            ).fetchone()
        finally:
            db.close()
    assert row is not None
    return int(row[0]), int(row[1])


def open_store(data_dir: Path, *, sqlite_db: Path | None = None) -> MetadataStore:
    """The ``MetadataStore`` the server of ``data_dir`` runs on (not yet opened): its PostgreSQL
    database, else its ``meta.db`` (or ``sqlite_db``, a copy of it taken where the server's own
    file cannot be reached, e.g. inside another mount namespace)."""
    dsn = server_metadata(data_dir)
    if dsn is not None:
        from rs3gw.meta.postgres import PostgresStore

        return PostgresStore(dsn, max_size=2)
    from rs3gw.meta.sqlite import SqliteStore

    return SqliteStore(sqlite_db or data_dir / "meta.db")


def referenced_blobs(data_dir: Path, *, sqlite_db: Path | None = None) -> set[str]:
    """Every blob id the server's metadata references (object versions and uploaded parts), asked
    of the store itself, so an orphan-blob check means the same over SQLite and PostgreSQL."""
    if server_metadata(data_dir) is None:
        db = sqlite_db or data_dir / "meta.db"
        assert db.exists(), f"no metadata database at {db}"  # SqliteStore would make an empty one

    async def run() -> set[str]:
        store = open_store(data_dir, sqlite_db=sqlite_db)
        await store.open()
        try:
            return await store.referenced_blobs()
        finally:
            await store.close()

    return asyncio.run(run())


def postgres_database_bytes(dsn: str) -> bytes:
    """Every value of every table in the PostgreSQL database ``dsn`` names, as bytes a secret must
    not appear in: ``bytea`` values raw (a dump's hex would hide a plaintext secret), everything
    else as its text form, one value per line."""
    import psycopg
    from psycopg import sql

    out: list[bytes] = []
    with psycopg.connect(split_params(dsn)[0]) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        assert tables, f"no tables in {dsn}"
        for schema, table in tables:
            ident = sql.Identifier(schema, table)
            for row in conn.execute(sql.SQL("SELECT * FROM {}").format(ident)):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        out.append(bytes(value))
                    elif isinstance(value, dict | list):
                        out.append(json.dumps(value).encode())
                    elif value is not None:
                        out.append(str(value).encode())
    return b"\n".join(out)


def dedup_chunk_blobs(
    data_dir: Path, where: str = "", params: Sequence[Any] = (), *, dsn: str | None = None
) -> list[str]:
    """Blob ids of dedup chunks (``SELECT blob_id FROM chunks [WHERE ...]``, ``?`` placeholders;
    columns hash, blob_id, size, refs) in the chunk index of the server of ``data_dir``: the
    ``dedup_chunks`` table of its PostgreSQL database (``dsn`` when the test chose the database
    itself), else ``DATA_DIR/dedup.db``."""
    dsn = dsn or server_metadata(data_dir)
    clause = f" WHERE {where}" if where else ""
    if dsn is not None:
        import psycopg

        with psycopg.connect(split_params(dsn)[0]) as conn:
            sql = f"SELECT blob_id FROM dedup_chunks{clause}".replace("?", "%s")
            rows = conn.execute(sql, tuple(params)).fetchall()  # type: ignore[arg-type]
    else:
        db = sqlite3.connect(f"file:{data_dir / 'dedup.db'}?mode=ro", uri=True)
        try:
            rows = db.execute(f"SELECT blob_id FROM chunks{clause}", tuple(params)).fetchall()
        finally:
            db.close()
    return [str(r[0]) for r in rows]
