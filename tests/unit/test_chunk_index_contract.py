"""The dedup chunk-index contract: the same cases against SqliteChunkIndex and PostgresChunkIndex.

Each case gets a fresh index (a new ``dedup.db``, or a new database in the session's throwaway
PostgreSQL cluster). The race cases open two index objects on one store, as two gateways would, and
hammer the same hashes from threads: refcounts must come out exact.
"""

from __future__ import annotations

import os
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pg_cluster import shared_cluster
from rs3gw import errors
from rs3gw.blobs.chunk_index import ChunkIndex
from rs3gw.blobs.chunk_index_pg import PostgresChunkIndex
from rs3gw.blobs.chunk_index_sqlite import SqliteChunkIndex, holds_state

Opener = Callable[[], ChunkIndex]


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    opened: list[ChunkIndex] = []

    def make() -> ChunkIndex:
        if request.param == "sqlite":
            idx: ChunkIndex = SqliteChunkIndex(tmp_path / "dedup.db", fsync=False)
        else:
            idx = PostgresChunkIndex(dsn, max_size=8)
        opened.append(idx)
        return idx

    dsn = shared_cluster().create_database("chunkidx") if request.param == "postgresql" else ""
    yield make
    for idx in opened:
        idx.close()


def h(i: int) -> bytes:
    return i.to_bytes(32, "big")


def blob() -> str:
    return secrets.token_hex(16)


def write(idx: ChunkIndex, counts: Counter[bytes], manifest: str | None = None) -> tuple[str, list[str]]:
    """One deduplicating write: pin, publish what is missing, commit; returns (manifest, dupes)."""
    w = secrets.token_hex(8)
    idx.begin_writer(w)
    mid = manifest or blob()
    idx.add_intents(w, [mid])
    missing = idx.take_refs(w, counts)
    new = [(x, blob(), 100, counts[x]) for x in missing]
    idx.add_intents(w, [b for _, b, _, _ in new])
    dupes = idx.publish(w, new) if new else []
    idx.commit_manifest(w, mid, 100 * sum(counts.values()), sum(counts.values()))
    return mid, dupes


def test_write_release_and_gc(opener: Opener) -> None:
    idx = opener()
    counts = Counter({h(1): 2, h(2): 1})
    m1, dupes = write(idx, counts)
    assert dupes == [] and idx.manifest(m1) == (300, 3, 0)
    m2, _ = write(idx, Counter({h(2): 1, h(3): 1}))
    assert dict(idx.chunk_refs()) == {h(1): 2, h(2): 2, h(3): 1}
    assert idx.writer_refs() == [] and idx.private_ids() == set()
    ids = idx.blob_ids([h(1), h(2), h(9)])
    assert set(ids) == {h(1), h(2)} and idx.chunk_blob_ids() == set(idx.blob_ids([h(1), h(2), h(3)]).values())
    assert idx.protected_ids() == idx.chunk_blob_ids() | {m1, m2}
    t = idx.totals()
    assert (t.manifests, t.logical_bytes, t.chunks, t.stored_bytes) == (2, 500, 3, 300)
    # Released in two resumable batches; a replayed batch (wrong start) changes nothing.
    assert idx.release(m1, 0, [h(1)]) == [] and idx.manifest(m1) == (300, 3, 1)
    assert idx.release(m1, 0, [h(1)]) == [] and dict(idx.chunk_refs())[h(1)] == 1
    freed = idx.release(m1, 1, [h(1), h(2)])
    assert freed == [ids[h(1)]] and dict(idx.chunk_refs()) == {h(2): 1, h(3): 1}
    idx.drop_manifest(m1)
    assert idx.manifest(m1) is None and set(idx.pending_gc()) == {ids[h(1)], m1}
    idx.gc_done([ids[h(1)], m1])
    assert idx.pending_gc() == [] and sorted(idx.manifest_ids()) == [m2]


