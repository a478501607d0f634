"""``[storage.zerocopy]``: GETs of plain local blobs go out with sendfile (counted in
``rs3gw_zerocopy_sent_bytes_total``) and return the right bytes, whole and by range, single-part and
multipart; transformed blobs (SSE-S3 encrypted, compressed, deduplicated) and verify_on_read reads
never take that path and still read back correctly; TLS connections fall back to ordinary reads."""

from __future__ import annotations

import random
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stored_blob_helpers import metric_total, text

from conftest import Server, make_cert, start_server

MiB = 1024 * 1024


def zerocopy_bytes(srv: Server) -> float:
    return metric_total(srv, "rs3gw_zerocopy_sent_bytes_total")


@pytest.fixture(scope="module")
def zc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("zc") / "data", "--zerocopy", "true", "--zerocopy-min-size", "1000"
    )
    yield srv
    srv.stop()


def get(s3: Any, **kw: Any) -> bytes:
    body: bytes = s3.get_object(Bucket="zcb", **kw)["Body"].read()
    return body


@pytest.mark.local_backend_only("zero-copy (sendfile) GETs are the local backend's")
def test_plain_objects_use_sendfile(zc: Server) -> None:
    s3 = zc.client()
    s3.create_bucket(Bucket="zcb")
    rnd = random.Random(1)
    big, small = rnd.randbytes(3 * MiB + 17), b"tiny object"
    s3.put_object(Bucket="zcb", Key="big", Body=big)
    s3.put_object(Bucket="zcb", Key="small", Body=small)
    before = zerocopy_bytes(zc)
    assert get(s3, Key="big") == big
    assert zerocopy_bytes(zc) - before == len(big)
    assert get(s3, Key="big", Range="bytes=1000-2000000") == big[1000:2000001]
    assert get(s3, Key="big", Range="bytes=-5") == big[-5:]  # below min_size: read inline
    assert get(s3, Key="small") == small
    assert zerocopy_bytes(zc) - before == len(big) + 1999001
    for _ in range(3):  # keep-alive connections stay usable after a sendfile response
        assert get(s3, Key="big", Range="bytes=0-99999") == big[:100000]

    up = s3.create_multipart_upload(Bucket="zcb", Key="mp")
    parts = [rnd.randbytes(5 * MiB), rnd.randbytes(300_000)]
    done = []
    for i, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket="zcb", Key="mp", UploadId=up["UploadId"], PartNumber=i, Body=p)
        done.append({"PartNumber": i, "ETag": r["ETag"]})
    s3.complete_multipart_upload(
        Bucket="zcb", Key="mp", UploadId=up["UploadId"], MultipartUpload={"Parts": done}
    )
    whole = b"".join(parts)
    mark = zerocopy_bytes(zc)
    assert get(s3, Key="mp") == whole  # spans two blobs: the ordinary path
    assert zerocopy_bytes(zc) == mark
    assert get(s3, Key="mp", PartNumber=2) == parts[1]  # inside one blob: sendfile
    assert (
        get(s3, Key="mp", Range=f"bytes={5 * MiB - 10}-{5 * MiB + 9}") == whole[5 * MiB - 10 : 5 * MiB + 10]
    )
    assert zerocopy_bytes(zc) - mark == len(parts[1])

    # SSE-S3: the stored blob is ciphertext; it must be decrypted, never sent raw.
    s3.put_object(Bucket="zcb", Key="enc", Body=big, ServerSideEncryption="AES256")
    mark = zerocopy_bytes(zc)
    assert get(s3, Key="enc") == big
    assert zerocopy_bytes(zc) == mark


@pytest.mark.local_backend_only("zero-copy (sendfile) GETs are the local backend's")
def test_compressed_and_dedup_blobs_are_decoded(tmp_path: Path) -> None:
    args = ("--zerocopy", "true", "--zerocopy-min-size", "0", "--compression", "zstd")
    srv = start_server(tmp_path / "data", *args, "--dedup", "--dedup-min-size", str(4 * MiB))
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="zcb")
        packed, raw, chunked = text(2 * MiB, 2), random.Random(3).randbytes(2 * MiB), text(5 * MiB, 4)
        for key, body in (("packed", packed), ("raw", raw), ("chunked", chunked)):
            s3.put_object(Bucket="zcb", Key=key, Body=body)
        mark = zerocopy_bytes(srv)
        assert get(s3, Key="packed") == packed
        assert get(s3, Key="chunked") == chunked
        assert get(s3, Key="chunked", Range="bytes=100-200") == chunked[100:201]
        assert zerocopy_bytes(srv) == mark  # framed and deduplicated: decoded, never sent raw
        assert get(s3, Key="raw") == raw  # incompressible, stored as is: plain after all
        assert zerocopy_bytes(srv) - mark == len(raw)
    finally:
        srv.stop()


def test_tls_falls_back(tmp_path: Path) -> None:
    cert = make_cert(tmp_path)
    srv = start_server(tmp_path / "data", "--zerocopy", "true", tls=cert)
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="zcb")
        body = random.Random(5).randbytes(2 * MiB)
        s3.put_object(Bucket="zcb", Key="k", Body=body)
        assert get(s3, Key="k") == body
    finally:
        srv.stop()


def test_client_leaving_mid_body(zc: Server) -> None:
    s3 = zc.client()
    s3.create_bucket(Bucket="zcleave")
    body = random.Random(6).randbytes(8 * MiB)
    s3.put_object(Bucket="zcleave", Key="k", Body=body)
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "zcleave", "Key": "k"})
    for _ in range(3):
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.read(1000) == body[:1000]  # then the connection closes with most of it unsent
    assert s3.get_object(Bucket="zcleave", Key="k")["Body"].read() == body
    log = zc.log.read_text()
    assert "response stream failed" not in log and "Traceback" not in log, log[-2500:]
