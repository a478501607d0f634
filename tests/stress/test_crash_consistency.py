"""Crash consistency: kill -9 the real server under concurrent writes, restart, check what survived.

Every acknowledged write must read back byte for byte (or a later acknowledged one), nothing
half-written may be visible, listings must agree with GETs, and no temp or orphan blob may remain.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from blob_access import blob_ids
from conftest import Server, start_server
from meta_access import referenced_blobs
from pg_cluster import metadata_env

PLAIN, VERSIONED = "crash-plain", "crash-versioned"
KEYS = [f"k{i}" for i in range(6)]
VKEYS = [f"v{i}" for i in range(3)]
MIB = 1024 * 1024
INF = float("inf")


@dataclass
class Op:
    bucket: str
    key: str
    kind: str  # put | mpu | copy | delete
    start: float
    end: float = INF  # INF: not acknowledged (in flight at the kill, or cut off)
    sha: str | None = None  # the content this op leaves; None for a delete
    version_id: str | None = None
    failed: bool = False  # a definite S3 error: the op had no effect


class Bodies:
    """Every body ever sent, by SHA-256 and MD5, so a read-back can be matched to a whole body."""

    def __init__(self) -> None:
        self.by_md5: dict[str, str] = {}
        self.sizes: dict[str, int] = {}
        self.lock = threading.Lock()

    def make(self, rng: random.Random, size: int) -> tuple[bytes, str]:
        tag = f"{rng.getrandbits(64):016x}".encode()
        body = (tag * (size // 16 + 1))[:size] if size >= 16 else tag[:size]
        if size > 64:
            body = body[:32] + rng.randbytes(32) + body[64:]
        sha = hashlib.sha256(body).hexdigest()
        with self.lock:
            self.by_md5[hashlib.md5(body).hexdigest()] = sha
            self.sizes[sha] = size
        return body, sha


class Workload:
    def __init__(self, server: Server, bodies: Bodies, seed: int) -> None:
        self.server = server
        self.bodies = bodies
        self.seed = seed
        self.ops: list[Op] = []
        self.server_errors: list[str] = []
        self.stop = threading.Event()

    def run(self, threads: int) -> list[threading.Thread]:
        ts = [
            threading.Thread(target=self._loop, args=(self.seed * 100 + i,), daemon=True)
            for i in range(threads)
        ]
        for t in ts:
            t.start()
        return ts

    def _loop(self, seed: int) -> None:
        rng = random.Random(seed)
        s3 = self.server.client(connect_timeout=2, read_timeout=10)
        while not self.stop.is_set():
            try:
                self._one(s3, rng)
            except BotoCoreError:  # cut off by the kill, or a timeout: the op's outcome is unknown
                continue
            except Exception as e:  # a test bug or a malformed answer: fail the test, not the thread
                if not self.stop.is_set():  # after it, a reply cut short by the kill parses as garbage
                    self.server_errors.append(f"unexpected {e!r}")
                return

    def _one(self, s3: Any, rng: random.Random) -> None:
        r = rng.random()
        if r < 0.2:
            op = Op(VERSIONED, rng.choice(VKEYS), "put", 0.0)
        elif r < 0.25:
            op = Op(VERSIONED, rng.choice(VKEYS), "delete", 0.0)
        else:
            kind = rng.choices(["put", "mpu", "copy", "delete"], [10, 1, 2, 2])[0]
            op = Op(PLAIN, rng.choice(KEYS), kind, 0.0)
        op.start = time.monotonic()
        self.ops.append(op)
        try:
            getattr(self, f"_{op.kind}")(s3, rng, op)
        except ClientError as e:
            status = e.response["ResponseMetadata"].get("HTTPStatusCode", 0)
            if status >= 500:
                self.server_errors.append(f"{op.kind} {op.key}: {e}")
            else:
                op.failed = True
            return
        op.end = time.monotonic()

    def _put(self, s3: Any, rng: random.Random, op: Op) -> None:
        size = rng.choice([0, rng.randrange(1, 4096), rng.randrange(4096, 3 * MIB // 2)])
        body, op.sha = self.bodies.make(rng, size)
        r = s3.put_object(Bucket=op.bucket, Key=op.key, Body=body)
        op.version_id = r.get("VersionId")

    def _mpu(self, s3: Any, rng: random.Random, op: Op) -> None:
        body, op.sha = self.bodies.make(rng, 5 * MIB + rng.randrange(1, 100_000))
        up = s3.create_multipart_upload(Bucket=op.bucket, Key=op.key)["UploadId"]
        parts = []
        for n, chunk in enumerate((body[: 5 * MIB], body[5 * MIB :]), 1):
            etag = s3.upload_part(Bucket=op.bucket, Key=op.key, UploadId=up, PartNumber=n, Body=chunk)["ETag"]
            parts.append({"PartNumber": n, "ETag": etag})
        s3.complete_multipart_upload(
            Bucket=op.bucket, Key=op.key, UploadId=up, MultipartUpload={"Parts": parts}
        )

    def _copy(self, s3: Any, rng: random.Random, op: Op) -> None:
        src = rng.choice(KEYS)
        op.sha = "*"  # unknown until acknowledged: any whole body
        r = s3.copy_object(Bucket=op.bucket, Key=op.key, CopySource={"Bucket": PLAIN, "Key": src})
        op.sha = self.bodies.by_md5[r["CopyObjectResult"]["ETag"].strip('"')]

    def _delete(self, s3: Any, rng: random.Random, op: Op) -> None:
        s3.delete_object(Bucket=op.bucket, Key=op.key)


def allowed_states(ops: list[Op], initial: str | None) -> set[str | None]:
    """States linearizable with the acknowledgements: an op's effect is allowed unless some
    acknowledged op started only after it had been acknowledged."""
    live = [o for o in ops if not o.failed]
    acked = [o for o in live if o.end < INF]
    latest_start = max((o.start for o in acked), default=-INF)
    out: set[str | None] = set()
    if not acked:
        out.add(initial)
    for o in live:
        if latest_start <= o.end:
            out.add(None if o.kind == "delete" else o.sha)
    return out


def read_state(s3: Any, bucket: str, key: str, bodies: Bodies) -> str | None:
    try:
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as e:
        assert e.response["Error"]["Code"] == "NoSuchKey", e
        return None
    sha = hashlib.sha256(data).hexdigest()
    assert sha in bodies.sizes, f"{bucket}/{key}: {len(data)} bytes that are no whole body ever sent"
    return sha


def check_debris(data_dir: Path) -> None:
    """No temp file, no orphan blob, no missing blob, against the references in whichever metadata
    store the server runs on (RS3GW_TEST_METADATA). Blobs are files and rows of the small-blob pack."""
    tmp = list((data_dir / "tmp").iterdir()) if (data_dir / "tmp").exists() else []
    assert not tmp, f"temp files survived startup cleanup: {tmp[:5]}"
    referenced = referenced_blobs(data_dir)
    on_disk = blob_ids(data_dir)
    assert not referenced - on_disk, f"referenced blobs are missing: {sorted(referenced - on_disk)[:5]}"
    assert not on_disk - referenced, f"orphan blobs survived restart: {sorted(on_disk - referenced)[:5]}"


def run_fsck(data_dir: Path) -> None:
    """``rs3gw fsck`` on the stopped store, where that command exists (it is built separately)."""
    exe = [sys.executable, "-m", "rs3gw", "fsck"]
    if subprocess.run([*exe, "--help"], capture_output=True, timeout=60).returncode != 0:
        return
    res = subprocess.run(
        [*exe, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **metadata_env(data_dir)},  # the store the server used
    )
    assert res.returncode == 0, res.stdout + res.stderr


class State:
    """What the previous rounds proved: current content per key, and live versions."""

    def __init__(self) -> None:
        self.plain: dict[str, str | None] = dict.fromkeys(KEYS)
        self.latest_v: dict[str, str | None] = dict.fromkeys(VKEYS)
        self.versions: dict[tuple[str, str], str] = {}  # (key, version id) → sha of acknowledged PUTs


def verify(server: Server, ops: list[Op], state: State, bodies: Bodies) -> None:
    s3 = server.client()
    for key in KEYS:
        mine = [o for o in ops if o.bucket == PLAIN and o.key == key]
        got = read_state(s3, PLAIN, key, bodies)
        allowed = allowed_states(mine, state.plain[key])
        assert got in allowed or ("*" in allowed and got is not None), (key, got, allowed)
        state.plain[key] = got
    listing = {o["Key"]: o for o in s3.list_objects_v2(Bucket=PLAIN).get("Contents", [])}
    assert set(listing) == {k for k, v in state.plain.items() if v is not None}
    for key, entry in listing.items():
        head = s3.head_object(Bucket=PLAIN, Key=key)
        assert entry["Size"] == head["ContentLength"] == bodies.sizes[state.plain[key] or ""]
        assert entry["ETag"] == head["ETag"]
    for o in ops:
        if o.bucket == VERSIONED and o.kind == "put" and o.end < INF:
            assert o.version_id, "versioned PUT acknowledged without a version id"
            state.versions[(o.key, o.version_id)] = o.sha or ""
    present: set[tuple[str, str]] = set()
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=VERSIONED)  # >1000 in long runs
    for v in (v for page in pages for v in page.get("Versions", [])):
        present.add((v["Key"], v["VersionId"]))
        data = s3.get_object(Bucket=VERSIONED, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
        sha = hashlib.sha256(data).hexdigest()
        assert sha in bodies.sizes, f"version {v['Key']}@{v['VersionId']} is no whole body"
        want = state.versions.get((v["Key"], v["VersionId"]))
        assert want in (None, sha), f"acknowledged version {v['Key']}@{v['VersionId']} changed"
    lost = set(state.versions) - present
    assert not lost, f"acknowledged versions lost: {sorted(lost)[:5]}"
    for key in VKEYS:
        mine = [o for o in ops if o.bucket == VERSIONED and o.key == key]
        got = read_state(s3, VERSIONED, key, bodies)
        assert got in allowed_states(mine, state.latest_v[key]), (key, got)
        state.latest_v[key] = got


def crash_rounds(base: Path, rounds: int, seed: int, threads: int) -> None:
    data_dir = base / "data"
    bodies, state = Bodies(), State()
    rng = random.Random(seed)
    server = start_server(data_dir)
    try:
        s3 = server.client()
        s3.create_bucket(Bucket=PLAIN)
        s3.create_bucket(Bucket=VERSIONED)
        s3.put_bucket_versioning(Bucket=VERSIONED, VersioningConfiguration={"Status": "Enabled"})
        ops: list[Op] = []
        for n in range(rounds):
            work = Workload(server, bodies, seed * 1000 + n)
            workers = work.run(threads)
            time.sleep(rng.uniform(0.3, 2.5))
            work.stop.set()
            server.proc.kill()
            server.proc.wait()
            for t in workers:
                t.join(20)
            assert not work.server_errors, work.server_errors[:3]
            ops = work.ops
            server = start_server(data_dir)
            check_debris(data_dir)
            verify(server, ops, state, bodies)
            assert any(o.end < INF for o in ops), "no write was acknowledged: the round proved nothing"
        server.stop()
        run_fsck(data_dir)
    finally:
        server.stop()


def test_crash_consistency_short(tmp_path: Path) -> None:
    crash_rounds(tmp_path, rounds=3, seed=1, threads=6)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3, 4])
def test_crash_consistency_long(tmp_path: Path, seed: int) -> None:
    crash_rounds(tmp_path, rounds=25, seed=seed, threads=12)


def test_checker_rejects_lost_and_stale_states() -> None:
    """The consistency rule itself: an overwritten acknowledgement or a lost one is caught."""
    a = Op(PLAIN, "k", "put", 1.0, 2.0, sha="a")
    b = Op(PLAIN, "k", "put", 3.0, 4.0, sha="b")
    inflight = Op(PLAIN, "k", "put", 3.5, sha="c")
    refused = Op(PLAIN, "k", "put", 3.6, sha="d", failed=True)
    allowed = allowed_states([a, b, inflight, refused], initial="old")
    assert allowed == {"b", "c"}
    assert allowed_states([inflight], initial="old") == {"old", "c"}
    overlapping = Op(PLAIN, "k", "delete", 1.5, 3.5)
    assert allowed_states([a, b, overlapping], initial=None) == {"b", None}


def _put_multipart(s3: Any, bucket: str, key: str, body: bytes) -> None:
    up = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for n, chunk in enumerate((body[: 5 * MIB], body[5 * MIB :]), 1):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=up, PartNumber=n, Body=chunk)["ETag"]
        parts.append({"PartNumber": n, "ETag": etag})
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up, MultipartUpload={"Parts": parts})


def test_reads_and_copies_race_overwrites(server: Server, bucket: str) -> None:
    """A GET or copy that resolved a version just before an overwrite freed its blobs still succeeds,
    even when it reaches the second part of a multipart object long after resolving it."""
    bodies = Bodies()
    errors: list[str] = []
    stop = time.monotonic() + 4.0

    def writer(seed: int) -> None:
        rng, s3 = random.Random(seed), server.client()
        while time.monotonic() < stop:
            if rng.random() < 0.5:
                _put_multipart(s3, bucket, "hot", bodies.make(rng, 5 * MIB + rng.randrange(1, 1000))[0])
            else:
                s3.put_object(Bucket=bucket, Key="hot", Body=bodies.make(rng, rng.randrange(1, 20_000))[0])

    def reader(seed: int) -> None:
        s3 = server.client()
        n = 0
        while time.monotonic() < stop:
            n += 1
            try:
                if n % 2:
                    data = s3.get_object(Bucket=bucket, Key="hot")["Body"].read()
                    if hashlib.sha256(data).hexdigest() not in bodies.sizes:
                        errors.append(f"GET returned {len(data)} bytes that are no whole body")
                else:
                    s3.copy_object(
                        Bucket=bucket, Key=f"dst{seed}", CopySource={"Bucket": bucket, "Key": "hot"}
                    )
            except ClientError as e:
                if e.response["ResponseMetadata"]["HTTPStatusCode"] >= 500:
                    errors.append(str(e))

    _put_multipart(server.client(), bucket, "hot", bodies.make(random.Random(0), 5 * MIB + 1)[0])
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    threads += [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
