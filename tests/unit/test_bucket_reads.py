"""The bucket read memo of the SQLite store: another process's change is seen by the next read."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from rs3gw import errors
from rs3gw.meta import bucket_reads
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.model import Bucket
from rs3gw.shared_counter import SharedCounter

NAMES = ("policy", "lifecycle")


def _with_stores(path: Path, n: int, body: Callable[..., Awaitable[None]]) -> None:
    """Run ``body`` with ``n`` stores open on one database, as ``n`` worker processes have."""

    async def main() -> None:
        stores = [SqliteStore(path, fsync=False) for _ in range(n)]
        for store in stores:
            await store.open()
        try:
            await body(*stores)
        finally:
            for store in stores:
                await store.close()

    asyncio.run(main())


def test_a_change_in_one_store_is_read_by_the_other(tmp_path: Path) -> None:
    async def body(a: SqliteStore, b: SqliteStore) -> None:
        assert await a.get_bucket_with_configs("bkt", NAMES) == (None, (None, None))
        await b.create_bucket(Bucket("bkt", "owner", time.time(), "us-east-1"))
        rec, docs = await a.get_bucket_with_configs("bkt", NAMES)
        assert rec is not None and rec.versioning == "" and docs == (None, None)
        assert await a.get_bucket_config("bkt", "policy") is None

        await b.put_bucket_config("bkt", "policy", '{"v": 1}')
        assert (await a.get_bucket_with_configs("bkt", NAMES))[1] == ('{"v": 1}', None)
        assert await a.get_bucket_with_config("bkt", "policy") == (rec, '{"v": 1}')
        assert await a.get_bucket_config("bkt", "policy") == '{"v": 1}'

        await b.set_versioning("bkt", "Enabled")
        rec2, _ = await a.get_bucket_with_configs("bkt", NAMES)
        assert rec2 is not None and rec2.versioning == "Enabled"

        await b.put_bucket_config("bkt", "policy", None)
        assert await a.get_bucket_config("bkt", "policy") is None
        await b.delete_bucket("bkt")
        assert await a.get_bucket_with_configs("bkt", NAMES) == (None, (None, None))
        # A failed write bumps too (harmless), and nothing it did not do is seen.
        with pytest.raises(errors.NoSuchBucket):
            await b.put_bucket_config("bkt", "policy", "{}")
        assert await a.get_bucket_config("bkt", "policy") is None

    _with_stores(tmp_path / "meta.db", 2, body)


def test_repeated_reads_are_answered_from_memory(tmp_path: Path) -> None:
    async def body(a: SqliteStore, b: SqliteStore) -> None:
        await b.create_bucket(Bucket("bkt", "owner", time.time(), "us-east-1"))
        first = await a.get_bucket_with_configs("bkt", NAMES)
        # Changed behind the stores' back (no bump): the memo answers until its TTL runs out.
        with sqlite3.connect(tmp_path / "meta.db") as conn:
            conn.execute("INSERT INTO bucket_config VALUES ('bkt', 'policy', 'sneaked')")
        assert await a.get_bucket_with_configs("bkt", NAMES) == first

    _with_stores(tmp_path / "meta.db", 2, body)


def test_a_missed_bump_is_stale_for_at_most_the_ttl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process killed between its commit and its bump: the others catch up within TTL."""
    monkeypatch.setattr(bucket_reads, "TTL", 0.2)

    async def body(a: SqliteStore, b: SqliteStore) -> None:
        await b.create_bucket(Bucket("bkt", "owner", time.time(), "us-east-1"))
        assert (await a.get_bucket_with_configs("bkt", NAMES))[1] == (None, None)
        with sqlite3.connect(tmp_path / "meta.db") as conn:
            conn.execute("INSERT INTO bucket_config VALUES ('bkt', 'policy', 'late')")
        await asyncio.sleep(0.3)
        assert (await a.get_bucket_with_configs("bkt", NAMES))[1] == ("late", None)

    _with_stores(tmp_path / "meta.db", 2, body)


def test_no_counter_means_no_memo(tmp_path: Path) -> None:
    """Where the counter file cannot be made, every read goes to the database."""

    async def body(store: SqliteStore) -> None:
        store._reads.close()  # as if the counter could not be mapped
        await store.create_bucket(Bucket("bkt", "owner", time.time(), "us-east-1"))
        assert (await store.get_bucket_with_configs("bkt", NAMES))[1] == (None, None)
        with sqlite3.connect(tmp_path / "meta.db") as conn:
            conn.execute("INSERT INTO bucket_config VALUES ('bkt', 'policy', 'direct')")
        assert (await store.get_bucket_with_configs("bkt", NAMES))[1] == ("direct", None)

    _with_stores(tmp_path / "meta.db", 1, body)


def test_a_cancelled_write_is_counted_when_it_commits(tmp_path: Path) -> None:
    """The caller gave up waiting (shutdown, a client gone) while the write was queued: the write
    still commits, and the other process must not keep the old value under a bump made earlier."""

    async def body(a: SqliteStore, b: SqliteStore) -> None:
        await b.create_bucket(Bucket("bkt", "owner", time.time(), "us-east-1"))
        await b.put_bucket_config("bkt", "policy", "old")
        assert await a.get_bucket_config("bkt", "policy") == "old"
        turn = os.open(tmp_path / "meta.db-turn", os.O_RDWR)  # as another process would hold it
        fcntl.flock(turn, fcntl.LOCK_EX)  # b's writer thread waits: the write stays queued
        task = asyncio.ensure_future(b.put_bucket_config("bkt", "policy", "new"))
        await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.sleep(0.05)
        assert await a.get_bucket_config("bkt", "policy") == "old"  # not committed yet
        os.close(turn)  # the write commits now, and only then is counted
        for _ in range(200):
            await asyncio.sleep(0.01)
            with sqlite3.connect(tmp_path / "meta.db") as conn:
                row = conn.execute("SELECT value FROM bucket_config WHERE name='policy'").fetchone()
            if row[0] == "new":
                break
        await asyncio.sleep(0.05)  # the bump follows the commit on the same thread
        assert await a.get_bucket_config("bkt", "policy") == "new"  # well within the 1 s TTL

    _with_stores(tmp_path / "meta.db", 2, body)


def test_answers_for_names_no_bucket_can_have_are_not_kept(tmp_path: Path) -> None:
    async def body(store: SqliteStore) -> None:
        for i in range(50):
            assert await store.get_bucket_with_configs("x" * 64 + str(i), NAMES) == (None, (None, None))
        assert await store.get_bucket_with_configs("short", NAMES) == (None, (None, None))
        assert len(store._reads._memo) == 1

    _with_stores(tmp_path / "meta.db", 1, body)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands a file to another owner")
def test_a_counter_made_by_root_goes_to_the_database_owner(tmp_path: Path) -> None:
    """`sudo rs3gw admin ...` may create the counter first: the server's user must open it later."""
    db = tmp_path / "meta.db"
    db.touch()
    os.chown(db, 65534, 65534)
    counter = SharedCounter(tmp_path / "meta.db-buckets", owner_like=db)
    try:
        st = (tmp_path / "meta.db-buckets").stat()
        assert (st.st_uid, st.st_gid) == (65534, 65534)
    finally:
        counter.close()
