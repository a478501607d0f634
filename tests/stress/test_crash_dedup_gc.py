"""kill -9 during dedup garbage collection: deletes and overwrites of deduplicated objects release
chunk references and free chunk blobs while the server is killed. After a restart ``rs3gw fsck``
must report clean, every acknowledged object must read back byte for byte (an unacknowledged
delete or overwrite may or may not have happened, but never half), and deleting everything then
leaves no chunk behind: blocks orphaned by the crash are reclaimed.

Under RS3GW_TEST_METADATA=postgresql the object metadata is in PostgreSQL (fsck is pointed at it);
so is the chunk index (its ``dedup_*`` tables instead of ``dedup.db``): meta_access reads either."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from blob_access import blob_ids
from conftest import Server, start_server
from meta_access import dedup_chunk_counts
from pg_cluster import metadata_env

BUCKET = "dedupgc"
BLOCK = 4096
ARGS = (
    "--dedup",
    "--dedup-min-size",
    "0",
    "--dedup-block-size",
    str(BLOCK),
    "--dedup-algorithm",
    "fixed-size",
)


def body(rng: random.Random, pool: list[bytes], blocks: int) -> bytes:
    """Objects made of blocks from a shared pool, so chunks are referenced by many objects."""
    return b"".join(rng.choice(pool) for _ in range(blocks))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fsck(data_dir: Path) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "rs3gw", "fsck", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **metadata_env(data_dir)},  # the metadata store the server used
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def read(s3: Any, key: str) -> str | None:
    try:
        return sha(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    except ClientError as e:
        assert e.response["Error"]["Code"] == "NoSuchKey", e.response
        return None


def churn(
    srv: Server,
    keys: list[str],
    bodies: list[bytes],
    state: dict[str, set[str | None]],
    stop: threading.Event,
) -> None:
    """Delete or overwrite the shard's keys round after round until the kill. ``state[key]`` is the
    set of states the key may be in: the last acknowledged one, plus the one in flight if any."""
    s3 = srv.client(max_attempts=0)
    rng = random.Random(keys[0] if keys else "")
    while not stop.is_set():
        for key in keys:
            target = rng.choice([None, *bodies])
            after = None if target is None else sha(target)
            state[key] = state[key] | {after}
            try:
                if target is None:
                    s3.delete_object(Bucket=BUCKET, Key=key)
                else:
                    s3.put_object(Bucket=BUCKET, Key=key, Body=target)
            except (BotoCoreError, ClientError):  # cut off by the kill: outcome unknown
                return
            state[key] = {after}


def crash_round(tmp: Path, seed: int, objects: int) -> None:
    rng = random.Random(seed)
    pool = [rng.randbytes(BLOCK) for _ in range(64)]
    data = tmp / f"data-{seed}"
    srv = start_server(data, *ARGS, "--no-fsync")
    s3 = srv.client(max_attempts=0)
    s3.create_bucket(Bucket=BUCKET)
    current: dict[str, bytes] = {}
    for i in range(objects):
        key = f"o{i:03d}"
        current[key] = body(rng, pool, rng.randint(8, 64))
        s3.put_object(Bucket=BUCKET, Key=key, Body=current[key])
    keepers = {k for k in current if rng.random() < 0.3}  # never touched: must survive untouched
    touched = sorted(set(current) - keepers)
    bodies = [body(rng, pool, rng.randint(8, 64)) for _ in range(8)]
    state: dict[str, set[str | None]] = {k: {sha(v)} for k, v in current.items()}
    stop = threading.Event()
    shards = [touched[i::4] for i in range(4)]
    workers = [threading.Thread(target=churn, args=(srv, sh, bodies, state, stop)) for sh in shards]
    for w in workers:
        w.start()
    time.sleep(rng.uniform(0.3, 1.0))
    srv.proc.kill()  # kill -9 while deletes and overwrites are releasing and freeing chunks
    srv.proc.wait()
    stop.set()
    for w in workers:
        w.join(60)
    assert any(len(v) > 1 for v in state.values()), "the kill landed between operations: nothing in flight"

    srv = start_server(data, *ARGS)  # startup rolls back dead writers and drains the chunk GC queue
    srv.stop()
    fsck(data)
    srv = start_server(data, *ARGS)
    try:
        s3 = srv.client(max_attempts=0)
        for key in current:
            assert read(s3, key) in state[key], f"{key}: not in an acknowledged or in-flight state"
        for key in current:  # everything gone: every chunk must be freed, crash debris included
            s3.delete_object(Bucket=BUCKET, Key=key)
    finally:
        srv.stop()
    fsck(data)
    assert dedup_chunk_counts(data) == (0, 0)  # (chunks, chunk blobs queued for deletion)
    blobs = blob_ids(data)  # files and small-blob rows (the 4 KiB chunks are rows)
    assert not blobs, f"{len(blobs)} blobs left after deleting everything"


def test_crash_during_dedup_gc_short(tmp_path: Path) -> None:
    crash_round(tmp_path, seed=1, objects=60)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3, 4, 5])
def test_crash_during_dedup_gc_long(tmp_path: Path, seed: int) -> None:
    crash_round(tmp_path, seed=seed, objects=200)
