"""``[storage] verify_on_read``: a flipped byte in a stored blob (plain single-part, multipart,
compressed, deduplicated; a file or, when small, a row of ``smallblobs.db``) makes the GET fail — an S3 InternalError before any byte when the object
fits in the verifier's hold-back window, a connection cut short of Content-Length otherwise — and
counts in ``rs3gw_corrupt_reads_total``. With it off, a GET serves the bytes as stored (the scrubber
is what finds them)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, IncompleteReadError, ResponseStreamingError
from stored_blob_helpers import flip, metric_total, segments, text

from blob_access import packed_ids, read_blob
from conftest import Server, start_server
from meta_access import dedup_chunk_blobs, set_recorded_checksum

MiB = 1024 * 1024


def corrupt_reads(srv: Server) -> float:
    return metric_total(srv, "rs3gw_corrupt_reads_total")


def failed_get(s3: Any, **kw: Any) -> str:
    """How a GET of corrupt data failed: "error" (S3 500 before the body) or "cut" (truncated body)."""
    try:
        r = s3.get_object(**kw)
    except ClientError as e:
        assert e.response["Error"]["Code"] == "InternalError"
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert "integrity check" in e.response["Error"]["Message"]
        return "error"
    try:
        body = r["Body"].read()
    except (IncompleteReadError, ResponseStreamingError):
        return "cut"
    raise AssertionError(f"GET {kw} returned a clean {r['ContentLength']}-byte body ({len(body)} read)")


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("verify") / "data", "--verify-on-read")
    yield srv
    srv.stop()


@pytest.mark.local_backend_only("flips bytes of stored blobs on disk")
def test_plain_single_and_multipart(plain: Server, tmp_path: Path) -> None:
    s3, data = plain.client(max_attempts=0), plain.data_dir  # one try: each failure counts once
    s3.create_bucket(Bucket="vrb")
    rnd = random.Random(7)
    small, large = rnd.randbytes(300_000), rnd.randbytes(3 * MiB)
    s3.put_object(Bucket="vrb", Key="small", Body=small)
    s3.put_object(Bucket="vrb", Key="large", Body=large)
    s3.put_object(Bucket="vrb", Key="crc", Body=b"x" * 5000, ChecksumAlgorithm="CRC32")
    up = s3.create_multipart_upload(Bucket="vrb", Key="mp")
    parts = [rnd.randbytes(5 * MiB), rnd.randbytes(1000)]
    done = []
    for i, p in enumerate(parts, 1):
        r = s3.upload_part(Bucket="vrb", Key="mp", UploadId=up["UploadId"], PartNumber=i, Body=p)
        done.append({"PartNumber": i, "ETag": r["ETag"]})
    s3.complete_multipart_upload(
        Bucket="vrb", Key="mp", UploadId=up["UploadId"], MultipartUpload={"Parts": done}
    )

    # Intact objects read back whole, by range and by part, with the check on.
    assert s3.get_object(Bucket="vrb", Key="large")["Body"].read() == large
    assert s3.get_object(Bucket="vrb", Key="mp")["Body"].read() == b"".join(parts)
    assert s3.get_object(Bucket="vrb", Key="mp", PartNumber=2)["Body"].read() == parts[1]
    assert corrupt_reads(plain) == 0

    flip(data, segments(data, "vrb", "small")[0], 150_000)
    flip(data, segments(data, "vrb", "large")[0], 10)
    assert segments(data, "vrb", "mp")[1] in packed_ids(data)  # the second part is small: a row
    flip(data, segments(data, "vrb", "mp")[1], 10)
    set_recorded_checksum(data, "crc", "CRC32", "AAAAAA==")  # bytes intact, recorded CRC32 wrong

    assert failed_get(s3, Bucket="vrb", Key="small") == "error"  # fits the hold-back: no byte sent
    assert failed_get(s3, Bucket="vrb", Key="crc") == "error"
    assert failed_get(s3, Bucket="vrb", Key="large") == "cut"  # bigger: cut short of Content-Length
    assert failed_get(s3, Bucket="vrb", Key="mp") == "cut"
    assert corrupt_reads(plain) == 4
    assert "corrupt read bucket=vrb key='small'" in plain.log.read_text()
    # Ranges of a plain object are not checked (no whole-object sum covers them): served as stored.
    assert s3.get_object(Bucket="vrb", Key="small", Range="bytes=0-99")["Body"].read() == small[:100]

    # Off (the default): the same corrupt bytes are served as stored; the scrubber is what finds them.
    plain.stop()
    off = start_server(data)
    try:
        # (boto3 would catch it by the stored CRC64NVME: turn its own check off to see the bytes)
        raw = off.client(max_attempts=0, response_checksum_validation="when_required")
        got = raw.get_object(Bucket="vrb", Key="small")["Body"].read()
        assert len(got) == len(small) and got != small
        assert corrupt_reads(off) == 0
    finally:
        off.stop()


@pytest.mark.local_backend_only("flips bytes of stored blobs on disk")
def test_dedup_and_compressed(tmp_path: Path) -> None:
    # Through the environment this time; objects >= 512 KiB are deduplicated, smaller ones only compressed.
    srv = start_server(
        tmp_path / "data",
        "--dedup",
        "--dedup-min-size",
        str(512 * 1024),
        "--compression",
        "zstd",
        env={"RS3GW_VERIFY_ON_READ": "true"},
    )
    data = srv.data_dir
    try:
        s3 = srv.client(max_attempts=0)
        s3.create_bucket(Bucket="vdb")
        small = text(300_000, 3)
        big = random.Random(9).randbytes(2 * MiB)  # random: stored raw, no chunk shared with "small"
        s3.put_object(Bucket="vdb", Key="small", Body=small)
        s3.put_object(Bucket="vdb", Key="big", Body=big)
        assert (
            s3.get_object(Bucket="vdb", Key="big", Range="bytes=70000-200000")["Body"].read()
            == big[70000:200001]
        )

        target = segments(data, "vdb", "small")[0]
        assert read_blob(data, target)[:8] == b"\x93RS3GW\x1a\x01"  # framed: flip inside frame 0's payload
        flip(data, target, 16 + 40)
        chunks = dedup_chunk_blobs(data)
        assert len(chunks) >= 8
        flip(data, chunks[0], len(read_blob(data, chunks[0])) // 2)

        assert failed_get(s3, Bucket="vdb", Key="small") == "error"
        assert failed_get(s3, Bucket="vdb", Key="big") in ("error", "cut")
        # Dedup checks each block's SHA-256, so a Range GET over the damaged block fails too.
        assert failed_get(s3, Bucket="vdb", Key="big", Range="bytes=0-2097150") in ("error", "cut")
        assert corrupt_reads(srv) == 3
    finally:
        srv.stop()