def test_abort_releases_refs_and_queues_intents(opener: Opener) -> None:
    idx = opener()
    m1, _ = write(idx, Counter({h(1): 1}))
    w = "aborted"
    idx.begin_writer(w)
    idx.add_intents(w, ["manifest-x"])
    assert idx.take_refs(w, Counter({h(1): 3, h(2): 1})) == [h(2)]
    idx.add_intents(w, ["chunk-2"])
    assert idx.publish(w, [(h(2), "chunk-2", 10, 1)]) == []
    assert dict(idx.chunk_refs()) == {h(1): 4, h(2): 1} and dict(idx.writer_refs()) == {h(1): 3, h(2): 1}
    assert idx.private_ids() == {"manifest-x"}  # chunk-2 is published: a chunk, no longer an intent
    assert sorted(idx.end_writer(w)) == ["chunk-2", "manifest-x"]
    assert dict(idx.chunk_refs()) == {h(1): 1} and idx.writer_refs() == []
    assert set(idx.pending_gc()) == {"chunk-2", "manifest-x"} and idx.manifest_ids() == [m1]
    assert idx.end_writer(w) == []  # twice is harmless


def test_publish_race_loser_gets_its_blob_back(opener: Opener) -> None:
    a, b = opener(), opener()
    a.begin_writer("wa")
    b.begin_writer("wb")
    assert a.take_refs("wa", Counter({h(7): 1})) == [h(7)]
    assert b.take_refs("wb", Counter({h(7): 2})) == [h(7)]
    a.add_intents("wa", ["blob-a"])
    b.add_intents("wb", ["blob-b"])
    assert a.publish("wa", [(h(7), "blob-a", 5, 1)]) == []
    assert b.publish("wb", [(h(7), "blob-b", 5, 2)]) == ["blob-b"]
    assert b.blob_ids([h(7)]) == {h(7): "blob-a"} and dict(a.chunk_refs()) == {h(7): 3}
    assert b.private_ids() == {"blob-b"}  # still an intent until the writer ends
    b.commit_manifest("wb", "m-b", 10, 2)
    a.commit_manifest("wa", "m-a", 5, 1)
    assert a.private_ids() == set() and sorted(a.manifest_ids()) == ["m-a", "m-b"]


def test_set_refs_and_swap_chunk(opener: Opener) -> None:
    idx = opener()
    write(idx, Counter({h(1): 1, h(2): 1}))
    ids = idx.blob_ids([h(1), h(2)])
    assert idx.set_refs({h(1): 5, h(2): 0}) == [ids[h(2)]]
    assert dict(idx.chunk_refs()) == {h(1): 5} and idx.pending_gc() == [ids[h(2)]]
    assert idx.swap_chunk(h(1), ids[h(1)], "fresh")
    assert not idx.swap_chunk(h(1), ids[h(1)], "other")  # moved meanwhile: nothing changes
    assert idx.blob_ids([h(1)]) == {h(1): "fresh"} and ids[h(1)] in idx.pending_gc()


def test_stale_writers(opener: Opener) -> None:
    a = opener()
    a.begin_writer("mine")
    assert a.stale_writers(at_start=False) == []
    assert a.stale_writers(at_start=True) == ["mine"]  # a start: rows of this pid are an earlier life
    if isinstance(a, SqliteChunkIndex):
        a.query("UPDATE writers SET pid=? WHERE writer='mine'", (2**22 + 12345,))  # a dead pid
        assert a.stale_writers(at_start=False) == ["mine"]
        return
    assert isinstance(a, PostgresChunkIndex)
    # Another machine's writer: alive while its lease runs, whatever its pid says here.
    b = PostgresChunkIndex(a.dsn, lease=1.0)
    b.host = "elsewhere/0000"
    try:
        b.begin_writer("theirs")
        assert a.take_refs("mine", Counter({h(1): 1})) == [h(1)]
        assert b.take_refs("theirs", Counter({h(2): 1})) == [h(2)]
        assert "theirs" not in a.stale_writers(at_start=True)
        time.sleep(1.0)  # the heartbeat renews it: still live
        assert "theirs" not in a.stale_writers(at_start=False)
        b.active.discard("theirs")  # its process hangs: no more heartbeats
        time.sleep(1.5)
        assert a.stale_writers(at_start=False) == ["theirs"]
        assert a.end_writer("theirs") == []
        with pytest.raises(errors.InternalError):  # rolled back: it must not go on
            b.publish("theirs", [(h(2), "late", 1, 1)])
        with pytest.raises(errors.InternalError):
            b.commit_manifest("theirs", "m", 1, 1)
        # Same host: another live process's writer is not stale, a dead pid's is, at once.
        b.host = a.host
        b.begin_writer("sibling")
        b.active.discard("sibling")
        set_pid = "UPDATE dedup_writers SET pid=%s WHERE writer='sibling'"
        b._txn(lambda c: c.execute(set_pid, (os.getppid(),)))
        assert "sibling" not in a.stale_writers(at_start=True)
        b._txn(lambda c: c.execute(set_pid, (2**22 + 12345,)))
        assert "sibling" in a.stale_writers(at_start=False)
    finally:
        b.close()


