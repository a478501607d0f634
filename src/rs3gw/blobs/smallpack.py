"""Small blobs of the local backend packed as rows of one SQLite file (``DATA/smallblobs.db``).

Why: a blob file costs an inode. On ext4 a create after many deletes scans the inode bitmap past
every recently freed inode, and each small PUT that overwrites a key creates one file and frees
another: on the benchmark box that was ~1.5 ms of kernel time per 4 KiB PUT, more than the whole
request's Python. A row costs none of that, and concurrent writers share one WAL commit (one fsync
for a batch, where a file needs two: the file and its directory). MinIO inlines small objects in
its metadata file for the same reason.

Blob ids stay random hex; where a blob lives is found by trying its file first (one failed open, a
couple of µs), so reads of large blobs pay nothing. Crash safety is the file path's: a row is
committed (and, with fsync, on disk) before ``close`` returns, so metadata never points at a blob
that is not there; a row left by a crash before the metadata commit is an orphan, swept like a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import sqlite3
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rs3gw import errors
from rs3gw.write_turn import WriteTurn

SMALL_MAX = 32 << 10  # blobs up to this size (never flushed to a file before close) become rows

_Job = tuple[str, list[tuple[str, bytes]] | list[str], "asyncio.Future[None]", asyncio.AbstractEventLoop]


def _full(e: BaseException) -> bool:
    if isinstance(e, sqlite3.Error):
        return getattr(e, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL
    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)


class SmallPack:
    """The rows. Reads use a per-thread connection (the event loop's, fsck's, a tier copy's);
    writes go through one connection: inline without fsync (a page-cache commit is tens of µs,
    less than a thread hop), on one writer thread with fsync, where every queued write shares the
    commit's fsync."""

    def __init__(self, path: Path, fsync: bool) -> None:
        self.path = path
        self.fsync = fsync
        self._local = threading.local()
        self._wlock = threading.Lock()  # the write connection; held through a commit (and its fsync)
        self._qlock = threading.Lock()  # the queue and the draining flag only: never held across I/O
        self._turn = WriteTurn(path)  # the other worker processes' writers to this file
        self._w = self._connect()
        self._w.execute("CREATE TABLE IF NOT EXISTS small (blob_id TEXT PRIMARY KEY, data BLOB NOT NULL)")
        self._queue: deque[_Job] = deque()
        self._draining = False
        self._pool: ThreadPoolExecutor | None = None

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if self.fsync else 'OFF'}")
        return conn

    def _r(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def get(self, blob_id: str) -> bytes | None:
        row = self._r().execute("SELECT data FROM small WHERE blob_id=?", (blob_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def size(self, blob_id: str) -> int | None:
        row = self._r().execute("SELECT length(data) FROM small WHERE blob_id=?", (blob_id,)).fetchone()
        return None if row is None else int(row[0])

    def held(self, blob_ids: Sequence[str]) -> list[str]:
        """Which of ``blob_ids`` are rows here."""
        out: list[str] = []
        for i in range(0, len(blob_ids), 500):
            part = list(blob_ids[i : i + 500])
            marks = ",".join("?" * len(part))
            sql = f"SELECT blob_id FROM small WHERE blob_id IN ({marks})"
            out += [r[0] for r in self._r().execute(sql, part)]
        return out

    def ids(self) -> list[str]:
        return [r[0] for r in self._r().execute("SELECT blob_id FROM small ORDER BY blob_id")]

    def replace_sync(self, blob_id: str, data: bytes) -> None:
        """Overwrite a row in place (key rotation re-wraps a header); durable when fsync is on."""
        with self._wlock, self._turn:
            self._w.execute("UPDATE small SET data=? WHERE blob_id=?", (data, blob_id))

    async def put(self, blob_id: str, data: bytes) -> None:
        await self._apply("put", [(blob_id, data)])

    async def delete(self, blob_ids: Sequence[str]) -> None:
        await self._apply("delete", list(blob_ids))

    async def _apply(self, kind: str, items: list[tuple[str, bytes]] | list[str]) -> None:
        if not self.fsync:
            try:
                with self._wlock, self._turn:
                    self._run(kind, items)
            except (sqlite3.Error, OSError) as e:
                raise self._error(e) from None
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        # The event loop must not wait for a commit in progress here: ``_qlock``, not ``_wlock``.
        with self._qlock:
            self._queue.append((kind, items, fut, loop))
            start, self._draining = not self._draining, True
        if start:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="rs3gw-smallpack")
            self._pool.submit(self._drain)
        await fut

    def _run(self, kind: str, items: list[tuple[str, bytes]] | list[str]) -> None:
        if kind == "put":
            self._w.executemany("INSERT OR REPLACE INTO small VALUES (?, ?)", items)
        else:
            self._w.executemany("DELETE FROM small WHERE blob_id=?", [(b,) for b in items])

    def _drain(self) -> None:
        """Writer thread: everything queued goes in one transaction, one commit, one fsync."""
        while True:
            with self._qlock:
                if not self._queue:
                    self._draining = False
                    return
                batch = list(self._queue)
                self._queue.clear()
            outcome: BaseException | None = None
            with self._wlock, self._turn:
                try:
                    self._w.execute("BEGIN IMMEDIATE")
                    for kind, items, _, _ in batch:
                        self._run(kind, items)
                    self._w.execute("COMMIT")
                except (sqlite3.Error, OSError) as e:
                    outcome = self._error(e)
                    if self._w.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            self._w.execute("ROLLBACK")
            for _, _, fut, loop in batch:
                with contextlib.suppress(RuntimeError):  # that caller's loop is gone: nobody waits
                    loop.call_soon_threadsafe(_settle, fut, outcome)

    @staticmethod
    def _error(e: BaseException) -> BaseException:
        return errors.InsufficientStorage() if _full(e) else e

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        with self._wlock:
            self._w.close()
            self._turn.close()


def _settle(fut: asyncio.Future[None], outcome: BaseException | None) -> None:
    if fut.cancelled():
        return
    if outcome is None:
        fut.set_result(None)
    else:
        fut.set_exception(outcome)
