"""``MetadataStore.blob_uses`` and ``queued_blobs`` (what fsck reads) against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pg_cluster import shared_cluster
from rs3gw.meta.postgres import PostgresStore
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import BlobUse, MetadataStore, WriteCondition
from rs3gw.model import NULL_VERSION, Bucket, ObjectMeta, ObjectVersion, Part, Segment, Upload

OWNER = "owner-1"
Opener = Callable[[], MetadataStore]


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    if request.param == "sqlite":
        path = tmp_path / "meta.db"
        return lambda: SqliteStore(path, fsync=False)
    dsn = shared_cluster().create_database("blobuses")
    return lambda: PostgresStore(dsn, max_size=4, gc_grace=3600)  # queued_blobs ignores the grace


def version(key: str, vid: str, *segs: tuple[str, int], marker: bool = False) -> ObjectVersion:
    size = sum(n for _, n in segs)
    segments = tuple(Segment(b, n) for b, n in segs)
    return ObjectVersion(
        "b", key, vid, size, "e", time.time(), ObjectMeta(), segments, OWNER, delete_marker=marker
    )


def test_blob_uses_and_queue(opener: Opener) -> None:
    async def main() -> None:
        s = opener()
        await s.open()
        try:
            assert await s.blob_uses() == []
            assert await s.queued_blobs() == set()
            await s.create_bucket(Bucket("b", OWNER, time.time(), "us-east-1"))
            await s.set_versioning("b", "Enabled")
            keep = WriteCondition()
            await s.put_object(version("k", "v1", ("a1" * 16, 3)), keep, keep_old=True)
            await s.put_object(version("k", "v2", ("b1" * 16, 4), ("b2" * 16, 5)), keep, keep_old=True)
            await s.put_object(version("k", "v3", marker=True), keep, keep_old=True)  # no blob
            await s.put_object(version("ключ/é", NULL_VERSION, ("c1" * 16, 6)), keep, keep_old=False)
            freed = await s.put_object(version("ключ/é", NULL_VERSION, ("c2" * 16, 7)), keep, keep_old=False)
            assert freed == ["c1" * 16]
            await s.create_upload(Upload("up1", "b", "big", time.time(), OWNER, ObjectMeta()))
            await s.put_part("up1", Part(2, 8, "etag", time.time(), "d1" * 16))

            got = sorted(await s.blob_uses(), key=lambda u: u.blob_id)
            assert got == [
                BlobUse("b", "k", "v1", "a1" * 16, 3),
                BlobUse("b", "k", "v2", "b1" * 16, 4),
                BlobUse("b", "k", "v2", "b2" * 16, 5),
                BlobUse("b", "ключ/é", NULL_VERSION, "c2" * 16, 7),
                BlobUse("b", "big", "upload:up1#2", "d1" * 16, 8),
            ]
            # Queued inside PostgreSQL's grace: pending_gc holds it back, queued_blobs still tells it.
            assert await s.queued_blobs() == {"c1" * 16}
            await s.gc_done(["c1" * 16])
            assert await s.queued_blobs() == set()
        finally:
            await s.close()

    asyncio.run(main())
