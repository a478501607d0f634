"""Key rotation (`rs3gw admin key-rotate`) against a live server's data dir, then every object reads
back, also after a restart; encryption stacked with compression, dedup and ChaCha20-Poly1305."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from blob_access import blob_ids, packed_ids, read_blob
from conftest import start_server
from rs3gw.blobs.encrypted import HEADER_SIZE, parse_header

KEY_C = secrets.token_bytes(32)
SSEC = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": KEY_C}


def stored(data_dir: Path) -> list[bytes]:
    """Every stored blob's bytes: files and packed rows (blobs up to 32 KiB are rows)."""
    return [read_blob(data_dir, b) for b in sorted(blob_ids(data_dir))]


def live_refs(data_dir: Path, rows_only: bool = False) -> list[str]:
    """The live key slot's ref of every encrypted blob (or only of the packed rows)."""
    blobs = [read_blob(data_dir, b) for b in sorted(packed_ids(data_dir))] if rows_only else stored(data_dir)
    out = []
    for raw in blobs:
        h = parse_header(raw[:HEADER_SIZE])
        if h is not None:
            out.append(h.live[1].ref)
    return out


def rotate(data_dir: Path, *args: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "rs3gw", "admin", "key-rotate", "--data-dir", str(data_dir), "--json", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "key-rotate:" in r.stderr  # progress
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def corpus(n: int) -> bytes:
    return b"".join(f"line {i} of a compressible log text\n".encode() for i in range(n))


@pytest.mark.local_backend_only("key rotation rewrites the local backend's blob headers")
def test_key_rotation_rewraps_and_every_object_reads_back(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    srv = start_server(data_dir, "--no-fsync", "--sse-c-over-http")
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="rot")
        objects: dict[str, tuple[bytes, dict[str, Any]]] = {
            "s3": (os.urandom(200_000), {"ServerSideEncryption": "AES256"}),
            "kms-a": (os.urandom(70_000), {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "a"}),
            "kms-b": (os.urandom(10), {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "b"}),
            "c": (os.urandom(5000), SSEC),
            "plain": (os.urandom(300), {}),
        }
        for key, (data, kw) in objects.items():
            s3.put_object(Bucket="rot", Key=key, Body=data, **kw)
        up = s3.create_multipart_upload(Bucket="rot", Key="mp", ServerSideEncryption="AES256")
        p1, p2 = os.urandom(5 << 20), os.urandom(1000)
        etags = [
            s3.upload_part(Bucket="rot", Key="mp", UploadId=up["UploadId"], PartNumber=n, Body=d)["ETag"]
            for n, d in ((1, p1), (2, p2))
        ]
        s3.complete_multipart_upload(
            Bucket="rot",
            Key="mp",
            UploadId=up["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(etags)]},
        )
        objects["mp"] = (p1 + p2, {})
        before = sorted(live_refs(data_dir))
        assert before.count("aws/s3#1") == 3 and "a#1" in before and "b#1" in before and "sse-c" in before
        # kms-b, c and part 2 are small: packed rows, which rotation re-wraps as well as files.
        assert sorted(live_refs(data_dir, rows_only=True)) == ["aws/s3#1", "b#1", "sse-c"]

        summary = rotate(data_dir)  # while the server runs
        assert summary["complete"] and not summary["resumed"]
        assert sorted(summary["keys"]) == ["a#2", "aws/s3#2", "b#2"]
        assert summary["rewrapped"] == 5 and summary["customer_keyed"] == 1 and summary["plain"] == 1
        after = sorted(live_refs(data_dir))
        assert after == sorted(["aws/s3#2"] * 3 + ["a#2", "b#2", "sse-c"])
        assert sorted(live_refs(data_dir, rows_only=True)) == ["aws/s3#2", "b#2", "sse-c"]
        assert not (data_dir / "keys.rotation.json").exists()

        def read_all(client: Any) -> None:
            for key, (data, kw) in objects.items():
                extra = SSEC if kw is SSEC else {}
                assert client.get_object(Bucket="rot", Key=key, **extra)["Body"].read() == data, key
                r = client.get_object(Bucket="rot", Key=key, Range="bytes=1-5", **extra)
                assert r["Body"].read() == data[1:6]

        read_all(s3)  # the running server sees the new key versions without a restart
        s3.put_object(Bucket="rot", Key="new", Body=b"after", ServerSideEncryption="AES256")
        objects["new"] = (b"after", {})
        srv.stop()
        srv = start_server(data_dir, "--no-fsync", "--sse-c-over-http")
        read_all(srv.client())
        # Idempotent: a second pass (only "a") has nothing left but the new version of "a".
        again = rotate(data_dir, "--key", "a")
        assert again["keys"] == ["a#3"] and again["rewrapped"] == 1 and again["already_current"] == 5
        read_all(srv.client())
    finally:
        srv.stop()


@pytest.mark.local_backend_only("key rotation rewrites the local backend's blob headers")
def test_interrupted_rotation_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    srv = start_server(data_dir, "--no-fsync", "--sse-c-over-http")
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="res")
        s3.put_object(Bucket="res", Key="x", Body=b"payload", ServerSideEncryption="AES256")
        first = rotate(data_dir)
        assert first["rewrapped"] == 1
        # A crash after the new key versions were made and recorded, before any blob was done.
        (data_dir / "keys.rotation.json").write_text(json.dumps({"keys": first["keys"]}))
        resumed = rotate(data_dir)
        assert resumed["resumed"] and resumed["keys"] == first["keys"] and resumed["already_current"] == 1
        keys = json.loads((data_dir / "keys.json").read_text())["keys"]
        assert len(keys["aws/s3"]) == 2  # the resumed run made no third version
        assert s3.get_object(Bucket="res", Key="x")["Body"].read() == b"payload"
    finally:
        srv.stop()


@pytest.mark.local_backend_only("reads blob files on disk")
def test_encryption_with_compression_dedup_and_chacha(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    srv = start_server(
        data_dir,
        "--no-fsync",
        "--sse-c-over-http",
        "--compression",
        "zstd",
        "--dedup",
        "--dedup-min-size",
        "0",
        "--encryption-cipher",
        "chacha20-poly1305",
    )
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="stack")
        data = corpus(20_000)  # ~700 KB of text: compresses, and dedups against itself
        # SSE-C first: were its chunks shared through dedup, the objects after it would need its key.
        s3.put_object(Bucket="stack", Key="c", Body=data, **SSEC)
        for key in ("a", "b"):
            s3.put_object(Bucket="stack", Key=key, Body=data, ServerSideEncryption="AES256")
        for key in ("a", "b"):
            assert s3.get_object(Bucket="stack", Key=key)["Body"].read() == data
            assert (
                s3.get_object(Bucket="stack", Key=key, Range="bytes=100000-100099")["Body"].read()
                == (data[100000:100100])
            )
        assert s3.get_object(Bucket="stack", Key="c", **SSEC)["Body"].read() == data
        blobs = stored(data_dir)
        assert not any(b"compressible log text" in raw for raw in blobs)
        headers = [h for raw in blobs if (h := parse_header(raw[:HEADER_SIZE])) is not None]
        assert headers and all(h.cipher == 2 for h in headers)  # ChaCha20-Poly1305
        s3.put_object(Bucket="stack", Key="plain", Body=data)
        assert s3.get_object(Bucket="stack", Key="plain")["Body"].read() == data
        with pytest.raises(ClientError):
            s3.get_object(Bucket="stack", Key="c")
    finally:
        srv.stop()


def test_server_default_encryption_option(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", "--no-fsync", "--sse-c-over-http", "--encryption-default", "AES256")
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="dflt")
        assert s3.put_object(Bucket="dflt", Key="x", Body=b"x")["ServerSideEncryption"] == "AES256"
        assert s3.get_object(Bucket="dflt", Key="x")["Body"].read() == b"x"
    finally:
        srv.stop()
