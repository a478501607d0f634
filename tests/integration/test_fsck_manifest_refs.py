"""``rs3gw fsck`` counts a tracked dedup manifest's chunk references from the index's
``manifest_refs`` rows (what releasing it drops), not from its bytes, and reports a manifest whose
bytes disagree with those rows: its object's data is lost, yet the rows keep holding the chunks,
so neither the check nor ``--repair`` nor a later delete frees a chunk another object needs.
Untracked (older) manifests are still counted from their bytes.

Runs on SQLite and, under RS3GW_TEST_METADATA=postgresql, on the PostgreSQL chunk index.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_fsck import fsck

from blob_access import read_blob, write_blob
from conftest import start_server
from meta_access import latest_segments, meta_db
from pg_cluster import server_metadata
from rs3gw.blobs.chunk_index import ChunkIndex
from rs3gw.blobs.chunk_index_pg import PostgresChunkIndex
from rs3gw.blobs.chunk_index_sqlite import SqliteChunkIndex
from rs3gw.meta.dsn import split_params

BLOCK = 16384
DEDUP = ("--dedup", "--dedup-algorithm", "fixed-size", "--dedup-block-size", str(BLOCK))
HEADER, RECORD = 16, 40  # manifest layout (dedup.py): magic + version, then (end offset, SHA-256)

pytestmark = pytest.mark.local_backend_only("edits stored manifest bytes on disk")


@contextmanager
def chunk_index(data: Path) -> Iterator[ChunkIndex]:
    """The chunk index the stopped server of ``data`` used (dedup.db, or its PostgreSQL tables)."""
    dsn = server_metadata(data)
    idx: ChunkIndex = (
        PostgresChunkIndex(split_params(dsn)[0], max_size=2)
        if dsn
        else SqliteChunkIndex(data / "dedup.db", fsync=False)
    )
    try:
        yield idx
    finally:
        idx.close()


def populate(data: Path) -> dict[str, bytes]:
    rnd = random.Random(5)
    base = rnd.randbytes(10 * BLOCK)
    objs = {"small": b"tiny", "big": base, "big-copy": base, "other": rnd.randbytes(9 * BLOCK)}
    srv = start_server(data, *DEDUP)
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="fsck")
        for k, v in objs.items():
            s3.put_object(Bucket="fsck", Key=k, Body=v)
    finally:
        srv.stop()
    return objs


def manifest_of(data: Path, key: str) -> str:
    [blob] = latest_segments(data, "fsck", key)
    assert read_blob(data, blob)[:8] == b"RS3GWDD1"  # stored as is (no compression here)
    return blob


def sha(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def refs(data: Path) -> dict[bytes, int]:
    with chunk_index(data) as idx:
        return dict(idx.chunk_refs())


def swap_record_hash(data: Path, blob: str, record: int, new: bytes) -> bytes:
    """Overwrite one record's hash (the offsets stay valid); returns the hash it named."""
    raw = bytearray(read_blob(data, blob))
    at = HEADER + record * RECORD + 8
    old = bytes(raw[at : at + 32])
    raw[at : at + 32] = new
    write_blob(data, blob, bytes(raw))
    return old


def check_survivors_then_delete_all(data: Path, objs: dict[str, bytes], damaged: str) -> None:
    """Every other object reads back exact; deleting them all (the damaged one too) leaves no chunk
    and a clean directory: nothing was freed early, nothing leaked."""
    srv = start_server(data, *DEDUP)
    try:
        s3 = srv.client()
        for k, v in objs.items():
            if k != damaged:
                assert s3.get_object(Bucket="fsck", Key=k)["Body"].read() == v, k
        s3.delete_object(Bucket="fsck", Key=damaged)
    finally:
        srv.stop()
    rc, rep = fsck(data)
    assert rc == 0 and rep["clean"], rep
    srv = start_server(data, *DEDUP)
    try:
        s3 = srv.client()
        for k, v in objs.items():
            if k != damaged:
                assert s3.get_object(Bucket="fsck", Key=k)["Body"].read() == v, k
                s3.delete_object(Bucket="fsck", Key=k)
    finally:
        srv.stop()
    assert refs(data) == {}
    rc, rep = fsck(data)
    assert rc == 0 and rep["clean"], rep


def test_record_naming_another_objects_chunk_is_a_damaged_manifest(tmp_path: Path) -> None:
    """A record of "big" now names a chunk "other" holds: the chunks all verify, yet "big" reads
    wrong data. fsck names it and counts big's references from its rows: no refcount mismatch,
    and --repair changes no count (lowering the shared chunk would free big-copy's data later)."""
    data = tmp_path / "data"
    objs = populate(data)
    blob = manifest_of(data, "big")
    with chunk_index(data) as idx:
        assert idx.held_refs(blob) is not None  # tracked: committed with its rows
    before = refs(data)
    foreign = sha(objs["other"][:BLOCK])
    assert swap_record_hash(data, blob, 3, foreign) == sha(objs["big"][3 * BLOCK : 4 * BLOCK])
    rc, rep = fsck(data)
    assert rc == 1 and not rep["clean"], rep
    assert [(m["key"], m["problem"].startswith("damaged manifest")) for m in rep["missing"]] == [
        ("big", True)
    ]
    assert [(d["blob_id"], d["tracked"]) for d in rep["damaged_manifests"]] == [(blob, True)], rep
    assert rep["refcount_mismatches"] == [], rep
    rc, rep = fsck(data, "--repair")
    assert rc == 1 and rep["unrepairable"], rep  # the object's data is lost
    assert refs(data) == before  # the rows still hold every chunk, no count forced
    with chunk_index(data) as idx:
        assert idx.held_refs(blob) is not None  # still released from its rows, not its bytes
    check_survivors_then_delete_all(data, objs, "big")


