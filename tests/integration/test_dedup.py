"""Deduplication through a real server: near-duplicate objects share chunks, GC frees them all,
ranges and multipart read back exactly."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from admin_http import signed_get
from backend_matrix import backend_env, stored_sizes
from conftest import ACCESS_KEY, SECRET_KEY, USER2, Server, start_server
from pg_cluster import metadata_args

MIB = 1 << 20


@pytest.fixture(scope="module")
def dedup_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("dedup") / "data",
        "--dedup",
        "--dedup-algorithm",
        "content-defined",
        "--no-fsync",
    )
    yield srv
    srv.stop()


@pytest.fixture
def dbucket(dedup_server: Server) -> Iterator[tuple[Any, str]]:
    s3 = dedup_server.client()
    name = f"dd-{random.randrange(1 << 30):x}"
    s3.create_bucket(Bucket=name)
    yield s3, name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for o in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=o["Key"])
    s3.delete_bucket(Bucket=name)


def blob_bytes(data_dir: Path) -> int:
    return sum(stored_sizes(data_dir).values())  # on disk, or upstream (RS3GW_TEST_BACKEND=s3)


def stats(data_dir: Path) -> dict[str, Any]:
    env = {**os.environ, "RS3GW_ACCESS_KEY": ACCESS_KEY, "RS3GW_SECRET_KEY": SECRET_KEY}
    env |= backend_env(data_dir)  # the backend and store its test server used (the test matrix)
    if meta := metadata_args(data_dir, ()):
        env["RS3GW_METADATA"] = meta[1]
    out = subprocess.run(
        [sys.executable, "-m", "rs3gw", "dedup", "stats", "--data-dir", str(data_dir), "--json"],
        capture_output=True,
        check=True,
        env=env,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def wait_for(cond: Any, timeout: float = 15.0) -> None:
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "condition not reached"
        time.sleep(0.1)


def test_near_duplicate_objects_occupy_little_more_than_one(
    dedup_server: Server, dbucket: tuple[Any, str]
) -> None:
    s3, b = dbucket
    data = random.Random(7).randbytes(64 * MIB)
    edited = data[: 32 * MIB] + random.Random(8).randbytes(1024) + data[32 * MIB :]
    before = blob_bytes(dedup_server.data_dir)
    s3.put_object(Bucket=b, Key="one", Body=data)
    s3.put_object(Bucket=b, Key="two", Body=edited)
    used = blob_bytes(dedup_server.data_dir) - before
    assert used < 1.2 * len(data), used
    for key, want in (("one", data), ("two", edited)):
        got = s3.get_object(Bucket=b, Key=key)["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(want).digest()
    st = stats(dedup_server.data_dir)
    assert st["buckets"][b]["logical_bytes"] == len(data) + len(edited)
    assert st["buckets"][b]["stored_bytes"] < 1.2 * len(data)
    assert st["dedup_ratio"] > 0.4
    # Deleting every object returns the stored chunk bytes to zero.
    s3.delete_object(Bucket=b, Key="one")
    s3.delete_object(Bucket=b, Key="two")
    wait_for(lambda: stats(dedup_server.data_dir)["stored_bytes"] == 0)
    wait_for(lambda: blob_bytes(dedup_server.data_dir) == before)


def test_ranges_across_chunk_boundaries(dbucket: tuple[Any, str]) -> None:
    s3, b = dbucket
    rnd = random.Random(3)
    block = rnd.randbytes(300_000)
    data = block * 3 + rnd.randbytes(100_000)  # repeated content: shared chunks inside one object
    s3.put_object(Bucket=b, Key="r", Body=data)
    cases = [(0, 0), (65535, 65536), (299_990, 300_010), (len(data) - 1, len(data) - 1)]
    for _ in range(30):
        lo = rnd.randrange(len(data))
        cases.append((lo, min(len(data) - 1, lo + rnd.randrange(1, 300_000))))
    for lo, hi in cases:
        got = s3.get_object(Bucket=b, Key="r", Range=f"bytes={lo}-{hi}")["Body"].read()
        assert got == data[lo : hi + 1], (lo, hi)
    assert s3.get_object(Bucket=b, Key="r", Range="bytes=-5000")["Body"].read() == data[-5000:]


def test_multipart_parts_are_deduplicated(dedup_server: Server, dbucket: tuple[Any, str]) -> None:
    s3, b = dbucket
    part = random.Random(5).randbytes(5 * MIB)
    tail = part[: MIB // 2]
    before = stats(dedup_server.data_dir)["stored_bytes"]
    for key in ("m1", "m2"):
        up = s3.create_multipart_upload(Bucket=b, Key=key)["UploadId"]
        etags = [
            s3.upload_part(Bucket=b, Key=key, UploadId=up, PartNumber=n, Body=body)["ETag"]
            for n, body in ((1, part), (2, part), (3, tail))
        ]
        s3.complete_multipart_upload(
            Bucket=b,
            Key=key,
            UploadId=up,
            MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": e} for i, e in enumerate(etags)]},
        )
    whole = part + part + tail
    assert s3.get_object(Bucket=b, Key="m2")["Body"].read() == whole
    lo, hi = 5 * MIB - 100, 10 * MIB + 100  # across both part boundaries
    got = s3.get_object(Bucket=b, Key="m1", Range=f"bytes={lo}-{hi}")["Body"].read()
    assert got == whole[lo : hi + 1]
    grown = stats(dedup_server.data_dir)["stored_bytes"] - before
    assert grown < 1.2 * len(part), grown  # six parts, one part's worth of distinct chunks


def test_admin_api_reports_stats(dedup_server: Server, dbucket: tuple[Any, str]) -> None:
    s3, b = dbucket
    body = random.Random(9).randbytes(2 * MIB)
    s3.put_object(Bucket=b, Key="x", Body=body)
    s3.put_object(Bucket=b, Key="y", Body=body)
    status, raw = signed_get(dedup_server, "/_rs3gw/admin/dedup/stats", timeout=30)
    assert status == 200, raw
    doc = json.loads(raw)
    assert doc["buckets"][b]["logical_bytes"] == 2 * len(body)
    assert doc["buckets"][b]["stored_bytes"] == len(body)
    assert doc["stored_bytes"] <= doc["logical_bytes"]
    status, _ = signed_get(dedup_server, "/_rs3gw/admin/dedup/stats", USER2[1:], timeout=30)
    assert status == 403
