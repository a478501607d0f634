"""GET counts in the stores' ``object_access`` table (SQLite and PostgreSQL): upserts add up, a
count never outlives or changes hands from its version, older databases get the table on open,
and a version's metadata document is never touched by counting."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pg_cluster import shared_cluster
from rs3gw.meta.dsn import split_params
from rs3gw.meta.postgres import PostgresStore
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import (
    AccessHit,
    AccessStats,
    MetadataStore,
    WriteCondition,
    merged_access,
    new_version_id,
)
from rs3gw.model import NULL_VERSION, Bucket, ObjectMeta, ObjectVersion, Segment

OWNER = "owner-1"
NONE = WriteCondition()


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(kind, where): a fresh SQLite file or PostgreSQL database."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "meta.db")
    return "postgresql", shared_cluster().create_database("access")


def open_store(target: tuple[str, str]) -> MetadataStore:
    kind, where = target
    return (
        SqliteStore(Path(where), fsync=False)
        if kind == "sqlite"
        else PostgresStore(where, max_size=2, gc_grace=0)
    )


def raw_sql(target: tuple[str, str], sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """One statement straight on the database (outside the store), committed."""
    kind, where = target
    if kind == "sqlite":
        with sqlite3.connect(where) as conn:
            return conn.execute(sql, params).fetchall()
    with psycopg.connect(split_params(where)[0], autocommit=True) as pg:
        cur = pg.execute(sql.replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []


def run(target: tuple[str, str], body: Callable[[MetadataStore], Awaitable[None]]) -> None:
    async def main() -> None:
        store = open_store(target)
        await store.open()
        try:
            if await store.get_bucket("b") is None:
                await store.create_bucket(Bucket("b", OWNER, time.time(), "us-east-1"))
            await body(store)
        finally:
            await store.close()

    asyncio.run(main())


def version(key: str, vid: str = NULL_VERSION, etag: str = "e") -> ObjectVersion:
    return ObjectVersion(
        "b", key, vid, 3, etag, time.time(), ObjectMeta(), (Segment(new_version_id(), 3),), OWNER
    )


def hit(o: ObjectVersion, last: float, n: int) -> AccessHit:
    return AccessHit(o.bucket, o.key, o.version_id, o.etag, o.last_modified, last, n)


def test_counts_add_up_in_one_call(target: tuple[str, str]) -> None:
    async def body(s: MetadataStore) -> None:
        a, b = version("a"), version("ü/b")
        for o in (a, b):
            await s.put_object(o, NONE, keep_old=False)
        assert await s.add_access([hit(a, 10.0, 2), hit(b, 5.0, 1)]) == 2
        assert await s.add_access([hit(a, 7.0, 3)]) == 1  # an older "last" never moves it back
        assert await s.get_access("b", "a", NULL_VERSION) == AccessStats(10.0, 5)
        assert await s.bucket_access("b") == {
            ("a", NULL_VERSION): AccessStats(10.0, 5),
            ("ü/b", NULL_VERSION): AccessStats(5.0, 1),
        }
        assert await s.get_access("b", "missing", NULL_VERSION) is None
        assert await s.add_access([]) == 0

    run(target, body)


def test_counting_leaves_the_metadata_document_alone(target: tuple[str, str]) -> None:
    async def body(s: MetadataStore) -> None:
        o = version("k")
        await s.put_object(o, NONE, keep_old=False)
        before = raw_sql(target, "SELECT meta FROM objects WHERE key=?", (b"k",))
        await s.add_access([hit(o, time.time(), 4)])
        assert raw_sql(target, "SELECT meta FROM objects WHERE key=?", (b"k",)) == before
        assert (await s.get_access("b", "k", NULL_VERSION)) is not None

    run(target, body)


def test_a_new_null_version_starts_at_zero_and_stale_counts_are_dropped(target: tuple[str, str]) -> None:
    async def body(s: MetadataStore) -> None:
        old = version("k", etag="old")
        await s.put_object(old, NONE, keep_old=False)
        await s.add_access([hit(old, 1.0, 3)])
        new = version("k", etag="new")
        await s.put_object(new, NONE, keep_old=False)  # replaces the null version
        assert await s.get_access("b", "k", NULL_VERSION) is None
        # GETs of the old version flushed after the overwrite belong to nobody.
        assert await s.add_access([hit(old, 2.0, 5)]) == 0
        assert await s.get_access("b", "k", NULL_VERSION) is None
        # Same etag, different last-modified: still another version.
        same_etag = version("k", etag="new")
        await s.put_object(same_etag, NONE, keep_old=False)
        assert await s.add_access([hit(new, 3.0, 1)]) == 0
        assert await s.add_access([hit(same_etag, 4.0, 1)]) == 1
        assert await s.get_access("b", "k", NULL_VERSION) == AccessStats(4.0, 1)

    run(target, body)


def test_deletes_leave_no_rows(target: tuple[str, str]) -> None:
    async def body(s: MetadataStore) -> None:
        await s.set_versioning("b", "Enabled")
        v1, v2 = version("k", new_version_id()), version("k", new_version_id())
        for o in (v1, v2):
            await s.put_object(o, NONE, keep_old=True)
        await s.add_access([hit(v1, 1.0, 1), hit(v2, 1.0, 2)])
        await s.delete_object("b", "k", v1.version_id, None)
        assert await s.bucket_access("b") == {("k", v2.version_id): AccessStats(1.0, 2)}
        # A delete marker is never counted.
        m = ObjectVersion(
            "b", "k", new_version_id(), 0, "", time.time(), ObjectMeta(), (), OWNER, delete_marker=True
        )
        await s.delete_object("b", "k", None, m)
        assert await s.add_access([hit(m, 1.0, 1)]) == 0
        await s.delete_object("b", "k", v2.version_id, None)
        await s.delete_object("b", "k", m.version_id, None)
        assert await s.bucket_access("b") == {}
        await s.create_bucket(Bucket("gone", OWNER, time.time(), "us-east-1"))
        g = ObjectVersion(
            "gone", "x", NULL_VERSION, 1, "e", time.time(), ObjectMeta(), (Segment("f" * 32, 1),), OWNER
        )
        await s.put_object(g, NONE, keep_old=False)
        await s.add_access([hit(g, 1.0, 1)])
        await s.delete_object("gone", "x", None, None)
        await s.delete_bucket("gone")
        assert raw_sql(target, "SELECT count(*) FROM object_access") == [(0,)]

    run(target, body)


def test_an_older_database_gets_the_table_on_open(target: tuple[str, str]) -> None:
    async def setup(s: MetadataStore) -> None:
        await s.put_object(version("k"), NONE, keep_old=False)

    run(target, setup)
    # As a version-1 database left it: no access table.
    raw_sql(target, "DROP TABLE object_access")
    raw_sql(target, "UPDATE schema_version SET version=1")

    async def body(s: MetadataStore) -> None:
        o = await s.get_object("b", "k")
        assert o is not None
        assert await s.add_access([hit(o, 1.0, 1)]) == 1

    run(target, body)
    assert raw_sql(target, "SELECT max(version) FROM schema_version") == [(2,)]


def test_legacy_document_counts_are_added() -> None:
    legacy = {"access-last": "100.5", "access-count": "7"}
    assert merged_access(legacy, None) == AccessStats(100.5, 7)
    assert merged_access(legacy, AccessStats(50.0, 2)) == AccessStats(100.5, 9)
    assert merged_access({}, AccessStats(50.0, 2)) == AccessStats(50.0, 2)
    assert merged_access({}, None) is None
