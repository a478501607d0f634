"""Listed versions carry the same metadata as a single read, on SQLite (where a listing fills only
storage class and checksums up front and parses the rest on demand) and on PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from dataclasses import fields, replace
from pathlib import Path

import pytest

from pg_cluster import shared_cluster
from rs3gw.meta.postgres import PostgresStore
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import ListQuery, MetadataStore, VersionQuery, WriteCondition
from rs3gw.model import NULL_VERSION, Bucket, ObjectMeta, ObjectVersion, Segment

OWNER = "owner-1"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MetadataStore:
    if request.param == "sqlite":
        return SqliteStore(tmp_path / "meta.db", fsync=False)
    return PostgresStore(shared_cluster().create_database("listedmeta"), max_size=2, gc_grace=0)


def meta(i: int) -> ObjectMeta:
    """Every object's document distinct (as GET counts make them), some with checksums and tags."""
    return ObjectMeta(
        content_type=f"text/x-{i}",
        headers={"cache-control": "no-cache"} if i % 2 else {},
        user_meta={"n": str(i)},
        checksums={"CRC32": f"AAAA{i:04d}"} if i % 3 == 0 else {},
        checksum_type="FULL_OBJECT" if i % 3 == 0 else "",
        storage_class="STANDARD_IA" if i % 4 == 0 else "STANDARD",
        tags={"t": str(i)} if i % 5 == 0 else {},
        system={"access-last": repr(1.5 + i), "access-count": str(i)},
    )


def test_listed_metadata_equals_the_stored_metadata(store: MetadataStore) -> None:
    async def main() -> None:
        await store.open()
        try:
            await store.create_bucket(Bucket("b", OWNER, time.time(), "us-east-1"))
            for i in range(12):
                o = ObjectVersion(
                    "b",
                    f"k{i:02d}",
                    NULL_VERSION,
                    3,
                    "e",
                    time.time(),
                    meta(i),
                    (Segment(f"{i:032x}", 3),),
                    OWNER,
                )
                await store.put_object(o, WriteCondition(), keep_old=False)
            listed = (await store.list_objects("b", ListQuery(max_keys=1000))).objects
            versions = (await store.list_versions("b", VersionQuery(max_keys=1000))).versions
            assert [o.key for o in listed] == [f"k{i:02d}" for i in range(12)]
            for i, (lo, vo) in enumerate(zip(listed, versions, strict=True)):
                want = meta(i)
                # What a listing renders first (no full parse needed), then every other field.
                assert (lo.meta.storage_class, lo.meta.checksums, lo.meta.checksum_type) == (
                    want.storage_class, want.checksums, want.checksum_type,
                )  # fmt: skip
                for f in fields(ObjectMeta):
                    assert getattr(lo.meta, f.name) == getattr(want, f.name), f.name
                    assert getattr(vo.meta, f.name) == getattr(want, f.name), f.name
                assert lo.meta == want and want == lo.meta and vo.meta == want
                got = await store.get_object("b", lo.key)
                assert got is not None and got.meta == lo.meta
                changed = replace(lo.meta, storage_class="GLACIER")
                assert changed.storage_class == "GLACIER" and changed.system == want.system
                assert changed.user_meta == want.user_meta and changed.tags == want.tags
        finally:
            await store.close()

    asyncio.run(main())
