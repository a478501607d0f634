"""The object-row memo of the SQLite store: kept rows are answered only while nothing was committed."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from rs3gw.meta import object_reads
from rs3gw.meta.object_reads import ObjectReads
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import WriteCondition
from rs3gw.model import Bucket, ObjectMeta, ObjectVersion, Segment


def _obj(key: str, etag: str, version_id: str = "null") -> ObjectVersion:
    return ObjectVersion(
        "bkt", key, version_id, 4, etag, time.time(), ObjectMeta(), (Segment("ab" * 16, 4),), "owner"
    )


def _with_stores(path: Path, n: int, body: Callable[..., Awaitable[None]]) -> None:
    async def main() -> None:
        stores = [SqliteStore(path, fsync=False) for _ in range(n)]
        for store in stores:
            await store.open()
        try:
            await stores[0].create_bucket(Bucket("bkt", "owner", time.time(), "us-east-1"))
            await body(*stores)
        finally:
            for store in stores:
                await store.close()

    asyncio.run(main())


def test_writes_by_this_store_another_store_and_another_process_are_read(tmp_path: Path) -> None:
    db = tmp_path / "meta.db"

    async def body(a: SqliteStore, b: SqliteStore) -> None:
        assert await a.get_object("bkt", "k") is None
        await a.put_object(_obj("k", "e1"), WriteCondition(), keep_old=False)  # its own writer connection
        got = await a.get_object("bkt", "k")
        assert got is not None and got.etag == "e1"
        assert await a.get_object("bkt", "k") is got  # kept: nothing committed since

        await b.put_object(_obj("k", "e2"), WriteCondition(), keep_old=False)  # another store (worker)
        got = await a.get_object("bkt", "k")
        assert got is not None and got.etag == "e2"

        # Another process (a CLI, a second gateway) changing the row behind every store's back.
        script = (
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "c.execute(\"UPDATE objects SET etag='e3' WHERE key=?\", (b'k',)); c.commit()"
        )
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, str(db))
        assert await proc.wait() == 0
        got = await a.get_object("bkt", "k")
        assert got is not None and got.etag == "e3"

        await b.delete_object("bkt", "k", None, None)
        assert await a.get_object("bkt", "k") is None

    _with_stores(db, 2, body)


def test_rows_are_kept_per_version_id_and_misses_are_kept_too(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    memo = ObjectReads()
    loads: list[str] = []

    def load(answer: str | None) -> Callable[[], str | None]:
        def fn() -> str | None:
            loads.append(str(answer))
            return answer

        return fn

    assert memo.read(conn, "bkt", b"k", None, load("latest")) == "latest"
    assert memo.read(conn, "bkt", b"k", "v1", load("v1")) == "v1"
    assert memo.read(conn, "bkt", b"gone", None, load(None)) is None
    assert memo.read(conn, "bkt", b"k", None, load("other")) == "latest"
    assert memo.read(conn, "bkt", b"gone", None, load("other")) is None
    assert loads == ["latest", "v1", "None"]

    other = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    other.execute("CREATE TABLE t (x)")  # any commit by another connection drops every kept row
    assert memo.read(conn, "bkt", b"k", None, load("new")) == "new"
    assert memo.read(conn, "bkt", b"k", "v1", load("v1 again")) == "v1 again"
    other.close()
    conn.close()


def test_long_keys_and_names_are_not_kept_and_the_memo_is_bounded(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    memo = ObjectReads()
    memo.read(conn, "bkt", b"k" * (object_reads.MAX_KEY + 1), None, lambda: "long key")
    memo.read(conn, "b" * (object_reads.MAX_BUCKET + 1), b"k", None, lambda: "long name")
    assert memo.rows == {}
    for i in range(object_reads.MAX_ENTRIES + 10):
        memo.read(conn, "bkt", b"%d" % i, None, lambda: "row")
    assert 0 < len(memo.rows) <= object_reads.MAX_ENTRIES
    conn.close()
