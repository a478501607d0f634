"""`rs3gw serve --backend s3` over a real SeaweedFS: S3 clients in front, object data in the upstream."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig

from conftest import Server, fresh_bucket, start_server
from seaweed import Seaweed, start_seaweed

UPSTREAM = "gateway-data"
MiB = 1 << 20


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    w = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    try:
        w.client().create_bucket(Bucket=UPSTREAM)
        yield w
    finally:
        w.stop()


def backend_flags(weed: Seaweed, prefix: str) -> list[str]:
    return [
        "--backend=s3",
        f"--backend-endpoint={weed.endpoint}",
        f"--backend-bucket={UPSTREAM}",
        f"--backend-prefix={prefix}",
        f"--backend-access-key={weed.access_key}",
        f"--backend-secret-key={weed.secret_key}",
    ]


@pytest.fixture(scope="module")
def gw(weed: Seaweed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("gw") / "data", "--no-fsync", *backend_flags(weed, "plain"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gw_zstd(weed: Seaweed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Configured through the environment this time, with compression above the backend."""
    env = {
        "RS3GW_BACKEND_TYPE": "s3",
        "RS3GW_BACKEND_ENDPOINT": weed.endpoint,
        "RS3GW_BACKEND_BUCKET": UPSTREAM,
        "RS3GW_BACKEND_PREFIX": "zstd",
        "RS3GW_BACKEND_ACCESS_KEY": weed.access_key,
        "RS3GW_BACKEND_SECRET_KEY": weed.secret_key,
    }
    data = tmp_path_factory.mktemp("gwz") / "data"
    server = start_server(data, "--no-fsync", "--compression", "zstd", env=env)
    yield server
    server.stop()


def upstream_blobs(weed: Seaweed, prefix: str) -> dict[str, int]:
    """Key → size of everything the gateway stored under its prefix."""
    out: dict[str, int] = {}
    for page in weed.client().get_paginator("list_objects_v2").paginate(Bucket=UPSTREAM, Prefix=prefix + "/"):
        out.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return out


def wait_until_gone(weed: Seaweed, prefix: str, keys: set[str], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while keys & set(upstream_blobs(weed, prefix)):
        assert time.monotonic() < deadline, "deleted objects' blobs are still in the upstream"
        time.sleep(0.1)


def test_put_get_range_head_delete(gw: Server, weed: Seaweed) -> None:
    s3 = gw.client()
    before = set(upstream_blobs(weed, "plain"))
    with fresh_bucket(s3) as b:
        body = os.urandom(3 * MiB + 17)
        s3.put_object(Bucket=b, Key="dir/obj", Body=body)
        new = set(upstream_blobs(weed, "plain")) - before
        assert len(new) == 1  # the object's bytes are in SeaweedFS, not in the data dir
        assert upstream_blobs(weed, "plain")[next(iter(new))] == len(body)
        assert not (gw.data_dir / "blobs").exists()
        got = s3.get_object(Bucket=b, Key="dir/obj")
        assert got["Body"].read() == body
        assert got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
        part = s3.get_object(Bucket=b, Key="dir/obj", Range="bytes=1000-2999999")["Body"].read()
        assert part == body[1000:3000000]
        assert s3.get_object(Bucket=b, Key="dir/obj", Range="bytes=-5")["Body"].read() == body[-5:]
        assert s3.head_object(Bucket=b, Key="dir/obj")["ContentLength"] == len(body)
        s3.put_object(Bucket=b, Key="empty", Body=b"")
        assert s3.get_object(Bucket=b, Key="empty")["Body"].read() == b""
        s3.delete_object(Bucket=b, Key="dir/obj")
        with pytest.raises(s3.exceptions.NoSuchKey):
            s3.get_object(Bucket=b, Key="dir/obj")
        wait_until_gone(weed, "plain", new)


def test_multipart_and_copy(gw: Server, weed: Seaweed) -> None:
    s3 = gw.client()
    with fresh_bucket(s3) as b:
        parts = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(123)]
        up = s3.create_multipart_upload(Bucket=b, Key="mp")["UploadId"]
        done = []
        for n, data in enumerate(parts, 1):
            etag = s3.upload_part(Bucket=b, Key="mp", UploadId=up, PartNumber=n, Body=data)["ETag"]
            done.append({"PartNumber": n, "ETag": etag})
        s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up, MultipartUpload={"Parts": done})
        whole = b"".join(parts)
        assert s3.get_object(Bucket=b, Key="mp")["Body"].read() == whole
        edge = s3.get_object(Bucket=b, Key="mp", Range=f"bytes={5 * MiB - 10}-{5 * MiB + 9}")["Body"].read()
        assert edge == whole[5 * MiB - 10 : 5 * MiB + 10]  # a range across two part blobs
        s3.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "mp"})
        assert hashlib.sha256(s3.get_object(Bucket=b, Key="copy")["Body"].read()).digest() == (
            hashlib.sha256(whole).digest()
        )
        aborted = s3.create_multipart_upload(Bucket=b, Key="gone")["UploadId"]
        s3.upload_part(Bucket=b, Key="gone", UploadId=aborted, PartNumber=1, Body=b"x" * 1000)
        s3.abort_multipart_upload(Bucket=b, Key="gone", UploadId=aborted)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"]]
        assert keys == ["copy", "mp"]


