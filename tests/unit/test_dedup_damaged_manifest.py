"""Freeing a dedup manifest whose bytes are damaged, truncated or gone releases exactly the chunk
references it holds: the chunk index records them at commit (``manifest_refs``), so a hash read
from damaged bytes releases nothing, not even a chunk another manifest holds, and the real
chunk's reference is not leaked. Both index backends (SQLite and PostgreSQL) behave the same.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from blob_access import flip_byte, read_blob, remove_blob, write_blob
from pg_cluster import shared_cluster
from rs3gw.blobs.chunk_index import ChunkIndex
from rs3gw.blobs.chunk_index_pg import PostgresChunkIndex
from rs3gw.blobs.chunk_index_sqlite import SqliteChunkIndex
from rs3gw.blobs.dedup import ChunkingAlgorithm, DedupBlobStore, DedupConfig
from rs3gw.blobs.local import LocalBlobStore

Opener = Callable[[], ChunkIndex]
BLOCK = 4096


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    opened: list[ChunkIndex] = []
    dsn = shared_cluster().create_database("dmgmanifest") if request.param == "postgresql" else ""

    def make() -> ChunkIndex:
        idx: ChunkIndex = (
            SqliteChunkIndex(tmp_path / "dedup.db", fsync=False)
            if request.param == "sqlite"
            else PostgresChunkIndex(dsn, max_size=4)
        )
        opened.append(idx)
        return idx

    yield make
    for idx in opened:
        idx.close()


def h(i: int) -> bytes:
    return i.to_bytes(32, "big")


def write(idx: ChunkIndex, counts: Counter[bytes]) -> str:
    """One deduplicating write through the index: pin, publish what is missing, commit."""
    w, mid = secrets.token_hex(8), secrets.token_hex(16)
    idx.begin_writer(w)
    idx.add_intents(w, [mid])
    missing = idx.take_refs(w, counts)
    new = [(x, secrets.token_hex(16), 100, counts[x]) for x in missing]
    idx.add_intents(w, [b for _, b, _, _ in new])
    if new:
        idx.publish(w, new)
    idx.commit_manifest(w, mid, 100 * sum(counts.values()), sum(counts.values()))
    return mid


def test_release_names_only_refs_the_manifest_holds(opener: Opener) -> None:
    """Damaged records (a phantom hash, a hash of another manifest's chunk) release nothing; what
    the manifest really held goes when it is dropped."""
    idx = opener()
    good = write(idx, Counter({h(1): 1, h(9): 1}))
    bad = write(idx, Counter({h(1): 2, h(2): 1}))
    ids = idx.blob_ids([h(1), h(2), h(9)])
    assert idx.tracks_refs(bad) and dict(idx.chunk_refs()) == {h(1): 3, h(2): 1, h(9): 1}
    # As read from damaged bytes: h(2) became a phantom, one h(1) became h(9) (good's chunk).
    assert idx.release(bad, 0, [h(1), h(9), h(77)]) == []
    assert dict(idx.chunk_refs()) == {h(1): 2, h(2): 1, h(9): 1}  # h(9) untouched
    assert sorted(idx.drop_manifest(bad)) == [ids[h(2)]]
    assert dict(idx.chunk_refs()) == {h(1): 1, h(9): 1}
    assert idx.manifest(bad) is None and set(idx.pending_gc()) == {ids[h(2)], bad}
    assert sorted(idx.drop_manifest(good)) == sorted([ids[h(1)], ids[h(9)]])  # bytes never read
    assert idx.chunk_refs() == [] and idx.drop_manifest(good) == []  # twice is harmless


def test_fsck_count_below_the_rows_untracks_the_holders(opener: Opener) -> None:
    """fsck forces a count from bytes; a damaged live manifest's bytes miss one reference. Its
    holders are then released from their bytes as fsck counted them: a later release never
    takes the good manifest's reference (a wrong decrement is data loss)."""
    idx = opener()
    good = write(idx, Counter({h(1): 1}))
    damaged = write(idx, Counter({h(1): 1, h(2): 1}))
    ids = idx.blob_ids([h(1), h(2)])
    # fsck counted damaged's bytes as [h(77), h(2)]: h(1) held once (by good).
    assert idx.set_refs({h(1): 1}) == []
    assert not idx.tracks_refs(good) and not idx.tracks_refs(damaged)
    assert idx.release(damaged, 0, [h(77), h(2)]) == [ids[h(2)]]
    assert idx.drop_manifest(damaged) == [] and dict(idx.chunk_refs()) == {h(1): 1}
    assert idx.release(good, 0, [h(1)]) == [ids[h(1)]] and idx.drop_manifest(good) == []
    assert idx.chunk_refs() == []
    # A count fsck agrees with (or above the rows) leaves tracking alone.
    m = write(idx, Counter({h(3): 2}))
    assert idx.set_refs({h(3): 2}) == [] and idx.tracks_refs(m)


def test_dedup_db_from_before_tracking_is_released_from_bytes(tmp_path: Path) -> None:
    """An older dedup.db (no ``tracked`` column, no ``manifest_refs``) opens, and its manifests are
    released from their bytes as before; new ones are tracked."""
    path = tmp_path / "dedup.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE chunks (hash BLOB PRIMARY KEY, blob_id TEXT NOT NULL, size INTEGER NOT NULL,"
        " refs INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE manifests (blob_id TEXT PRIMARY KEY, size INTEGER NOT NULL, count INTEGER NOT NULL,"
        " released INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    )
    db.execute("INSERT INTO chunks VALUES (?, 'c1', 100, 2)", (h(1),))
    db.execute("INSERT INTO manifests (blob_id, size, count) VALUES ('old', 200, 2)")
    db.commit()
    db.close()
    idx = SqliteChunkIndex(path, fsync=False)
    try:
        assert idx.manifest("old") == (200, 2, 0) and not idx.tracks_refs("old")
        new = write(idx, Counter({h(1): 1}))
        assert idx.tracks_refs(new) and dict(idx.chunk_refs()) == {h(1): 3}
        assert idx.release("old", 0, [h(1), h(1)]) == [] and idx.drop_manifest("old") == []
        assert dict(idx.chunk_refs()) == {h(1): 1}
    finally:
        idx.close()
    SqliteChunkIndex(path, fsync=False).close()  # reopening an upgraded file changes nothing


async def _store_case(root: Path, index: ChunkIndex) -> None:
    cfg = DedupConfig(True, BLOCK, ChunkingAlgorithm.FIXED_SIZE, 0)
    store = DedupBlobStore(LocalBlobStore(root, fsync=False), index, cfg, fsync=False)
    try:
        base = random.Random(7).randbytes(32 * BLOCK)  # 32 distinct blocks
        bodies = {"a": base, "b": base[: 8 * BLOCK] + b"\x01" * BLOCK * 3, "c": base[4 * BLOCK :]}
        ids = {}
        for k, body in bodies.items():
            w = store.new_writer()
            await w.write(body)
            await w.close()
            ids[k] = w.blob_id
        before = dict(index.chunk_refs())
        flip_byte(root, ids["b"], len(read_blob(root, ids["b"])) - 1)  # b's last hash: a phantom
        raw = read_blob(root, ids["c"])
        write_blob(root, ids["c"], raw[: len(raw) // 2])  # c's manifest: truncated
        await store.delete([ids["b"], ids["c"]])
        refs = dict(index.chunk_refs())
        assert len(refs) == len(
            {hashlib.sha256(base[i : i + BLOCK]).digest() for i in range(0, len(base), BLOCK)}
        )
        assert all(n == 1 for n in refs.values()), (before, refs)  # a's references, nothing leaked
        assert b"".join([c async for c in store.read(ids["a"])]) == bodies["a"]
        remove_blob(root, ids["a"])  # a's manifest: gone
        await store.delete([ids["a"]])
        await store.gc()
        assert index.chunk_refs() == [] and index.manifest_ids() == [] and index.pending_gc() == []
        assert [b async for b in store.inner.list_ids()] == []
    finally:
        store.close()


def test_store_deletes_damaged_truncated_and_lost_manifests_exactly(tmp_path: Path, opener: Opener) -> None:
    asyncio.run(_store_case(tmp_path / "data", opener()))
