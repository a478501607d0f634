"""``rs3gw fsck`` on data directories written by a real server: clean, damaged, littered, crashed."""

from __future__ import annotations

import hashlib
import json
import os
import random
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from backend_matrix import backend_env
from blob_access import blob_ids, read_blob, remove_blob
from conftest import ACCESS_KEY, SECRET_KEY, start_server
from meta_access import dedup_chunk_blobs
from pg_cluster import metadata_args

DEDUP = ("--dedup", "--dedup-algorithm", "content-defined", "--dedup-block-size", "16384")


def fsck(data_dir: Path, *args: str) -> tuple[int, dict[str, Any]]:
    env = {**os.environ, "RS3GW_ACCESS_KEY": ACCESS_KEY, "RS3GW_SECRET_KEY": SECRET_KEY}
    env |= backend_env(data_dir)  # the store and backend its test server used (the test matrix)
    if meta := metadata_args(data_dir, ()):
        env["RS3GW_METADATA"] = meta[1]
    out = subprocess.run(
        [sys.executable, "-m", "rs3gw", "fsck", "--data-dir", str(data_dir), "--json", *args],
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert out.stdout, out.stderr
    report: dict[str, Any] = json.loads(out.stdout)
    return out.returncode, report


def populate(data_dir: Path, *args: str) -> dict[str, bytes]:
    srv = start_server(data_dir, *args)
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="fsck")
        rnd = random.Random(11)
        base = rnd.randbytes(600_000)
        objs = {"small": b"tiny", "big": base, "big-copy": base, "other": rnd.randbytes(300_000)}
        for k, v in objs.items():
            s3.put_object(Bucket="fsck", Key=k, Body=v)
        return objs
    finally:
        srv.stop()


def test_clean_directory_is_clean(tmp_path: Path) -> None:
    data = tmp_path / "data"
    populate(data, *DEDUP)
    rc, rep = fsck(data)
    assert rc == 0 and rep["clean"], rep
    assert rep["versions_checked"] == 4
    assert rep["chunks_verified"] > 0


@pytest.mark.local_backend_only("deletes a stored blob on disk")
def test_missing_blob_file_names_the_object(tmp_path: Path) -> None:
    data = tmp_path / "data"
    populate(data)
    victim = max(blob_ids(data), key=lambda b: len(read_blob(data, b)))
    remove_blob(data, victim)
    rc, rep = fsck(data)
    assert rc == 1 and not rep["clean"]
    assert [m["key"] for m in rep["missing"]] in (["big"], ["big-copy"])
    rc, rep = fsck(data, "--repair")
    assert rc == 1 and rep["unrepairable"], rep  # lost data cannot be conjured back


@pytest.mark.local_backend_only("deletes a stored chunk on disk")
def test_missing_chunk_names_every_object_using_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    populate(data, *DEDUP)
    chunk = dedup_chunk_blobs(data, "refs = 2")[0]
    # Content-defined chunks average 16 KiB but may pass 32 KiB: a row of smallblobs.db or a file.
    assert chunk in blob_ids(data)
    remove_blob(data, chunk)
    rc, rep = fsck(data)
    assert rc == 1
    assert sorted(m["key"] for m in rep["missing"]) == ["big", "big-copy"]


@pytest.mark.local_backend_only("plants files on disk (upstream orphans: test_dedup_remote_blocks.py)")
def test_orphans_are_reported_and_repaired(tmp_path: Path) -> None:
    data = tmp_path / "data"
    objs = populate(data, *DEDUP)
    orphan = secrets.token_hex(16)
    (data / "blobs" / orphan[:2]).mkdir(exist_ok=True)
    (data / "blobs" / orphan[:2] / orphan).write_bytes(b"left behind")
    (data / "tmp" / f"{secrets.token_hex(16)}.999999999.tmp").write_bytes(b"half written")
    rc, rep = fsck(data)
    assert rc == 1 and rep["orphan_blobs"] == [orphan] and len(rep["temp_files"]) == 1
    rc, rep = fsck(data, "--repair")
    assert rc == 0 and rep["repaired"], rep
    assert not (data / "blobs" / orphan[:2] / orphan).exists()
    rc, rep = fsck(data)
    assert rc == 0 and rep["clean"], rep
    srv = start_server(data, *DEDUP)
    try:
        s3 = srv.client()
        for k, v in objs.items():
            assert s3.get_object(Bucket="fsck", Key=k)["Body"].read() == v
    finally:
        srv.stop()


def _writer(srv: Any, n: int, acked: dict[str, str], stop: threading.Event) -> None:
    s3 = srv.client()
    rnd = random.Random(n)
    shared = random.Random(99).randbytes(400_000)
    i = 0
    while not stop.is_set():
        body = shared[: rnd.randrange(100_000, 400_000)] + rnd.randbytes(rnd.randrange(0, 300_000))
        key = f"w{n}-{i}"
        try:
            s3.put_object(Bucket="crash", Key=key, Body=body)
        except Exception:
            return  # the server died under us
        acked[key] = hashlib.md5(body).hexdigest()
        if i % 3 == 2:  # deletes too, so chunk GC runs while the server is killed
            old = f"w{n}-{i - 2}"
            acked.pop(old, None)  # first: a delete cut short by the kill may still have committed
            try:
                s3.delete_object(Bucket="crash", Key=old)
            except Exception:
                return
        i += 1


@pytest.mark.local_backend_only("a crash's upstream leftovers are never swept at start: fsck lists them")
def test_kill_9_during_dedup_writes_leaves_a_clean_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    srv = start_server(data, *DEDUP)
    srv.client().create_bucket(Bucket="crash")
    acked: dict[str, str] = {}
    stop = threading.Event()
    threads = [threading.Thread(target=_writer, args=(srv, n, acked, stop)) for n in range(3)]
    for t in threads:
        t.start()
    time.sleep(2.5)
    srv.proc.kill()  # SIGKILL mid-write
    srv.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) > 3
    # The restart rolls back dead writers and sweeps what the crash left half-done.
    srv = start_server(data, *DEDUP)
    try:
        s3 = srv.client()
        for key, md5 in acked.items():
            body = s3.get_object(Bucket="crash", Key=key)["Body"].read()
            assert hashlib.md5(body).hexdigest() == md5, key
    finally:
        srv.stop()
    rc, rep = fsck(data)
    assert rc == 0 and rep["clean"], rep