def test_two_gateways_race_exact_refcounts(opener: Opener) -> None:
    """Writers on two index objects pin, publish, commit, abort and release the same 24 hashes from
    8 threads at once; at the end every chunk's count equals the references of live manifests."""
    gateways = [opener(), opener()]
    hashes = [h(i) for i in range(24)]
    live: dict[str, Counter[bytes]] = {}
    published: set[str] = set()
    dupes: set[str] = set()
    freed: list[str] = []
    guard = threading.Lock()  # guards the test's own bookkeeping only
    failures: list[BaseException] = []

    def release(idx: ChunkIndex, mid: str, counts: Counter[bytes]) -> None:
        seq = list(counts.elements())
        random.shuffle(seq)
        got = (
            idx.release(mid, 0, seq[:3]) + idx.release(mid, 3, seq[3:])
            if len(seq) > 3
            else idx.release(mid, 0, seq)
        )
        idx.drop_manifest(mid)
        with guard:
            freed.extend(got)

    def worker(idx: ChunkIndex, seed: int) -> None:
        rnd = random.Random(seed)
        mine: list[tuple[str, Counter[bytes]]] = []
        try:
            for step in range(25):
                counts = Counter(rnd.choices(hashes, k=rnd.randint(1, 8)))
                w = f"w{seed}-{step}"
                idx.begin_writer(w)
                missing = idx.take_refs(w, counts)
                new = [(x, blob(), 10, counts[x]) for x in missing]
                idx.add_intents(w, [b for _, b, _, _ in new])
                lost = idx.publish(w, new) if new else []
                with guard:
                    published.update(b for _, b, _, _ in new if b not in lost)
                    dupes.update(lost)
                if rnd.random() < 0.2:
                    got = idx.end_writer(w)
                    with guard:
                        freed.extend(b for b in got if b not in lost)
                    continue
                mid = blob()
                idx.commit_manifest(w, mid, 10, sum(counts.values()))
                mine.append((mid, counts))
                if rnd.random() < 0.4:
                    release(idx, *mine.pop(rnd.randrange(len(mine))))
            with guard:
                live.update(dict(mine))
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(gateways[i % 2], i)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    want: Counter[bytes] = Counter()
    for c in live.values():
        want.update(c)
    a = gateways[0]
    assert dict(a.chunk_refs()) == dict(want)  # no chunk at zero stays, no count is off by one
    assert a.writer_refs() == [] and sorted(a.manifest_ids()) == sorted(live)
    # Release everything from both gateways at once: every published chunk is freed exactly once.
    items = list(live.items())

    def release_all(g: ChunkIndex, part: list[tuple[str, Counter[bytes]]]) -> None:
        for m, c in part:
            release(g, m, c)

    rel = [threading.Thread(target=release_all, args=(gateways[i % 2], items[i::4])) for i in range(4)]
    for t in rel:
        t.start()
    for t in rel:
        t.join()
    assert a.chunk_refs() == [] and a.manifest_ids() == []
    chunk_frees = [b for b in freed if b in published]
    assert sorted(chunk_frees) == sorted(published)  # each once
    assert published <= set(a.pending_gc())  # queued until deleted


def test_holds_state(tmp_path: Path) -> None:
    path = tmp_path / "dedup.db"
    assert not holds_state(path)
    idx = SqliteChunkIndex(path, fsync=False)
    assert not holds_state(path)  # the tables alone are nothing to lose
    write(idx, Counter({h(1): 1}))
    idx.close()
    assert holds_state(path)
    assert os.path.getsize(path) > 0