def test_large_object_through_transfer_manager(gw: Server, tmp_path: Path) -> None:
    s3 = gw.client()
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(24 * MiB))
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4)
    with fresh_bucket(s3) as b:
        s3.upload_file(str(src), b, "big", Config=cfg)
        s3.download_file(b, "big", str(tmp_path / "back.bin"), Config=cfg)
        assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()


def test_compression_above_the_s3_backend(gw_zstd: Server, weed: Seaweed) -> None:
    s3 = gw_zstd.client()
    before = set(upstream_blobs(weed, "zstd"))
    body = b"".join(b"line %08d of a very compressible log file\n" % i for i in range(40_000))
    with fresh_bucket(s3) as b:
        s3.put_object(Bucket=b, Key="log.txt", Body=body)
        new = {k: v for k, v in upstream_blobs(weed, "zstd").items() if k not in before}
        assert len(new) == 1
        assert next(iter(new.values())) < len(body) // 4  # stored compressed in SeaweedFS
        assert s3.get_object(Bucket=b, Key="log.txt")["Body"].read() == body
        r = s3.get_object(Bucket=b, Key="log.txt", Range="bytes=1000000-1000099")["Body"].read()
        assert r == body[1000000:1000100]
        assert s3.head_object(Bucket=b, Key="log.txt")["ContentLength"] == len(body)


def serve_fails(tmp_path: Path, *args: str) -> str:
    """Start a gateway that must refuse to run; its stderr."""
    cmd = [
        sys.executable,
        "-m",
        "rs3gw",
        "serve",
        "--data-dir",
        str(tmp_path / "d"),
        "--address",
        "127.0.0.1:0",
    ]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    return proc.stderr


def test_s3_backend_needs_a_bucket(tmp_path: Path) -> None:
    err = serve_fails(tmp_path, "--backend", "s3")
    assert "backend.bucket" in err and "Traceback" not in err


def test_bad_backend_type(tmp_path: Path) -> None:
    err = serve_fails(tmp_path, "--backend", "ceph")
    assert "--backend" in err and '"local", "s3", "gcs" or "azure"' in err


def test_missing_upstream_bucket_fails_at_start(tmp_path: Path, weed: Seaweed) -> None:
    args = [a.replace(UPSTREAM, "no-such-bucket") for a in backend_flags(weed, "p")]
    err = serve_fails(tmp_path, *args)
    assert "s3 backend" in err and "no-such-bucket" in err and "Traceback" not in err


def test_settings_reach_workers(weed: Seaweed, tmp_path: Path) -> None:
    """--workers N hands settings over as JSON: the backend must survive the trip."""
    server = start_server(tmp_path / "data", "--no-fsync", "--workers", "2", *backend_flags(weed, "workers"))
    try:
        s3: Any = server.client()
        with fresh_bucket(s3) as b:
            for i in range(6):
                s3.put_object(Bucket=b, Key=f"k{i}", Body=b"w" * 100)
            assert len(upstream_blobs(weed, "workers")) == 6
    finally:
        server.stop()
