"""SqliteStore on a full disk: a commit that finds no room fails its requests with a clean 507
InsufficientStorage, commits nothing, and the writer keeps working once room returns.

"Full" is SQLite's own SQLITE_FULL, raised here by capping the database with PRAGMA
max_page_count (tests/stress/test_disk_full.py fills a real tmpfs instead).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from rs3gw import errors
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import WriteCondition
from rs3gw.model import NULL_VERSION, Bucket, ObjectMeta, ObjectVersion, Segment


def _obj(key: str) -> ObjectVersion:
    meta = ObjectMeta(user_meta={"pad": "x" * 1500})
    return ObjectVersion("b", key, NULL_VERSION, 1, "e", 1.0, meta, (Segment(f"{key:0>32}", 1),), "o")


async def _cap(store: SqliteStore, extra_pages: int | None) -> None:
    """Cap the database a few pages above its size (None: lift the cap), on the writer thread."""

    def run() -> None:
        assert store._wconn is not None
        size = store._wconn.execute("PRAGMA page_count").fetchone()[0]
        store._wconn.execute(f"PRAGMA max_page_count={size + extra_pages if extra_pages else 1 << 30}")

    await asyncio.get_running_loop().run_in_executor(store._writer, run)


async def _scenario(path: Path) -> None:
    store = SqliteStore(path, fsync=False)
    await store.open()
    try:
        await store.create_bucket(Bucket("b", "o", 1.0, "us-east-1"))
        await _cap(store, 4)
        stored: list[str] = []
        with pytest.raises(errors.InsufficientStorage):
            for i in range(500):  # ~1.5 KiB of metadata each: a few fit, then SQLITE_FULL
                await store.put_object(_obj(f"k{i}"), WriteCondition(), keep_old=False)
                stored.append(f"k{i}")
        assert len(stored) < 500
        # A whole group commit that fails: every request in it gets the error, none is half-done.
        batch = [store.put_object(_obj(f"g{i}"), WriteCondition(), keep_old=False) for i in range(20)]
        results = await asyncio.gather(*batch, return_exceptions=True)
        assert any(isinstance(r, errors.InsufficientStorage) for r in results), results
        assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, errors.S3Error)]
        # Reads still work while full.
        for key in stored:
            assert await store.get_object("b", key) is not None
        # Room again: the writer is not wedged, and the failed writes left nothing behind.
        await _cap(store, None)
        await store.put_object(_obj("after"), WriteCondition(), keep_old=False)
        assert await store.get_object("b", "after") is not None
        committed = {f"g{i}" for i, r in enumerate(results) if not isinstance(r, Exception)}
        for i in range(20):
            assert (await store.get_object("b", f"g{i}") is not None) == (f"g{i}" in committed)
    finally:
        await store.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()


def test_full_database_fails_cleanly_and_recovers(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path / "meta.db"))
