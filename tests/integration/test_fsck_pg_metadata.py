"""``rs3gw fsck``, ``rs3gw dedup stats`` and the Python API over a PostgreSQL-backed data directory:
they read the metadata through the MetadataStore interface, never a ``meta.db`` file (there is none)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from backend_matrix import backend_args, backend_env
from blob_access import blob_ids, remove_blob
from conftest import ACCESS_KEY, SECRET_KEY, start_server
from meta_access import dedup_chunk_blobs
from pg_cluster import PgCluster
from rs3gw.storage import DedupManager, StorageEngine

DEDUP = ("--dedup", "--dedup-algorithm", "content-defined", "--dedup-block-size", "16384")


def rs3gw(data_dir: Path, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "RS3GW_ACCESS_KEY": ACCESS_KEY,
        "RS3GW_SECRET_KEY": SECRET_KEY,
        **backend_env(data_dir),
    }
    cmd = [sys.executable, "-m", "rs3gw", *args, "--data-dir", str(data_dir), "--metadata", dsn]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def fsck(data_dir: Path, dsn: str, *args: str) -> tuple[int, dict[str, Any]]:
    out = rs3gw(data_dir, dsn, "fsck", "--json", *args)
    assert out.stdout, out.stderr
    report: dict[str, Any] = json.loads(out.stdout)
    return out.returncode, report


@pytest.fixture
def populated(tmp_path: Path, pg_cluster: PgCluster) -> tuple[Path, str, dict[str, bytes]]:
    data, dsn = tmp_path / "data", pg_cluster.create_database("fsck") + "?gc_grace=0"
    remote = bool(backend_args(data))  # RS3GW_TEST_BACKEND=s3: dedup there needs SQLite metadata
    srv = start_server(data, "--metadata", dsn, *(() if remote else DEDUP))
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="fsck")
        base = secrets.token_bytes(300_000)
        objs = {"small": b"tiny", "big": base, "big-copy": base, "ключ/é": secrets.token_bytes(70_000)}
        for k, v in objs.items():
            s3.put_object(Bucket="fsck", Key=k, Body=v)
        s3.create_multipart_upload(Bucket="fsck", Key="unfinished")  # parts of it count as uses too
        s3.put_object(Bucket="fsck", Key="small", Body=b"replaced")  # a freed blob goes through GC
        objs["small"] = b"replaced"
    finally:
        srv.stop()
    assert not (data / "meta.db").exists()  # nothing for a SQLite reader to find
    return data, dsn, objs


def test_fsck_over_postgresql_clean_then_orphan_repaired(
    populated: tuple[Path, str, dict[str, bytes]],
) -> None:
    data, dsn, _ = populated
    rc, rep = fsck(data, dsn)
    assert rc == 0 and rep["clean"], rep
    assert rep["versions_checked"] == 4 and rep["blobs_checked"] == 4
    assert rep["chunks_verified"] > 0 or bool(backend_args(data))
    assert not (data / "meta.db").exists()  # fsck did not fall back to an empty SQLite store
    if backend_args(data):
        return  # the orphan below is a local file; the S3 backend's orphans: test_dedup_remote_blocks
    orphan = secrets.token_hex(16)
    (data / "blobs" / orphan[:2]).mkdir(exist_ok=True)
    (data / "blobs" / orphan[:2] / orphan).write_bytes(b"left behind")
    rc, rep = fsck(data, dsn)
    assert rc == 1 and rep["orphan_blobs"] == [orphan], rep
    rc, rep = fsck(data, dsn, "--repair")
    assert rc == 0 and rep["repaired"], rep
    assert not (data / "blobs" / orphan[:2] / orphan).exists()


@pytest.mark.local_backend_only("deletes a stored blob on disk")
def test_fsck_over_postgresql_names_the_object_whose_data_is_gone(
    populated: tuple[Path, str, dict[str, bytes]],
) -> None:
    data, dsn, _ = populated
    chunk = dedup_chunk_blobs(data, "refs = 2", dsn=dsn)[0]  # the chunk index is in PostgreSQL too
    # Content-defined chunks average 16 KiB but may pass 32 KiB: a row of smallblobs.db or a file.
    assert chunk in blob_ids(data)
    remove_blob(data, chunk)
    rc, rep = fsck(data, dsn)
    assert rc == 1 and not rep["clean"]
    assert sorted((m["bucket"], m["key"]) for m in rep["missing"]) == [("fsck", "big"), ("fsck", "big-copy")]


@pytest.mark.local_backend_only("dedup over the S3 backend needs SQLite metadata")
def test_dedup_stats_over_postgresql(populated: tuple[Path, str, dict[str, bytes]]) -> None:
    data, dsn, objs = populated
    out = rs3gw(data, dsn, "dedup", "stats", "--json")
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    logical = len(objs["big"]) + len(objs["big-copy"])  # the others are under the 128 KiB dedup minimum
    assert stats["buckets"]["fsck"]["logical_bytes"] == logical
    assert stats["buckets"]["fsck"]["blobs"] == 2
    assert stats["buckets"]["fsck"]["stored_bytes"] < logical  # big and big-copy share their chunks


@pytest.mark.local_backend_only("the Python API opens the local backend of its data directory")
def test_python_api_over_postgresql(tmp_path: Path, pg_cluster: PgCluster) -> None:
    dsn = pg_cluster.create_database("api") + "?gc_grace=0"

    async def main() -> None:
        async with StorageEngine(tmp_path / "api", fsync=False, metadata=dsn) as eng:
            await eng.create_bucket("apib")
            etag = await eng.put_object("apib", "k", "text/plain", {"a": "1"}, b"hello")
            assert etag == "5d41402abc4b2a76b9719d911017c592"
        assert not (tmp_path / "api" / "meta.db").exists()
        async with StorageEngine(tmp_path / "api", fsync=False, metadata=dsn) as eng:  # state is in PG
            body, meta = await eng.get_object("apib", "k")
            assert body == b"hello" and meta.meta.user_meta == {"a": "1"}
        dm = DedupManager(tmp_path / "dd", fsync=False, metadata=dsn)
        try:
            block = secrets.token_bytes(200_000)
            await dm.store_object("dmb", "one", block)
            await dm.store_object("dmb", "two", block)
            stats = await dm.get_stats()
            assert stats.buckets["dmb"].logical_bytes == 400_000 and stats.dedup_ratio > 0.4
        finally:
            await dm.close()

    asyncio.run(main())
    with pytest.raises(ValueError, match="postgresql"):
        StorageEngine(tmp_path / "bad", metadata="mysql://nope")
