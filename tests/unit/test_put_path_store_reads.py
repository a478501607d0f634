"""The small-PUT fast paths of the SQLite store and the local blob store.

- (``get_bucket_configs``, one query for a PutObject's documents, is checked on SQLite and
  PostgreSQL in test_bucket_with_config_read.py.)
- ``gc_done`` no longer commits on its own: its rows ride on the next group commit (or ``close``),
  yet this process sees them done at once and a reopened store finds them gone.
- Without fsync a small blob is written on the event loop: a row of ``smallblobs.db`` (no file, no
  thread hop); with packing off, a file whose absent temp file is the same as through the worker
  thread.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from rs3gw.blobs.local import INLINE_CLOSE_MAX, LocalBlobStore
from rs3gw.blobs.smallpack import SMALL_MAX, SmallPack
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import WriteCondition
from rs3gw.model import NULL_VERSION, Bucket, ObjectMeta, ObjectVersion, Segment


def _obj(key: str, blob: str) -> ObjectVersion:
    return ObjectVersion("b", key, NULL_VERSION, 1, "e", time.time(), ObjectMeta(), (Segment(blob, 1),), "o")


def test_gc_done_rides_on_next_commit_and_close(tmp_path: Path) -> None:
    path = tmp_path / "meta.db"
    a, b, c = "a" * 32, "b" * 32, "c" * 32

    async def main() -> None:
        s = SqliteStore(path, fsync=False)
        await s.open()
        try:
            await s.create_bucket(Bucket("b", "o", time.time(), "us-east-1"))
            await s.put_object(_obj("k", a), WriteCondition(), keep_old=False)
            assert await s.put_object(_obj("k", b), WriteCondition(), keep_old=False) == [a]
            assert await s.pending_gc() == [a] and await s.queued_blobs() == {a}
            await s.gc_done([a])
            # Done for this process at once, though no transaction has removed the row yet.
            assert await s.pending_gc() == [] and await s.queued_blobs() == set()
            raw = s._r.execute("SELECT blob_id FROM blob_gc").fetchall()
            assert raw == [(a,)]
            # The next write's commit carries the deletion.
            assert await s.put_object(_obj("k", c), WriteCondition(), keep_old=False) == [b]
            raw = s._r.execute("SELECT blob_id FROM blob_gc").fetchall()
            assert raw == [(b,)]
            await s.gc_done([b])  # left for close() to commit
        finally:
            await s.close()
        again = SqliteStore(path, fsync=False)
        await again.open()
        try:
            assert await again.pending_gc() == []
        finally:
            await again.close()

    asyncio.run(main())


def test_gc_done_commits_when_idle(tmp_path: Path) -> None:
    async def main() -> None:
        s = SqliteStore(tmp_path / "meta.db", fsync=False)
        await s.open()
        try:
            await s.create_bucket(Bucket("b", "o", time.time(), "us-east-1"))
            await s.put_object(_obj("k", "a" * 32), WriteCondition(), keep_old=False)
            await s.put_object(_obj("k", "b" * 32), WriteCondition(), keep_old=False)
            await s.gc_done(["a" * 32])
            deadline = time.monotonic() + 10
            while s._r.execute("SELECT count(*) FROM blob_gc").fetchone()[0]:
                assert time.monotonic() < deadline, "an idle store never committed gc_done"
                await asyncio.sleep(0.05)
        finally:
            await s.close()

    asyncio.run(main())


def test_small_blob_without_fsync_is_written_inline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without fsync a blob of at most SMALL_MAX becomes a row of smallblobs.db on the event loop
    (no file, no temp file, no thread hop); a larger one is a file written on a worker thread. With
    fsync the row is committed on the pack's writer thread. With packing off (small_max=0), a small
    blob is a file, and is still written inline."""

    def spy(pack: SmallPack) -> list[int]:
        """The threads that ran ``pack``'s writes."""
        threads: list[int] = []
        run = pack._run

        def traced(kind: str, items: list[tuple[str, bytes]] | list[str]) -> None:
            threads.append(threading.get_ident())
            run(kind, items)

        monkeypatch.setattr(pack, "_run", traced)
        return threads

    async def main() -> None:
        loop_thread = threading.get_ident()
        store = LocalBlobStore(tmp_path, fsync=False)
        row_writes = spy(store.small)
        assert INLINE_CLOSE_MAX >= SMALL_MAX  # whatever is not a row is past the inline limit too
        for size in (0, 4096, SMALL_MAX):
            w = store.new_writer()
            await w.write(b"x" * size)
            await w.close()
            assert store.read_small(w.blob_id) == b"x" * size  # a row ...
            assert not store.path(w.blob_id).exists()  # ... and no file
            assert w._in_thread is None  # type: ignore[attr-defined]  # no worker-thread hop
            assert b"".join([c async for c in store.read(w.blob_id)]) == b"x" * size
        assert row_writes == [loop_thread] * 3  # each row committed on the event loop itself
        assert store.small._pool is None  # the pack's writer thread was never started
        w = store.new_writer()
        await w.write(b"x" * (SMALL_MAX + 1))
        await w.close()
        assert store.path(w.blob_id).read_bytes() == b"x" * (SMALL_MAX + 1)
        assert store.read_small(w.blob_id) is None
        assert w._in_thread is not None  # type: ignore[attr-defined]  # over the inline limit
        assert list(store.tmp_dir.iterdir()) == []

        durable = LocalBlobStore(tmp_path / "d", fsync=True)
        durable_writes = spy(durable.small)
        w = durable.new_writer()
        await w.write(b"y" * 10)
        await w.close()
        assert durable.read_small(w.blob_id) == b"y" * 10
        assert not durable.path(w.blob_id).exists()
        assert len(durable_writes) == 1 and durable_writes[0] != loop_thread  # fsync: always off the loop

        files = LocalBlobStore(tmp_path / "f", fsync=False, small_max=0)  # packing off: files
        loop_thread_writes = 0
        for size in (1, 4096, INLINE_CLOSE_MAX, INLINE_CLOSE_MAX + 1):
            w = files.new_writer()
            await w.write(b"x" * size)
            await w.close()
            assert files.path(w.blob_id).read_bytes() == b"x" * size
            assert files.read_small(w.blob_id) is None
            loop_thread_writes += w._in_thread is None  # type: ignore[attr-defined]
        assert loop_thread_writes == 3  # all but the blob over the inline limit
        assert list(files.tmp_dir.iterdir()) == []

    asyncio.run(main())
