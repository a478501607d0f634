"""The SQLite chunk index: ``DATA_DIR/dedup.db``, shared by the processes of one data directory.

Writers are told apart by pid (a dead pid's writer is rolled back), so every user of the file must
run on this machine: with PostgreSQL metadata the index lives in PostgreSQL instead
(``chunk_index_pg``), where gateways on several machines see one chunk table.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from rs3gw.blobs.chunk_index import IndexTotals
from rs3gw.blobs.local import pid_alive

R = TypeVar("R")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (hash BLOB PRIMARY KEY, blob_id TEXT NOT NULL,
    size INTEGER NOT NULL, refs INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS manifests (blob_id TEXT PRIMARY KEY, size INTEGER NOT NULL,
    count INTEGER NOT NULL, released INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS writers (writer TEXT PRIMARY KEY, pid INTEGER NOT NULL, started REAL NOT NULL);
CREATE TABLE IF NOT EXISTS writer_refs (writer TEXT NOT NULL, hash BLOB NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (writer, hash)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS writer_blobs (writer TEXT NOT NULL, blob_id TEXT NOT NULL,
    PRIMARY KEY (writer, blob_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chunk_gc (blob_id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS manifest_refs (blob_id TEXT NOT NULL, hash BLOB NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (blob_id, hash)) WITHOUT ROWID;
"""


