"""SqliteStore group commit: concurrent writes share a transaction, yet each one fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from rs3gw import errors
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import ListQuery, WriteCondition
from rs3gw.model import NULL_VERSION, Bucket, ObjectMeta, ObjectVersion, Segment


def _obj(bucket: str, key: str, blob: str) -> ObjectVersion:
    return ObjectVersion(bucket, key, NULL_VERSION, 1, "e", 1.0, ObjectMeta(), (Segment(blob, 1),), "o")


async def _scenario(path: Path) -> None:
    store = SqliteStore(path, fsync=False)
    await store.open()
    try:
        await store.create_bucket(Bucket("b", "o", 1.0, "us-east-1"))
        await store.put_object(_obj("b", "taken", "aa00"), WriteCondition(), keep_old=False)
        if_none_match = WriteCondition(if_none_match_any=True)
        # Queued together: good writes, writes that must fail (a condition, a missing bucket),
        # and a second bucket creation that conflicts with the first.
        jobs: list[Coroutine[Any, Any, object]] = [
            store.put_object(_obj("b", f"k{i}", f"bb{i:02d}"), WriteCondition(), False) for i in range(20)
        ]
        jobs.append(store.put_object(_obj("b", "taken", "cc00"), if_none_match, False))
        jobs.append(store.put_object(_obj("nope", "k", "dd00"), WriteCondition(), False))
        jobs.append(store.create_bucket(Bucket("b", "o", 1.0, "us-east-1")))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        assert all(r == [] for r in results[:20]), results[:20]
        assert isinstance(results[20], errors.PreconditionFailed)
        assert isinstance(results[21], errors.NoSuchBucket)
        assert isinstance(results[22], errors.BucketAlreadyOwnedByYou)
        listing = await store.list_objects("b", ListQuery("", "", "", 1000))
        assert sorted(o.key for o in listing.objects) == sorted([f"k{i}" for i in range(20)] + ["taken"])
        taken = await store.get_object("b", "taken")
        assert taken is not None and taken.segments[0].blob_id == "aa00"  # the failed write left no trace
        assert await store.get_bucket("nope") is None
    finally:
        await store.close()


def test_failing_write_does_not_undo_its_batch(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path / "meta.db"))


def test_committed_writes_are_seen_by_a_new_connection(tmp_path: Path) -> None:
    async def run() -> None:
        store = SqliteStore(tmp_path / "meta.db", fsync=False)
        await store.open()
        await store.create_bucket(Bucket("b", "o", 1.0, "us-east-1"))
        await asyncio.gather(
            *(store.put_object(_obj("b", f"k{i}", f"ee{i:02d}"), WriteCondition(), False) for i in range(50))
        )
        await store.close()
        other = SqliteStore(tmp_path / "meta.db", fsync=False)
        await other.open()
        listing = await other.list_objects("b", ListQuery("", "", "", 1000))
        await other.close()
        assert len(listing.objects) == 50

    asyncio.run(run())


@pytest.mark.parametrize("n", [1, 3])
def test_results_reach_each_caller(tmp_path: Path, n: int) -> None:
    async def run() -> list[str]:
        store = SqliteStore(tmp_path / "meta.db", fsync=False)
        await store.open()
        await store.create_bucket(Bucket("b", "o", 1.0, "us-east-1"))
        await asyncio.gather(
            *(store.put_object(_obj("b", f"k{i}", f"f{i:03d}"), WriteCondition(), False) for i in range(n))
        )
        # Overwrites free the old blob: each caller must get its own freed list back.
        freed = await asyncio.gather(
            *(store.put_object(_obj("b", f"k{i}", f"a{i:03d}"), WriteCondition(), False) for i in range(n))
        )
        await store.close()
        return [f[0] for f in freed]

    assert asyncio.run(run()) == [f"f{i:03d}" for i in range(n)]
