"""Deduplication over the S3 backend (SeaweedFS): chunks are blobs upstream, kept once, freed by GC.

With SQLite metadata the chunk index is a file of the data directory (one gateway); with PostgreSQL
it lives in the database, shared by every gateway (test_dedup_gateways_pg_seaweed.py)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ACCESS_KEY, SECRET_KEY, start_server
from seaweed import Seaweed, start_seaweed

UPSTREAM = "dedup-upstream"
DEDUP = ("--dedup", "--dedup-algorithm", "content-defined", "--dedup-block-size", "16384")


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    w = start_seaweed(tmp_path_factory.mktemp("seaweed-dedup"))
    try:
        w.client().create_bucket(Bucket=UPSTREAM)
        yield w
    finally:
        w.stop()


def flags(weed: Seaweed, prefix: str) -> list[str]:
    return [
        "--metadata", "sqlite", "--backend", "s3", "--backend-endpoint", weed.endpoint,
        "--backend-bucket", UPSTREAM, "--backend-prefix", prefix,
        "--backend-access-key", weed.access_key, "--backend-secret-key", weed.secret_key,
    ]  # fmt: skip


def upstream(weed: Seaweed, prefix: str) -> dict[str, int]:
    """Every object under the prefix, with its size."""
    out: dict[str, int] = {}
    for page in weed.client().get_paginator("list_objects_v2").paginate(Bucket=UPSTREAM, Prefix=f"{prefix}/"):
        out.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return out


def wait_upstream(weed: Seaweed, prefix: str, done: Any, timeout: float = 20.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while not done(got := upstream(weed, prefix)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return got


def fsck(data_dir: Path, weed: Seaweed, prefix: str, *args: str) -> tuple[int, dict[str, Any]]:
    env = {
        **os.environ, "RS3GW_ACCESS_KEY": ACCESS_KEY, "RS3GW_SECRET_KEY": SECRET_KEY,
        "RS3GW_METADATA": "sqlite", "RS3GW_BACKEND_TYPE": "s3", "RS3GW_BACKEND_ENDPOINT": weed.endpoint,
        "RS3GW_BACKEND_BUCKET": UPSTREAM, "RS3GW_BACKEND_PREFIX": prefix,
        "RS3GW_BACKEND_ACCESS_KEY": weed.access_key, "RS3GW_BACKEND_SECRET_KEY": weed.secret_key,
    }  # fmt: skip
    cmd = [sys.executable, "-m", "rs3gw", "fsck", "--data-dir", str(data_dir), "--json", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout, out.stderr
    report: dict[str, Any] = json.loads(out.stdout)
    return out.returncode, report


def test_dedup_chunks_live_upstream_once_and_gc_frees_them(tmp_path: Path, weed: Seaweed) -> None:
    prefix, data = "dd1", tmp_path / "data"
    base = secrets.token_bytes(1_000_000)
    objs = {"a": base, "b": base, "c": base[:500_000] + secrets.token_bytes(300_000)}
    srv = start_server(data, "--no-fsync", *DEDUP, *flags(weed, prefix))
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="ddb")
        for k, v in objs.items():
            s3.put_object(Bucket="ddb", Key=k, Body=v)
        stored = upstream(weed, prefix)
        logical = sum(len(v) for v in objs.values())
        assert stored and sum(stored.values()) < 0.6 * logical, (sum(stored.values()), logical)
        assert not (data / "blobs").exists() or not any(p.is_file() for p in (data / "blobs").rglob("*"))
        for k, v in objs.items():
            assert s3.get_object(Bucket="ddb", Key=k)["Body"].read() == v
        got = s3.get_object(Bucket="ddb", Key="c", Range="bytes=499990-500009")["Body"].read()
        assert got == objs["c"][499_990:500_010]
    finally:
        srv.stop()

    rc, rep = fsck(data, weed, prefix)  # the chunks are checked upstream, against their SHA-256
    assert rc == 0 and rep["clean"] and rep["chunks_verified"] > 0, rep

    srv = start_server(data, "--no-fsync", *DEDUP, *flags(weed, prefix))  # the index outlives restarts
    try:
        s3 = srv.client()
        assert s3.get_object(Bucket="ddb", Key="b")["Body"].read() == base
        s3.delete_object(Bucket="ddb", Key="a")
        time.sleep(1.0)
        assert s3.get_object(Bucket="ddb", Key="b")["Body"].read() == base  # b still holds the chunks
        before = upstream(weed, prefix)
        s3.delete_object(Bucket="ddb", Key="b")
        after = wait_upstream(weed, prefix, lambda got: len(got) < len(before))
        assert len(after) < len(before)  # base's chunks that c does not share went
        assert s3.get_object(Bucket="ddb", Key="c")["Body"].read() == objs["c"]
        s3.delete_object(Bucket="ddb", Key="c")
        assert wait_upstream(weed, prefix, lambda got: not got) == {}  # every chunk freed upstream
    finally:
        srv.stop()
    rc, rep = fsck(data, weed, prefix)
    assert rc == 0 and rep["clean"] and rep["versions_checked"] == 0, rep


def test_fsck_finds_and_repairs_an_upstream_orphan(tmp_path: Path, weed: Seaweed) -> None:
    prefix, data = "dd2", tmp_path / "data"
    srv = start_server(data, "--no-fsync", *DEDUP, *flags(weed, prefix))
    try:
        srv.client().create_bucket(Bucket="ddb")
        srv.client().put_object(Bucket="ddb", Key="k", Body=secrets.token_bytes(300_000))
    finally:
        srv.stop()
    orphan = secrets.token_hex(16)
    weed.client().put_object(Bucket=UPSTREAM, Key=f"{prefix}/{orphan[:2]}/{orphan[2:4]}/{orphan}", Body=b"x")
    rc, rep = fsck(data, weed, prefix)
    assert rc == 1 and rep["orphan_blobs"] == [orphan] and not rep["missing"], rep
    rc, rep = fsck(data, weed, prefix, "--repair")
    assert rc == 0 and rep["repaired"], rep
    assert not any(k.endswith(orphan) for k in upstream(weed, prefix))
    rc, rep = fsck(data, weed, prefix)
    assert rc == 0 and rep["clean"], rep
