"""Small blobs as rows of ``smallblobs.db``: what lands where, byte-exact reads, freeing, the
``--small-blob-max`` switch, concurrent durable writes sharing commits, orphans after a crash."""

from __future__ import annotations

import json
import os
import random
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from backend_matrix import backend_env
from blob_access import file_ids, packed_ids
from conftest import ACCESS_KEY, SECRET_KEY, start_server
from pg_cluster import metadata_args

pytestmark = pytest.mark.local_backend_only("rows of the local backend's smallblobs.db")

LIMIT = 32 << 10
SIZES = [0, 1, 4096, LIMIT, LIMIT + 1, 3 * LIMIT, 1 << 20, (1 << 20) + 5]


def fsck(data_dir: Path, *args: str) -> tuple[int, dict[str, object]]:
    env = {**os.environ, "RS3GW_ACCESS_KEY": ACCESS_KEY, "RS3GW_SECRET_KEY": SECRET_KEY}
    env |= backend_env(data_dir)
    if meta := metadata_args(data_dir, ()):
        env["RS3GW_METADATA"] = meta[1]
    cmd = [sys.executable, "-m", "rs3gw", "fsck", "--data-dir", str(data_dir), "--json", *args]
    out = subprocess.run(cmd, capture_output=True, env=env, timeout=120)
    assert out.stdout, out.stderr
    report: dict[str, object] = json.loads(out.stdout)
    return out.returncode, report


def settle(cond: Callable[[], bool], wait: float = 10.0) -> bool:
    deadline = time.monotonic() + wait
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def seed(data: Path, bucket: str, key: str, body: bytes) -> None:
    """One object written by a server that is then stopped (the next step restarts or inspects)."""
    srv = start_server(data)
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    finally:
        srv.stop()


def test_small_blobs_are_rows_and_read_back_exactly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    srv = start_server(data)
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="rows")
        rnd = random.Random(5)
        bodies = {f"k{n}": rnd.randbytes(n) for n in SIZES}
        for key, body in bodies.items():
            s3.put_object(Bucket="rows", Key=key, Body=body)
        small = [k for k, b in bodies.items() if len(b) <= LIMIT]
        assert len(packed_ids(data)) == len(small)  # one row per small object, nothing else
        assert len(file_ids(data)) == len(bodies) - len(small)
        for key, body in bodies.items():
            assert s3.get_object(Bucket="rows", Key=key)["Body"].read() == body
            if len(body) > 10:
                got = s3.get_object(Bucket="rows", Key=key, Range="bytes=3-9")["Body"].read()
                assert got == body[3:10]
                tail = s3.get_object(Bucket="rows", Key=key, Range="bytes=-4")["Body"].read()
                assert tail == body[-4:]
        # Overwrites and deletes free rows as they free files.
        s3.put_object(Bucket="rows", Key="k1", Body=b"replaced")
        assert s3.get_object(Bucket="rows", Key="k1")["Body"].read() == b"replaced"
        for key in bodies:
            s3.delete_object(Bucket="rows", Key=key)
        # Freed blobs go after the delete is acknowledged (the engine's free queue): wait for them.
        assert settle(lambda: not packed_ids(data) and not file_ids(data))
        # A copy of a small object is a row of its own; the source's deletion leaves it readable.
        s3.put_object(Bucket="rows", Key="src", Body=b"copy me")
        s3.copy_object(Bucket="rows", Key="dst", CopySource={"Bucket": "rows", "Key": "src"})
        s3.delete_object(Bucket="rows", Key="src")
        assert s3.get_object(Bucket="rows", Key="dst")["Body"].read() == b"copy me"
        assert settle(lambda: len(packed_ids(data)) == 1)
    finally:
        srv.stop()
    assert "Traceback" not in srv.log.read_text()
    rc, rep = fsck(data)
    assert rc == 0 and rep["clean"], rep


def test_concurrent_durable_small_puts_all_read_back(tmp_path: Path) -> None:
    """fsync on (the default): 16 writers share WAL commits; every acknowledged body is there."""
    data = tmp_path / "data"
    srv = start_server(data)
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="many")
        bodies = {f"o{i}": secrets.token_bytes(1 + i * 97 % 9000) for i in range(160)}
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda kv: s3.put_object(Bucket="many", Key=kv[0], Body=kv[1]), bodies.items()))
        assert len(packed_ids(data)) == len(bodies) and not file_ids(data)
        with ThreadPoolExecutor(16) as pool:
            got = dict(
                pool.map(lambda k: (k, s3.get_object(Bucket="many", Key=k)["Body"].read()), list(bodies))
            )
        assert got == bodies
    finally:
        srv.stop()


def test_switched_off_new_blobs_are_files_and_old_rows_still_read(tmp_path: Path) -> None:
    data = tmp_path / "data"
    seed(data, "switch", "row", b"written as a row")
    assert len(packed_ids(data)) == 1
    srv = start_server(data, "--small-blob-max", "0")
    try:
        s3 = srv.client()
        s3.put_object(Bucket="switch", Key="file", Body=b"written as a file")
        assert len(file_ids(data)) == 1 and len(packed_ids(data)) == 1
        assert s3.get_object(Bucket="switch", Key="row")["Body"].read() == b"written as a row"
        assert s3.get_object(Bucket="switch", Key="file")["Body"].read() == b"written as a file"
    finally:
        srv.stop()


def test_bad_small_blob_max_stops_the_server_with_one_line(tmp_path: Path) -> None:
    cmd = [
        sys.executable, "-m", "rs3gw", "serve", "--data-dir", str(tmp_path / "d"), "--address", "127.0.0.1:1",
        "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, "--small-blob-max", str(2 << 20),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "small" in out.stderr and "Traceback" not in out.stderr


def test_orphan_row_is_reported_by_fsck_and_swept_at_start(tmp_path: Path) -> None:
    """A row committed just before a crash, with no metadata yet, is an orphan like a file."""
    data = tmp_path / "data"
    seed(data, "orph", "kept", b"kept")
    orphan = secrets.token_hex(16)
    with sqlite3.connect(data / "smallblobs.db") as conn:
        conn.execute("INSERT INTO small VALUES (?, ?)", (orphan, b"left by a crash"))
    rc, rep = fsck(data)
    assert rc == 1 and rep["orphan_blobs"] == [orphan], rep
    srv = start_server(data)  # alone on the data dir: the start-up sweep removes it
    try:
        assert srv.client().get_object(Bucket="orph", Key="kept")["Body"].read() == b"kept"
    finally:
        srv.stop()
    assert orphan not in packed_ids(data) and len(packed_ids(data)) == 1
    rc, rep = fsck(data)
    assert rc == 0 and rep["clean"], rep
