"""The MetadataStore contract: the same cases against SqliteStore and PostgresStore.

Each case gets a fresh store (a new SQLite file, or a new database in the session's throwaway
PostgreSQL cluster). The race cases open two stores on one database, as two gateways would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pg_cluster import shared_cluster
from rs3gw import errors
from rs3gw.meta.postgres import PostgresStore
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import ListQuery, MetadataStore, VersionQuery, WriteCondition, new_version_id
from rs3gw.model import NULL_VERSION, Bucket, ObjectMeta, ObjectVersion, Part, Segment, Upload

OWNER = "owner-1"
NONE = WriteCondition()
Opener = Callable[[], MetadataStore]  # another store on the same database


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    if request.param == "sqlite":
        path = tmp_path / "meta.db"
        return lambda: SqliteStore(path, fsync=False)
    dsn = shared_cluster().create_database("contract")
    return lambda: PostgresStore(dsn, max_size=4, gc_grace=0)


@asynccontextmanager
async def opened(opener: Opener) -> AsyncIterator[MetadataStore]:
    store = opener()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def run(opener: Opener, body: Callable[[MetadataStore], Awaitable[None]]) -> None:
    async def main() -> None:
        async with opened(opener) as store:
            await store.create_bucket(Bucket("b", OWNER, time.time(), "us-east-1"))
            await body(store)

    asyncio.run(main())


def obj(
    key: str, vid: str = NULL_VERSION, blob: str | None = None, etag: str = "e", **kw: Any
) -> ObjectVersion:
    blob = blob or f"{abs(hash((key, vid, etag))):032x}"[:32]
    return ObjectVersion("b", key, vid, 3, etag, time.time(), ObjectMeta(**kw), (Segment(blob, 3),), OWNER)


def marker(key: str, vid: str) -> ObjectVersion:
    return ObjectVersion("b", key, vid, 0, "", time.time(), ObjectMeta(), (), OWNER, delete_marker=True)


# -- buckets -----------------------------------------------------------------------------------
def test_buckets(opener: Opener) -> None:
    async def body(s: MetadataStore) -> None:
        with pytest.raises(errors.BucketAlreadyOwnedByYou):
            await s.create_bucket(Bucket("b", OWNER, 0, "us-east-1"))
        with pytest.raises(errors.BucketAlreadyExists):
            await s.create_bucket(Bucket("b", "someone-else", 0, "us-east-1"))
        for name in ("zeta", "a-b", "a.b", "ab"):
            await s.create_bucket(Bucket(name, OWNER, 1.5, "eu-west-1"))
        await s.create_bucket(Bucket("theirs", "someone-else", 0, "us-east-1"))
        assert [b.name for b in await s.list_buckets(OWNER)] == ["a-b", "a.b", "ab", "b", "zeta"]
        got = await s.get_bucket("a.b")
        assert got == Bucket("a.b", OWNER, 1.5, "eu-west-1", "")
        assert await s.get_bucket("missing") is None
        await s.set_versioning("ab", "Enabled")
        assert (await s.get_bucket("ab")) == Bucket("ab", OWNER, 1.5, "eu-west-1", "Enabled")
        await s.put_object(obj("k"), NONE, keep_old=False)
        with pytest.raises(errors.BucketNotEmpty):
            await s.delete_bucket("b")
        with pytest.raises(errors.NoSuchBucket):
            await s.delete_bucket("missing")
        await s.put_bucket_config("zeta", "cors", "<x/>")
        assert await s.delete_bucket("zeta") == []
        assert await s.get_bucket("zeta") is None
        await s.create_bucket(Bucket("zeta", OWNER, 2, "us-east-1"))
        assert await s.get_bucket_config("zeta", "cors") is None  # config went with the bucket

    run(opener, body)


def test_bucket_config(opener: Opener) -> None:
    async def body(s: MetadataStore) -> None:
        assert await s.get_bucket_config("b", "tagging") is None
        await s.put_bucket_config("b", "tagging", "one")
        await s.put_bucket_config("b", "tagging", "two")
        await s.put_bucket_config("b", "cors", "c")
        assert await s.get_bucket_config("b", "tagging") == "two"
        await s.put_bucket_config("b", "tagging", None)
        assert await s.get_bucket_config("b", "tagging") is None
        assert await s.get_bucket_config("b", "cors") == "c"
        with pytest.raises(errors.NoSuchBucket):
            await s.put_bucket_config("missing", "cors", "c")

    run(opener, body)


# -- objects -----------------------------------------------------------------------------------
def test_put_get_overwrite_frees_and_queues_blobs(opener: Opener) -> None:
    async def body(s: MetadataStore) -> None:
        meta: dict[str, Any] = {
            "content_type": "text/plain",
            "user_meta": {"a": "1"},
            "system": {"lock-mode": "GOVERNANCE"},
        }
        first = obj("k", blob="a" * 32, **meta)
        assert await s.put_object(first, NONE, keep_old=False) == []
        got = await s.get_object("b", "k")
        assert got == first
        assert got is not None and got.meta.system == {"lock-mode": "GOVERNANCE"} and got.is_latest
        assert await s.put_object(obj("k", blob="b" * 32, etag="e2"), NONE, keep_old=False) == ["a" * 32]
        assert (await s.get_object("b", "k")).etag == "e2"  # type: ignore[union-attr]
        assert await s.pending_gc() == ["a" * 32]
        assert await s.referenced_blobs() == {"b" * 32}
        await s.gc_done(["a" * 32])
        assert await s.pending_gc() == []
        assert await s.get_object("b", "missing") is None
        with pytest.raises(errors.NoSuchBucket):
            await s.put_object(replace(obj("k"), bucket="missing"), NONE, keep_old=False)
        out = await s.delete_object("b", "k", None, None)
        assert out.removed is not None and out.removed.etag == "e2" and out.freed_blobs == ["b" * 32]
        assert await s.get_object("b", "k") is None
        assert (await s.delete_object("b", "k", None, None)).removed is None

    run(opener, body)


def test_conditional_writes(opener: Opener) -> None:
    async def body(s: MetadataStore) -> None:
        create = WriteCondition(if_none_match_any=True)
        await s.put_object(obj("k", etag="one"), create, keep_old=False)
        with pytest.raises(errors.PreconditionFailed):
            await s.put_object(obj("k", etag="two"), create, keep_old=False)
        with pytest.raises(errors.PreconditionFailed):
            await s.put_object(obj("k", etag="two"), WriteCondition(if_match="nope"), keep_old=False)
        await s.put_object(obj("k", etag="two"), WriteCondition(if_match="one"), keep_old=False)
        assert (await s.get_object("b", "k")).etag == "two"  # type: ignore[union-attr]
        with pytest.raises(errors.NoSuchKey):
            await s.put_object(obj("new", etag="x"), WriteCondition(if_match="x"), keep_old=False)
        # A delete marker is no current object: If-None-Match succeeds, If-Match finds no key.
        await s.set_versioning("b", "Enabled")
        await s.delete_object("b", "k", None, marker("k", new_version_id()))
        with pytest.raises(errors.NoSuchKey):
            await s.put_object(obj("k", new_version_id()), WriteCondition(if_match="two"), keep_old=True)
        await s.put_object(obj("k", new_version_id(), etag="three"), create, keep_old=True)
        assert (await s.get_object("b", "k")).etag == "three"  # type: ignore[union-attr]

    run(opener, body)


def test_conditional_write_if_match_star(opener: Opener) -> None:
    """If-Match: * (RFC 9110) needs only a current object: it overwrites one, else 412 (not 404)."""

    async def body(s: MetadataStore) -> None:
        star = WriteCondition(if_match="*")
        with pytest.raises(errors.PreconditionFailed):
            await s.put_object(obj("k", etag="one"), star, keep_old=False)
        assert await s.get_object("b", "k") is None
        await s.put_object(obj("k", etag="one"), WriteCondition(), keep_old=False)
        await s.put_object(obj("k", etag="two"), star, keep_old=False)
        assert (await s.get_object("b", "k")).etag == "two"  # type: ignore[union-attr]

    run(opener, body)


def test_versioning_markers_and_promotion(opener: Opener) -> None:
    async def body(s: MetadataStore) -> None:
        await s.put_object(obj("k", NULL_VERSION, etag="null"), NONE, keep_old=False)
        await s.set_versioning("b", "Enabled")
        v1, v2 = new_version_id(), new_version_id()
        await s.put_object(obj("k", v1, etag="v1"), NONE, keep_old=True)
        await s.put_object(obj("k", v2, etag="v2"), NONE, keep_old=True)
        assert (await s.get_object("b", "k", NULL_VERSION)).etag == "null"  # type: ignore[union-attr]
        assert (await s.get_object("b", "k", v1)).is_latest is False  # type: ignore[union-attr]
        m = new_version_id()
        out = await s.delete_object("b", "k", None, marker("k", m))
        assert out.marker is not None and out.removed is None and out.freed_blobs == []
        latest = await s.get_object("b", "k")
        assert latest is not None and latest.delete_marker and latest.version_id == m
        # Removing the latest (the marker) promotes v2; removing v2 then promotes v1.
        out = await s.delete_object("b", "k", m, None)
        assert out.removed is not None and out.removed.delete_marker
        assert (await s.get_object("b", "k")).version_id == v2  # type: ignore[union-attr]
        out = await s.delete_object("b", "k", v2, None)
        assert len(out.freed_blobs) == 1
        latest = await s.get_object("b", "k")
        assert latest is not None and latest.version_id == v1 and latest.is_latest
        # Suspended: a new write replaces the null version but keeps v1.
        await s.set_versioning("b", "Suspended")
        freed = await s.put_object(obj("k", NULL_VERSION, etag="null2"), NONE, keep_old=False)
        assert len(freed) == 1
        listing = await s.list_versions("b", VersionQuery())
        assert [(v.version_id, v.etag, v.is_latest) for v in listing.versions] == [
            (NULL_VERSION, "null2", True),
            (v1, "v1", False),
        ]
        # A suspended delete puts a null marker in place of the null version.
        out = await s.delete_object("b", "k", None, marker("k", NULL_VERSION))
        assert len(out.freed_blobs) == 1
        listing = await s.list_versions("b", VersionQuery())
        assert [(v.version_id, v.delete_marker) for v in listing.versions] == [
            (NULL_VERSION, True),
            (v1, False),
        ]
        with pytest.raises(errors.InvalidArgument):
            await s.list_versions("b", VersionQuery(key_marker="k", version_id_marker="bogus"))

    run(opener, body)


def test_update_object_meta(opener: Opener) -> None:
    async def body(s: MetadataStore) -> None:
        await s.set_versioning("b", "Enabled")
        v1 = new_version_id()
        await s.put_object(obj("k", v1, user_meta={"x": "1"}), NONE, keep_old=True)
        new = ObjectMeta(tags={"t": "v"}, system={"restore-expiry": "123"}, user_meta={"x": "1"})
        got = await s.update_object_meta("b", "k", None, new)
        assert got.meta == new and got.version_id == v1
        stored = await s.get_object("b", "k", v1)
        assert stored is not None and stored.meta == new and stored.segments == got.segments
        with pytest.raises(errors.NoSuchVersion):
            await s.update_object_meta("b", "k", new_version_id(), new)
        with pytest.raises(errors.NoSuchKey):
            await s.update_object_meta("b", "other", None, new)
        m = new_version_id()
        await s.delete_object("b", "k", None, marker("k", m))
        with pytest.raises(errors.NoSuchKey):
            await s.update_object_meta("b", "k", None, new)
        with pytest.raises(errors.MethodNotAllowed):
            await s.update_object_meta("b", "k", m, new)

    run(opener, body)


def test_update_object_meta_refuses_a_replaced_null_version(opener: Opener) -> None:
    """Metadata read from one object must never land on the object that overwrote it."""

    async def body(s: MetadataStore) -> None:
        first = obj("n", etag="e1", user_meta={"gen": "1"})
        await s.put_object(first, NONE, keep_old=False)
        read = await s.get_object("b", "n")
        assert read is not None
        await s.put_object(obj("n", etag="e2", user_meta={"gen": "2"}), NONE, keep_old=False)
        stale = ObjectMeta(user_meta={"gen": "1"}, tags={"t": "v"})
        with pytest.raises(errors.PreconditionFailed):
            await s.update_object_meta("b", "n", NULL_VERSION, stale, expect=read)
        cur = await s.get_object("b", "n")
        assert cur is not None and cur.etag == "e2" and cur.meta.user_meta == {"gen": "2"}
        fresh = await s.update_object_meta(
            "b", "n", NULL_VERSION, replace(cur.meta, tags={"t": "v"}), expect=cur
        )
        assert fresh.meta.tags == {"t": "v"} and fresh.meta.user_meta == {"gen": "2"}

    run(opener, body)


# -- listings ----------------------------------------------------------------------------------
KEYS = ["a/1", "a/2", "a/b/3", "a-x", "b", "c/d/e", "c/z", "é", "\u00ff", "z\u0100", "~"]


def test_list_objects_byte_order_prefix_delimiter(opener: Opener) -> None:
    async def body(s: MetadataStore) -> None:
        for k in reversed(KEYS):
            await s.put_object(obj(k), NONE, keep_old=False)
        await s.set_versioning("b", "Enabled")
        await s.put_object(obj("hidden", new_version_id()), NONE, keep_old=True)
        await s.delete_object("b", "hidden", None, marker("hidden", new_version_id()))
        everything = await s.list_objects("b", ListQuery())
        assert [o.key for o in everything.objects] == sorted(KEYS, key=str.encode)
        assert not everything.is_truncated and everything.next_marker is None
        assert all(o.segments == () for o in everything.objects)
        res = await s.list_objects("b", ListQuery(delimiter="/"))
        assert res.common_prefixes == ["a/", "c/"]
        assert [o.key for o in res.objects] == [k for k in sorted(KEYS, key=str.encode) if "/" not in k]
        res = await s.list_objects("b", ListQuery(prefix="a/", delimiter="/"))
        assert [o.key for o in res.objects] == ["a/1", "a/2"] and res.common_prefixes == ["a/b/"]
        # Paging with max_keys and the returned marker walks everything exactly once.
        seen: list[str] = []
        after = ""
        while True:
            page = await s.list_objects("b", ListQuery(delimiter="/", start_after=after, max_keys=2))
            seen += [o.key for o in page.objects] + page.common_prefixes
            if not page.is_truncated:
                break
            assert page.next_marker is not None
            after = page.next_marker
        assert sorted(seen, key=str.encode) == seen
        assert set(seen) == {k for k in KEYS if "/" not in k} | {"a/", "c/"}
        assert [o.key for o in (await s.list_objects("b", ListQuery(start_after="c/z"))).objects] == [
            k for k in sorted(KEYS, key=str.encode) if k.encode() > b"c/z"
        ]

    run(opener, body)


def test_list_versions_pagination(opener: Opener) -> None:
    async def body(s: MetadataStore) -> None:
        await s.set_versioning("b", "Enabled")
        expected: list[tuple[str, str]] = []
        for k in ("x", "y/1", "y/2", "z"):
            vids = []
            for _ in range(3):  # ids made as a gateway makes them: just before each write
                vids.append(v := new_version_id())
                await s.put_object(obj(k, v, etag=v), NONE, keep_old=True)
            expected += [(k, v) for v in reversed(vids)]
        full = await s.list_versions("b", VersionQuery())
        assert [(v.key, v.version_id) for v in full.versions] == expected
        assert [v.is_latest for v in full.versions[:3]] == [True, False, False]
        got: list[tuple[str, str]] = []
        km, vm = "", ""
        while True:
            page = await s.list_versions("b", VersionQuery(key_marker=km, version_id_marker=vm, max_keys=2))
            got += [(v.key, v.version_id) for v in page.versions]
            if not page.is_truncated:
                break
            km, vm = page.next_key_marker or "", page.next_version_id_marker or ""
        assert got == expected
        res = await s.list_versions("b", VersionQuery(delimiter="/"))
        assert res.common_prefixes == ["y/"] and len(res.versions) == 6
        # A version-id-marker whose version was deleted since still resumes in place.
        gone = expected[1][1]
        await s.delete_object("b", "x", gone, None)
        page = await s.list_versions("b", VersionQuery(key_marker="x", version_id_marker=gone))
        assert [(v.key, v.version_id) for v in page.versions] == expected[2:]

    run(opener, body)


# -- multipart ---------------------------------------------------------------------------------
def upload(uid: str, key: str) -> Upload:
    return Upload(uid, "b", key, time.time(), OWNER, ObjectMeta(content_type="text/csv"))


def part(n: int, blob: str) -> Part:
    return Part(n, 5, f"etag{n}", time.time(), blob, {"CRC32": "AAAAAA=="})


def test_multipart_lifecycle(opener: Opener) -> None:
    async def body(s: MetadataStore) -> None:
        await s.create_upload(upload("u1", "big"))
        got = await s.get_upload("u1")
        assert got is not None and got.key == "big" and got.meta.content_type == "text/csv"
        assert await s.get_upload("nope") is None
        for n in (1, 2, 3):
            assert await s.put_part("u1", part(n, f"{n:032x}")) == []
        assert await s.put_part("u1", part(2, "f" * 32)) == [f"{2:032x}"]  # replaced part is freed
        with pytest.raises(errors.NoSuchUpload):
            await s.put_part("nope", part(1, "e" * 32))
        parts = await s.get_parts("u1")
        assert sorted(parts) == [1, 2, 3] and parts[2].blob_id == "f" * 32
        assert parts[1].checksums == {"CRC32": "AAAAAA=="}
        page = await s.list_parts("u1", 0, 2)
        assert [p.part_number for p in page.parts] == [1, 2] and page.is_truncated
        assert page.next_part_number_marker == 2
        page = await s.list_parts("u1", 2, 2)
        assert [p.part_number for p in page.parts] == [3] and not page.is_truncated
        final = replace(
            obj("big", blob=f"{1:032x}"), segments=(Segment(f"{1:032x}", 5), Segment("f" * 32, 5))
        )
        freed = await s.complete_upload("u1", final, {1, 2}, NONE, keep_old=False)
        assert freed == [f"{3:032x}"]
        assert (await s.get_object("b", "big")) == final
        assert await s.get_upload("u1") is None
        with pytest.raises(errors.NoSuchUpload):
            await s.complete_upload("u1", final, {1}, NONE, keep_old=False)
        await s.create_upload(upload("u2", "big"))
        await s.put_part("u2", part(1, "d" * 32))
        with pytest.raises(errors.PreconditionFailed):
            await s.complete_upload("u2", obj("big"), {1}, WriteCondition(if_none_match_any=True), False)
        assert await s.get_upload("u2") is not None  # a failed completion changes nothing
        assert "d" * 32 in await s.referenced_blobs()
        assert await s.abort_upload("u2") == ["d" * 32]
        with pytest.raises(errors.NoSuchUpload):
            await s.abort_upload("u2")

    run(opener, body)


def test_list_uploads_and_delete_bucket_aborts(opener: Opener) -> None:
    async def body(s: MetadataStore) -> None:
        order = [("k1", "u-c"), ("k1", "u-a"), ("k1", "u-b"), ("d/k2", "u-d"), ("k3", "u-e")]
        for key, uid in order:
            await s.create_upload(upload(uid, key))
        await s.put_part("u-e", part(1, "c" * 32))
        res = await s.list_uploads("b", "", "", "", "", 1000)
        assert [(u.key, u.upload_id) for u in res.uploads] == [
            ("d/k2", "u-d"), ("k1", "u-c"), ("k1", "u-a"), ("k1", "u-b"), ("k3", "u-e"),
        ]  # fmt: skip
        got: list[str] = []
        km, um = "", ""
        while True:
            page = await s.list_uploads("b", "", "", km, um, 2)
            got += [u.upload_id for u in page.uploads]
            if not page.is_truncated:
                break
            km, um = page.next_key_marker or "", page.next_upload_id_marker or ""
        assert got == ["u-d", "u-c", "u-a", "u-b", "u-e"]
        res = await s.list_uploads("b", "", "/", "", "", 1000)
        assert res.common_prefixes == ["d/"] and len(res.uploads) == 4
        assert await s.delete_bucket("b") == ["c" * 32]
        assert await s.get_upload("u-a") is None
        assert await s.pending_gc() == ["c" * 32]

    run(opener, body)


# -- two stores on one database (two gateways) -------------------------------------------------
def test_create_race_has_one_winner(opener: Opener) -> None:
    async def body(s: MetadataStore) -> None:
        async with opened(opener) as other:
            create = WriteCondition(if_none_match_any=True)

            async def attempt(store: MetadataStore, i: int) -> bool:
                try:
                    await store.put_object(obj("race", etag=f"w{i}"), create, keep_old=False)
                    return True
                except errors.PreconditionFailed:
                    return False

            for round_ in range(5):
                key_results = await asyncio.gather(*(attempt((s, other)[i % 2], i) for i in range(16)))
                assert sum(key_results) == (1 if round_ == 0 else 0)
            winner = await s.get_object("b", "race")
            assert winner is not None and await other.get_object("b", "race") == winner

    run(opener, body)


def test_concurrent_versioned_writes_keep_every_version(opener: Opener) -> None:
    async def body(s: MetadataStore) -> None:
        await s.set_versioning("b", "Enabled")
        async with opened(opener) as other:
            vids = [new_version_id() for _ in range(40)]
            await asyncio.gather(
                *(
                    (s, other)[i % 2].put_object(obj("hot", v, etag=v), NONE, keep_old=True)
                    for i, v in enumerate(vids)
                )
            )
            listing = await other.list_versions("b", VersionQuery())
            assert sorted(v.version_id for v in listing.versions) == sorted(vids)
            assert sum(v.is_latest for v in listing.versions) == 1
            latest = await s.get_object("b", "hot")
            assert latest is not None and latest.version_id == listing.versions[0].version_id
            # Overwrites of an unversioned key from both sides: one version survives, every
            # replaced blob is queued exactly once.
            await s.set_versioning("b", "Suspended")
            results = await asyncio.gather(
                *(
                    (s, other)[i % 2].put_object(obj("flat", blob=f"{i:032x}"), NONE, keep_old=False)
                    for i in range(20)
                )
            )
            freed = [b for r in results for b in r]
            assert len(freed) == 19 and len(set(freed)) == 19
            survivor = await other.get_object("b", "flat")
            assert survivor is not None and survivor.segments[0].blob_id not in freed

    run(opener, body)


def test_bucket_usage(opener: Opener) -> None:
    async def body(s: MetadataStore) -> None:
        await s.set_versioning("b", "Enabled")
        for k in ("a", "a", "b"):
            await s.put_object(obj(k, new_version_id()), NONE, keep_old=True)
        await s.delete_object("b", "b", None, marker("b", new_version_id()))
        assert await s.bucket_usage("b") == (3, 9)
        await s.create_bucket(Bucket("empty", OWNER, 0, "us-east-1"))
        assert await s.bucket_usage("empty") == (0, 0)

    run(opener, body)


def test_completion_race_has_one_winner(opener: Opener) -> None:
    async def body(s: MetadataStore) -> None:
        async with opened(opener) as other:
            await s.create_upload(upload("u", "mp"))
            await s.put_part("u", part(1, "1" * 32))
            final = replace(obj("mp"), segments=(Segment("1" * 32, 5),))

            async def attempt(store: MetadataStore) -> str:
                try:
                    await store.complete_upload("u", final, {1}, NONE, keep_old=False)
                    return "ok"
                except errors.NoSuchUpload:
                    return "gone"

            assert sorted(await asyncio.gather(*(attempt((s, other)[i % 2]) for i in range(6)))) == [
                "gone", "gone", "gone", "gone", "gone", "ok",
            ]  # fmt: skip
            assert (await other.get_object("b", "mp")) == final
            assert await s.pending_gc() == []  # the used part's blob now belongs to the object

    run(opener, body)


def test_postgres_gc_grace_holds_freed_blobs_back(tmp_path: Path) -> None:
    """A shared store hands out freed blobs for deletion only after the grace period."""
    dsn = shared_cluster().create_database("grace")

    async def main() -> None:
        async with opened(lambda: PostgresStore(dsn, gc_grace=60)) as s:
            await s.create_bucket(Bucket("b", OWNER, time.time(), "us-east-1"))
            await s.put_object(obj("k", blob="a" * 32), NONE, keep_old=False)
            assert await s.put_object(obj("k", blob="b" * 32), NONE, keep_old=False) == ["a" * 32]
            assert s.gc_grace == 60 and await s.pending_gc() == []
        async with opened(lambda: PostgresStore(dsn, gc_grace=0)) as s:
            assert await s.pending_gc() == ["a" * 32]

    asyncio.run(main())


def test_server_docs_and_registry(opener: Opener) -> None:
    async def body(s: MetadataStore) -> None:
        assert await s.get_server_doc("user", "ann") is None
        assert await s.put_server_doc("user", "ann", "{1}", create=True)
        assert not await s.put_server_doc("user", "ann", "{2}", create=True)  # exists: unchanged
        assert await s.get_server_doc("user", "ann") == "{1}"
        assert await s.put_server_doc("user", "ann", "{3}")
        await s.put_server_doc("user", "bob", "{b}")
        await s.put_server_doc("key", "ann", "{k}")
        assert await s.list_server_docs("user") == {"ann": "{3}", "bob": "{b}"}
        assert await s.put_server_doc("user", "bob", None)
        assert not await s.put_server_doc("user", "bob", None)
        assert await s.registry_put("dataset", "imgs/a", "{a}", 0) == 1
        with pytest.raises(errors.RegistryConflict):
            await s.registry_put("dataset", "imgs/a", "{again}", 0)
        assert await s.registry_put("dataset", "imgs/a", "{a2}", 1) == 2
        with pytest.raises(errors.RegistryConflict):
            await s.registry_put("dataset", "imgs/a", "{stale}", 1)
        await s.registry_put("dataset", "imgs/b", "{b}", 0)
        await s.registry_put("dataset", "other", "{o}", 0)
        assert await s.registry_get("dataset", "imgs/a") == ("{a2}", 2)
        assert await s.registry_get("model", "imgs/a") is None
        assert await s.registry_list("dataset", "imgs/") == [("imgs/a", "{a2}", 2), ("imgs/b", "{b}", 1)]

    run(opener, body)