class SqliteChunkIndex:
    """The chunk table, manifests and in-flight writers; every change is one SQLite transaction.

    Invariant: ``chunks.refs`` = references from committed manifests (minus those already
    released) + references held by live writers (``writer_refs``). A chunk is unlinked from the
    table in the same transaction that drops its count to zero, and its blob queued in ``chunk_gc``.
    A manifest committed with ``tracked`` set has its unreleased references as ``manifest_refs``
    rows (chunk_index.py says why); older manifests have none and are released from their bytes.
    """

    kind = "sqlite"

    def __init__(self, path: Path, fsync: bool = True) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'OFF'}")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._txn(_add_tracked)
        self.active: set[str] = set()

    def close(self) -> None:
        self._db.close()

    def _txn(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        # The lock only shares one connection between this process's threads; other processes
        # serialise on BEGIN IMMEDIATE (SQLite's write lock).
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return out

    def query(self, sql: str, args: Sequence[object] = ()) -> list[tuple[object, ...]]:
        """Raw reads of this file's tables (module-internal; callers use the named methods)."""
        with self._lock:
            return list(self._db.execute(sql, args))

    # -- writers ---------------------------------------------------------------------------------
    def begin_writer(self, writer: str) -> None:
        self.active.add(writer)
        self._txn(
            lambda c: c.execute("INSERT INTO writers VALUES (?,?,?)", (writer, os.getpid(), time.time()))
        )

    def take_refs(self, writer: str, counts: Counter[bytes]) -> list[bytes]:
        """Pin chunks already stored (one ref per use); returns the hashes that must be written."""

        def run(c: sqlite3.Connection) -> list[bytes]:
            missing = []
            for h, n in counts.items():
                if c.execute("UPDATE chunks SET refs=refs+? WHERE hash=?", (n, h)).rowcount:
                    _add_writer_ref(c, writer, h, n)
                else:
                    missing.append(h)
            return missing

        return self._txn(run)

    def add_intents(self, writer: str, blob_ids: Iterable[str]) -> None:
        """Record blobs before they exist, so a crash mid-write leaves nothing unaccounted for."""
        rows = [(writer, b) for b in blob_ids]
        self._txn(lambda c: c.executemany("INSERT OR IGNORE INTO writer_blobs VALUES (?,?)", rows))

    def publish(self, writer: str, new: Sequence[tuple[bytes, str, int, int]]) -> list[str]:
        """Insert freshly written chunks; a concurrent writer may have won: ours become garbage."""

        def run(c: sqlite3.Connection) -> list[str]:
            dupes = []
            for h, blob_id, size, n in new:
                if c.execute("UPDATE chunks SET refs=refs+? WHERE hash=?", (n, h)).rowcount:
                    dupes.append(blob_id)
                else:
                    c.execute("INSERT INTO chunks VALUES (?,?,?,?)", (h, blob_id, size, n))
                    c.execute("DELETE FROM writer_blobs WHERE writer=? AND blob_id=?", (writer, blob_id))
                _add_writer_ref(c, writer, h, n)
            return dupes

        return self._txn(run)

    def commit_manifest(self, writer: str, blob_id: str, size: int, count: int) -> None:
        """The writer's refs become the manifest's, atomically."""

        def run(c: sqlite3.Connection) -> None:
            c.execute(
                "INSERT INTO manifests (blob_id, size, count, tracked) VALUES (?,?,?,1)",
                (blob_id, size, count),
            )
            # The writer's refs are exactly the manifest's (one per record): kept, re-keyed.
            c.execute(
                "INSERT INTO manifest_refs SELECT ?, hash, n FROM writer_refs WHERE writer=?",
                (blob_id, writer),
            )
            _drop_writer(c, writer)

        self._txn(run)
        self.active.discard(writer)

    def end_writer(self, writer: str) -> list[str]:
        """Abort: release the writer's refs; returns blobs to delete (also queued in chunk_gc)."""
        out = self._txn(lambda c: _rollback_writer(c, writer))
        self.active.discard(writer)
        return out

    def stale_writers(self, at_start: bool) -> list[str]:
        rows = self.query("SELECT writer, pid FROM writers")
        me = os.getpid()
        return [
            str(w)
            for w, pid in rows
            if (pid == me and (at_start or w not in self.active)) or (pid != me and not pid_alive(int(pid)))  # type: ignore[call-overload]
        ]

    # -- manifests -------------------------------------------------------------------------------
    def manifest(self, blob_id: str) -> tuple[int, int, int] | None:
        rows = self.query("SELECT size, count, released FROM manifests WHERE blob_id=?", (blob_id,))
        return (int(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else None  # type: ignore[call-overload]

    def release(self, blob_id: str, start: int, hashes: Sequence[bytes]) -> list[str]:
        """Drop one batch of a manifest's refs, resumable after a crash (``released`` advances)."""

        def run(c: sqlite3.Connection) -> list[str]:
            row = c.execute("SELECT released, tracked FROM manifests WHERE blob_id=?", (blob_id,)).fetchone()
            if row is None or row[0] != start:
                return []
            counts = Counter(hashes)
            if row[1]:
                counts = _take_manifest_refs(c, blob_id, counts)
            freed = [b for h, n in counts.items() if (b := _unref(c, h, n))]
            c.execute("UPDATE manifests SET released=? WHERE blob_id=?", (start + len(hashes), blob_id))
            return freed

        return self._txn(run)

    def tracks_refs(self, blob_id: str) -> bool:
        rows = self.query("SELECT tracked FROM manifests WHERE blob_id=?", (blob_id,))
        return bool(rows and rows[0][0])

    def held_refs(self, blob_id: str) -> dict[bytes, int] | None:
        # One statement, so the flag and the rows are one snapshot (a release may run meanwhile).
        rows = self.query(
            "SELECT m.tracked, r.hash, r.n FROM manifests m LEFT JOIN manifest_refs r "
            "ON r.blob_id = m.blob_id WHERE m.blob_id=?",
            (blob_id,),
        )
        if not rows or not rows[0][0]:
            return None
        return {bytes(h): int(n) for _, h, n in rows if h is not None}  # type: ignore[call-overload]

    def drop_manifest(self, blob_id: str) -> list[str]:
        def run(c: sqlite3.Connection) -> list[str]:
            left = c.execute(
                "DELETE FROM manifest_refs WHERE blob_id=? RETURNING hash, n", (blob_id,)
            ).fetchall()
            freed = [b for h, n in left if (b := _unref(c, h, n))]
            c.execute("DELETE FROM manifests WHERE blob_id=?", (blob_id,))
            c.execute("INSERT OR IGNORE INTO chunk_gc VALUES (?)", (blob_id,))
            return freed

        return self._txn(run)

    def blob_ids(self, hashes: Sequence[bytes]) -> dict[bytes, str]:
        out: dict[bytes, str] = {}
        uniq = list(set(hashes))
        for i in range(0, len(uniq), 500):
            part = uniq[i : i + 500]
            sql = f"SELECT hash, blob_id FROM chunks WHERE hash IN ({','.join('?' * len(part))})"
            out.update((bytes(h), str(b)) for h, b in self.query(sql, part))  # type: ignore[call-overload]
        return out

    def manifest_ids(self) -> list[str]:
        return [str(r[0]) for r in self.query("SELECT blob_id FROM manifests")]

    def protected_ids(self) -> set[str]:
        """Inner blobs that are not outer blobs: chunks, queued garbage, writers' intents, manifests."""
        sql = (
            "SELECT blob_id FROM chunks UNION ALL SELECT blob_id FROM chunk_gc "
            "UNION ALL SELECT blob_id FROM writer_blobs UNION ALL SELECT blob_id FROM manifests"
        )
        return {str(r[0]) for r in self.query(sql)}

    def chunk_blob_ids(self) -> set[str]:
        return {str(r[0]) for r in self.query("SELECT blob_id FROM chunks")}

    def private_ids(self) -> set[str]:
        rows = self.query("SELECT blob_id FROM chunk_gc UNION ALL SELECT blob_id FROM writer_blobs")
        return {str(r[0]) for r in rows}

    def chunk_refs(self) -> list[tuple[bytes, int]]:
        return [(bytes(h), int(n)) for h, n in self.query("SELECT hash, refs FROM chunks")]  # type: ignore[call-overload]

    def writer_refs(self) -> list[tuple[bytes, int]]:
        return [(bytes(h), int(n)) for h, n in self.query("SELECT hash, n FROM writer_refs")]  # type: ignore[call-overload]

    # -- garbage ---------------------------------------------------------------------------------
    def pending_gc(self) -> list[str]:
        return [str(r[0]) for r in self.query("SELECT blob_id FROM chunk_gc LIMIT 1000")]

    def gc_done(self, blob_ids: Sequence[str]) -> None:
        self._txn(lambda c: c.executemany("DELETE FROM chunk_gc WHERE blob_id=?", [(b,) for b in blob_ids]))

    def totals(self) -> IndexTotals:
        m = self.query("SELECT count(*), coalesce(sum(size),0) FROM manifests")[0]
        c = self.query("SELECT count(*), coalesce(sum(size),0) FROM chunks")[0]
        return IndexTotals(int(m[0]), int(m[1]), int(c[0]), int(c[1]))  # type: ignore[call-overload]

    def set_refs(self, fixes: dict[bytes, int]) -> list[str]:
        """fsck: force refcounts; chunks that nothing references are unlinked and queued."""

        def run(c: sqlite3.Connection) -> list[str]:
            _untrack_below(c, fixes)
            freed = []
            for h, n in fixes.items():
                if n > 0:
                    c.execute("UPDATE chunks SET refs=? WHERE hash=?", (n, h))
                else:
                    row = c.execute("DELETE FROM chunks WHERE hash=? RETURNING blob_id", (h,)).fetchone()
                    if row:
                        c.execute("INSERT OR IGNORE INTO chunk_gc VALUES (?)", (row[0],))
                        freed.append(str(row[0]))
            return freed

        return self._txn(run)

    def swap_chunk(self, h: bytes, old_blob: str, new_blob: str) -> bool:
        """Scrub repair: the chunk's bytes now live in ``new_blob``; the damaged ``old_blob`` is
        queued for deletion. False (nothing changed) when the chunk moved or went meanwhile."""

        def run(c: sqlite3.Connection) -> bool:
            if not c.execute(
                "UPDATE chunks SET blob_id=? WHERE hash=? AND blob_id=?", (new_blob, h, old_blob)
            ).rowcount:
                return False
            c.execute("INSERT OR IGNORE INTO chunk_gc VALUES (?)", (old_blob,))
            return True

        return self._txn(run)


def _add_tracked(c: sqlite3.Connection) -> None:
    """A dedup.db written before manifests recorded their refs: its manifests are untracked."""
    if "tracked" not in {str(r[1]) for r in c.execute("PRAGMA table_info(manifests)")}:
        c.execute("ALTER TABLE manifests ADD COLUMN tracked INTEGER NOT NULL DEFAULT 0")


def _add_writer_ref(c: sqlite3.Connection, writer: str, h: bytes, n: int) -> None:
    c.execute(
        "INSERT INTO writer_refs VALUES (?,?,?) ON CONFLICT (writer, hash) DO UPDATE SET n=n+excluded.n",
        (writer, h, n),
    )


def _take_manifest_refs(c: sqlite3.Connection, blob_id: str, counts: Counter[bytes]) -> Counter[bytes]:
    """Of the references a batch of a tracked manifest's records names, those the manifest really
    holds (its ``manifest_refs`` rows, which shrink by as many): a hash read from damaged bytes
    that the manifest never held releases nothing, not even a chunk some other manifest holds."""
    out: Counter[bytes] = Counter()
    for h, n in counts.items():
        row = c.execute("SELECT n FROM manifest_refs WHERE blob_id=? AND hash=?", (blob_id, h)).fetchone()
        if row is None:
            continue
        take = min(n, int(row[0]))
        out[h] = take
        if take == row[0]:
            c.execute("DELETE FROM manifest_refs WHERE blob_id=? AND hash=?", (blob_id, h))
        else:
            c.execute("UPDATE manifest_refs SET n=n-? WHERE blob_id=? AND hash=?", (take, blob_id, h))
    return out


def _untrack_below(c: sqlite3.Connection, fixes: dict[bytes, int]) -> None:
    """fsck counts references from manifest bytes. Where that count is below what the index records
    (tracked manifests' rows and writers), some tracked manifest's bytes are damaged: the manifests
    holding rows of such a chunk fall back to being released from their bytes, as fsck counted
    them, so the forced count and later releases agree (rows released on top of a count that
    already left them out would free a chunk a good manifest still holds). One pass over both
    tables (fsck repair only; neither is keyed by hash first)."""
    held: Counter[bytes] = Counter()
    for table in ("manifest_refs", "writer_refs"):
        for h, n in c.execute(f"SELECT hash, n FROM {table}"):
            if bytes(h) in fixes:
                held[bytes(h)] += int(n)
    below = {h for h, n in held.items() if fixes[h] < n}
    if not below:
        return
    ms = {str(b) for b, h in c.execute("SELECT blob_id, hash FROM manifest_refs") if bytes(h) in below}
    for b in ms:
        c.execute("UPDATE manifests SET tracked=0 WHERE blob_id=?", (b,))
        c.execute("DELETE FROM manifest_refs WHERE blob_id=?", (b,))


def _unref(c: sqlite3.Connection, h: bytes, n: int) -> str | None:
    c.execute("UPDATE chunks SET refs=refs-? WHERE hash=?", (n, h))
    row = c.execute("DELETE FROM chunks WHERE hash=? AND refs<=0 RETURNING blob_id", (h,)).fetchone()
    if row is None:
        return None
    c.execute("INSERT OR IGNORE INTO chunk_gc VALUES (?)", (row[0],))
    return str(row[0])


def _drop_writer(c: sqlite3.Connection, writer: str) -> None:
    for table in ("writer_refs", "writer_blobs", "writers"):
        c.execute(f"DELETE FROM {table} WHERE writer=?", (writer,))


def _rollback_writer(c: sqlite3.Connection, writer: str) -> list[str]:
    refs = list(c.execute("SELECT hash, n FROM writer_refs WHERE writer=?", (writer,)))
    freed = [b for h, n in refs if (b := _unref(c, h, n))]
    for (b,) in c.execute("SELECT blob_id FROM writer_blobs WHERE writer=?", (writer,)).fetchall():
        c.execute("INSERT OR IGNORE INTO chunk_gc VALUES (?)", (b,))
        freed.append(str(b))
    _drop_writer(c, writer)
    return freed


def holds_state(path: Path) -> bool:
    """Whether the ``dedup.db`` at ``path`` records anything (chunks, manifests, writers, queued
    garbage): a data directory moved to PostgreSQL metadata must not silently drop those chunks."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    try:
        for table in ("manifests", "chunks", "writers", "chunk_gc"):
            try:
                if db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
                    return True
            except sqlite3.OperationalError:  # no such table: an empty file
                continue
        return False
    finally:
        db.close()
