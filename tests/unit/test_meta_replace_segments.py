"""``MetadataStore.replace_segments`` (the scrubber's repair swap), against SqliteStore and
PostgresStore: the version gets its new blobs and metadata in one step, the old blobs are queued
for GC, and a version that changed since it was read (or is gone) is never touched."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from test_meta_contract import NONE, OWNER, Opener, obj, opener, run

from rs3gw import errors
from rs3gw.meta.store import MetadataStore, new_version_id
from rs3gw.model import ObjectMeta, ObjectVersion, Segment

__all__ = ["opener"]  # the contract's parametrised store fixture


def two_parts(key: str, vid: str) -> ObjectVersion:
    segs = (Segment(f"{key}-p1".ljust(32, "0"), 2), Segment(f"{key}-p2".ljust(32, "0"), 1))
    return ObjectVersion("b", key, vid, 3, "e-2", time.time(), ObjectMeta(), segs, OWNER, parts_count=2)


def test_replace_segments_swaps_blobs_and_meta_and_queues_old(opener: Opener) -> None:
    async def body(s: MetadataStore) -> None:
        vid = new_version_id()
        await s.put_object(two_parts("k", vid), NONE, keep_old=True)
        cur = await s.get_object("b", "k", vid)
        assert cur is not None
        new = (Segment("n1".ljust(32, "0"), 2), cur.segments[1])  # only part 1 was damaged
        meta = replace(cur.meta, system={"repaired": "yes"})
        freed = await s.replace_segments("b", "k", vid, new, meta, expect=cur)
        assert freed == [cur.segments[0].blob_id]
        got = await s.get_object("b", "k", vid)
        assert got is not None and got.segments == new and got.meta.system == {"repaired": "yes"}
        assert (got.etag, got.last_modified, got.size, got.parts_count) == (
            cur.etag,
            cur.last_modified,
            cur.size,
            cur.parts_count,
        )
        assert cur.segments[0].blob_id in await s.pending_gc()
        assert cur.segments[1].blob_id not in await s.pending_gc()
        refs = await s.referenced_blobs()
        assert "n1".ljust(32, "0") in refs and cur.segments[0].blob_id not in refs

    run(opener, body)


def test_replace_segments_refuses_a_changed_or_missing_version(opener: Opener) -> None:
    async def body(s: MetadataStore) -> None:
        await s.put_object(obj("k", etag="one"), NONE, keep_old=False)
        first = await s.get_object("b", "k", "null")
        assert first is not None
        await s.put_object(obj("k", etag="two"), NONE, keep_old=False)  # the null version rewritten
        new = (Segment("n".ljust(32, "0"), 3),)
        with pytest.raises(errors.PreconditionFailed):
            await s.replace_segments("b", "k", "null", new, first.meta, expect=first)
        second = await s.get_object("b", "k", "null")
        assert second is not None and second.segments != new and second.etag == "two"
        with pytest.raises(errors.InternalError):  # sizes must add up to the object's
            await s.replace_segments("b", "k", "null", (Segment("n", 2),), second.meta, expect=second)
        await s.delete_object("b", "k", "null", None)
        with pytest.raises(errors.NoSuchVersion):
            await s.replace_segments("b", "k", "null", new, second.meta, expect=second)
        assert "n".ljust(32, "0") not in await s.referenced_blobs()

    run(opener, body)
