"""Additional checksums end to end with boto3: sent as headers (HTTP) or trailers (HTTPS), stored,
returned with ChecksumMode=ENABLED, and verified (a wrong value stores nothing)."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from awscrt import checksums as crt
from botocore.exceptions import ClientError

from conftest import Server, fresh_bucket

DATA = os.urandom(70_000) + b"tail"


def _b64_int(value: int, size: int) -> str:
    return base64.b64encode(value.to_bytes(size, "big")).decode()


EXPECTED = {
    "CRC32": _b64_int(zlib.crc32(DATA), 4),
    "CRC32C": _b64_int(crt.crc32c(DATA), 4),
    "CRC64NVME": _b64_int(crt.crc64nvme(DATA), 8),
    "SHA1": base64.b64encode(hashlib.sha1(DATA).digest()).decode(),
    "SHA256": base64.b64encode(hashlib.sha256(DATA).digest()).decode(),
}


@pytest.fixture
def client(any_server: Server) -> Iterator[tuple[Any, str]]:
    s3 = any_server.client()
    with fresh_bucket(s3, "ck") as name:
        yield s3, name


@pytest.mark.parametrize("alg", sorted(EXPECTED))
def test_put_with_checksum_algorithm(client: tuple[Any, str], alg: str) -> None:
    s3, bucket = client
    sent: dict[str, str] = {}

    def capture(request: Any, **_: Any) -> None:
        for k, v in request.headers.items():
            sent[k.lower()] = v.decode() if isinstance(v, bytes) else v

    s3.meta.events.register("before-send.s3.PutObject", capture)
    put = s3.put_object(Bucket=bucket, Key="k", Body=DATA, ChecksumAlgorithm=alg)
    # Prove which path ran: a trailer after aws-chunked framing over TLS, a plain header otherwise.
    if s3.meta.endpoint_url.startswith("https"):
        assert sent.get("x-amz-trailer") == f"x-amz-checksum-{alg.lower()}"
    else:
        assert f"x-amz-checksum-{alg.lower()}" in sent
    assert put[f"Checksum{alg}"] == EXPECTED[alg]
    assert put["ETag"] == f'"{hashlib.md5(DATA).hexdigest()}"'
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head[f"Checksum{alg}"] == EXPECTED[alg]
    assert head.get("ChecksumType") == "FULL_OBJECT"
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert got[f"Checksum{alg}"] == EXPECTED[alg]
    assert got["Body"].read() == DATA  # botocore validates the checksum while reading
    plain = s3.head_object(Bucket=bucket, Key="k")
    assert not any(k.startswith("Checksum") and k != "ChecksumType" for k in plain)


@pytest.mark.parametrize("alg", sorted(EXPECTED))
def test_put_with_precomputed_value(client: tuple[Any, str], alg: str) -> None:
    s3, bucket = client
    s3.put_object(Bucket=bucket, Key="k", Body=DATA, **{f"Checksum{alg}": EXPECTED[alg]})
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head[f"Checksum{alg}"] == EXPECTED[alg]


@pytest.mark.parametrize("alg", sorted(EXPECTED))
def test_wrong_checksum_rejected(client: tuple[Any, str], alg: str) -> None:
    s3, bucket = client
    wrong = EXPECTED["SHA256" if alg == "SHA1" else "SHA1"] if alg.startswith("SHA") else None
    if wrong is None:
        size = 8 if alg == "CRC64NVME" else 4
        wrong = _b64_int(1234567, size)
    elif alg == "SHA1":
        wrong = base64.b64encode(hashlib.sha1(b"other").digest()).decode()
    else:
        wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=DATA, **{f"Checksum{alg}": wrong})
    assert (e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "BadDigest",
        400,
    )
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_wrong_checksum_keeps_previous(client: tuple[Any, str]) -> None:
    s3, bucket = client
    s3.put_object(Bucket=bucket, Key="k", Body=b"previous")
    with pytest.raises(ClientError):
        s3.put_object(Bucket=bucket, Key="k", Body=DATA, ChecksumCRC32=_b64_int(42, 4))
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"previous"


def test_default_crc32_from_sdk(client: tuple[Any, str]) -> None:
    # boto3 >= 1.36 adds a CRC32 to every PutObject by default ("when_supported").
    s3, bucket = client
    s3.put_object(Bucket=bucket, Key="k", Body=DATA)
    head = s3.head_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == EXPECTED["CRC32"]


def test_ranged_get_has_no_whole_object_checksum(client: tuple[Any, str]) -> None:
    s3, bucket = client
    s3.put_object(Bucket=bucket, Key="k", Body=DATA, ChecksumAlgorithm="SHA256")
    got = s3.get_object(Bucket=bucket, Key="k", ChecksumMode="ENABLED", Range="bytes=0-99")
    assert "ChecksumSHA256" not in got
    assert got["Body"].read() == DATA[:100]


def test_empty_body_checksum(client: tuple[Any, str]) -> None:
    s3, bucket = client
    put = s3.put_object(Bucket=bucket, Key="e", Body=b"", ChecksumAlgorithm="CRC32C")
    assert put["ChecksumCRC32C"] == "AAAAAA=="
    head = s3.head_object(Bucket=bucket, Key="e", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32C"] == "AAAAAA=="


def test_malformed_checksum_value(client: tuple[Any, str]) -> None:
    s3, bucket = client
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=DATA, ChecksumCRC32="!!not-base64!!")
    assert e.value.response["Error"]["Code"] == "InvalidRequest"
    with pytest.raises(ClientError) as e2:  # valid base64, wrong digest size
        s3.put_object(Bucket=bucket, Key="k", Body=DATA, ChecksumCRC32="AAAAAAAA")
    assert e2.value.response["Error"]["Code"] == "InvalidRequest"
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_copy_keeps_checksum(client: tuple[Any, str]) -> None:
    s3, bucket = client
    s3.put_object(Bucket=bucket, Key="k", Body=DATA, ChecksumAlgorithm="CRC64NVME")
    s3.copy_object(Bucket=bucket, Key="k2", CopySource={"Bucket": bucket, "Key": "k"})
    head = s3.head_object(Bucket=bucket, Key="k2", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == EXPECTED["CRC64NVME"]


def test_algorithm_and_value_disagree(client: tuple[Any, str]) -> None:
    s3, bucket = client

    def hook(request: Any, **_: Any) -> None:
        del request.headers["x-amz-sdk-checksum-algorithm"]
        request.headers["x-amz-sdk-checksum-algorithm"] = "SHA256"

    s3.meta.events.register("before-sign.s3.PutObject", hook)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=DATA, ChecksumCRC32=EXPECTED["CRC32"])
    assert e.value.response["Error"]["Code"] == "InvalidRequest"
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