def test_truncated_tracked_manifest_is_reported_not_fatal(tmp_path: Path) -> None:
    """Half of big's records are gone: fsck reports the manifest (it used to stop with a traceback
    counting references from it) and takes its references from the index instead."""
    data = tmp_path / "data"
    objs = populate(data)
    blob = manifest_of(data, "big")
    before = refs(data)
    raw = read_blob(data, blob)
    write_blob(data, blob, raw[: HEADER + 4 * RECORD + 7])
    rc, rep = fsck(data)
    assert rc == 1 and [m["key"] for m in rep["missing"]] == ["big"], rep
    [d] = rep["damaged_manifests"]
    assert d["blob_id"] == blob and d["tracked"] and "unreadable" in d["problem"], rep
    assert rep["refcount_mismatches"] == [], rep
    rc, rep = fsck(data, "--repair")
    assert rc == 1 and refs(data) == before, rep
    check_survivors_then_delete_all(data, objs, "big")


def untrack(data: Path, blob: str) -> None:
    """Make ``blob`` look like a manifest committed before the index recorded references."""
    dsn = server_metadata(data)
    if dsn:
        import psycopg

        with psycopg.connect(split_params(dsn)[0]) as conn:
            conn.execute("UPDATE dedup_manifests SET tracked = false WHERE blob_id = %s", (blob,))
            conn.execute("DELETE FROM dedup_manifest_refs WHERE blob_id = %s", (blob,))
        return
    import sqlite3

    db = sqlite3.connect(data / "dedup.db")
    try:
        db.execute("UPDATE manifests SET tracked = 0 WHERE blob_id = ?", (blob,))
        db.execute("DELETE FROM manifest_refs WHERE blob_id = ?", (blob,))
        db.commit()
    finally:
        db.close()


def test_untracked_manifests_count_from_their_bytes(tmp_path: Path) -> None:
    """An older manifest has no rows: its bytes are its references. Damaged there, the counts
    follow the bytes (as its release will); cut short, its unread references are unknown, so
    --repair lowers no count and leaves it in place instead of stopping."""
    data = tmp_path / "data"
    objs = populate(data)
    blob = manifest_of(data, "big")
    untrack(data, blob)
    with chunk_index(data) as idx:
        assert idx.held_refs(blob) is None
    rc, rep = fsck(data)
    assert rc == 0 and rep["clean"], rep  # the same counts, from the bytes
    before = refs(data)
    old = swap_record_hash(data, blob, 3, sha(objs["other"][:BLOCK]))
    rc, rep = fsck(data)
    assert rc == 1 and rep["damaged_manifests"] == [], rep  # nothing to compare the bytes with
    got = {m["hash"]: (m["stored"], m["actual"]) for m in rep["refcount_mismatches"]}
    foreign = sha(objs["other"][:BLOCK])
    assert got == {old.hex(): (2, 1), foreign.hex(): (1, 2)}, rep
    swap_record_hash(data, blob, 3, old)  # undo; now cut it short instead
    raw = read_blob(data, blob)
    write_blob(data, blob, raw[: HEADER + 4 * RECORD])
    rc, rep = fsck(data)
    assert [(d["blob_id"], d["tracked"]) for d in rep["damaged_manifests"]] == [(blob, False)], rep
    # Its records are read in one batch, so none was counted: big's 10 chunks look half-held.
    assert len(rep["refcount_mismatches"]) == 10, rep
    rc, rep = fsck(data, "--repair")
    assert rc == 1 and any("untracked" in u for u in rep["unrepairable"]), rep
    assert refs(data) == before  # nothing lowered: big-copy's chunks are all still held
    srv = start_server(data, *DEDUP)
    try:
        s3 = srv.client()
        for k in ("big-copy", "other", "small"):
            assert s3.get_object(Bucket="fsck", Key=k)["Body"].read() == objs[k], k
    finally:
        srv.stop()


def test_damaged_orphan_manifest_is_freed_from_its_rows(tmp_path: Path) -> None:
    """A damaged manifest no object uses any more is an orphan: --repair removes it, releasing
    exactly the references its rows hold (not the foreign chunk its bytes now name)."""
    data = tmp_path / "data"
    objs = populate(data)
    blob = manifest_of(data, "big")
    swap_record_hash(data, blob, 3, sha(objs["other"][:BLOCK]))
    with meta_db(data) as db:
        db.execute("DELETE FROM objects WHERE bucket=? AND key=?", ("fsck", b"big"))
    rc, rep = fsck(data)
    assert rc == 1 and rep["missing"] == [] and rep["refcount_mismatches"] == [], rep
    assert rep["orphan_blobs"] == [blob] and [d["blob_id"] for d in rep["damaged_manifests"]] == [blob]
    rc, rep = fsck(data, "--repair")
    assert rc == 0 and rep["repaired"], rep
    base = objs["big"]
    assert (
        refs(data)
        == {
            **{sha(base[i : i + BLOCK]): 1 for i in range(0, len(base), BLOCK)},  # big-copy's
            **{sha(objs["other"][i : i + BLOCK]): 1 for i in range(0, len(objs["other"]), BLOCK)},
        }
    )
    rc, rep = fsck(data)
    assert rc == 0 and rep["clean"], rep
    del objs["big"]
    check_survivors_then_delete_all(data, objs, "big-copy")
