"""Server-side encryption against a real `rs3gw serve` with boto3: SSE-S3, SSE-KMS, SSE-C round trips
(ranges, multipart, copy with re-encryption), bucket default encryption, ciphertext on disk, tampering."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ResponseStreamingError

from blob_access import blob_ids, read_blob, write_blob
from conftest import Server, fresh_bucket, start_server
from meta_access import stored_metadata_bytes
from rs3gw.blobs.encrypted import HEADER_SIZE, MAGIC, parse_header

CHUNK = 64 * 1024
KEY_A = secrets.token_bytes(32)
KEY_B = secrets.token_bytes(32)


def ssec(key: bytes) -> dict[str, Any]:
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def copy_ssec(key: bytes) -> dict[str, Any]:
    return {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": key}


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    r = exc.value.response
    return r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Code"]


def disk_contains(data_dir: Path, needle: bytes) -> bool:
    return any(needle in p.read_bytes() for p in data_dir.rglob("*") if p.is_file() and "log" not in p.name)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server(tmp_path_factory.mktemp("sse") / "data", "--no-fsync", "--sse-c-over-http")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def s3(srv: Server) -> Any:
    return srv.client()


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    with fresh_bucket(s3, "sse") as name:
        yield name


def get(s3: Any, bucket: str, key: str, **kw: Any) -> tuple[bytes, dict[str, Any]]:
    r = s3.get_object(Bucket=bucket, Key=key, **kw)
    return r["Body"].read(), r


def check_ranges(s3: Any, bucket: str, key: str, data: bytes, **kw: Any) -> None:
    n = len(data)
    for a, b in [
        (0, 0),
        (0, 9),
        (CHUNK - 5, CHUNK + 5),
        (CHUNK, 2 * CHUNK - 1),
        (2 * CHUNK + 1, n - 1),
        (n - 3, n - 1),
    ]:
        body, r = get(s3, bucket, key, Range=f"bytes={a}-{b}", **kw)
        assert body == data[a : b + 1], (a, b)
        assert r["ResponseMetadata"]["HTTPStatusCode"] == 206


def test_sse_s3_round_trip_headers_and_ranges(s3: Any, bucket: str) -> None:
    data = os.urandom(3 * CHUNK + 123)
    put = s3.put_object(Bucket=bucket, Key="s3", Body=data, ServerSideEncryption="AES256")
    assert put["ServerSideEncryption"] == "AES256"
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    body, r = get(s3, bucket, "s3")
    assert body == data and r["ServerSideEncryption"] == "AES256"
    assert s3.head_object(Bucket=bucket, Key="s3")["ServerSideEncryption"] == "AES256"
    check_ranges(s3, bucket, "s3", data)
    plain = s3.put_object(Bucket=bucket, Key="plain", Body=b"x")
    assert "ServerSideEncryption" not in plain
    assert "ServerSideEncryption" not in s3.head_object(Bucket=bucket, Key="plain")


def test_sse_kms_round_trip_creates_key(s3: Any, srv: Server, bucket: str) -> None:
    data = os.urandom(CHUNK * 2 + 7)
    put = s3.put_object(
        Bucket=bucket, Key="k", Body=data, ServerSideEncryption="aws:kms", SSEKMSKeyId="team-a"
    )
    assert put["ServerSideEncryption"] == "aws:kms" and put["SSEKMSKeyId"] == "team-a"
    body, r = get(s3, bucket, "k")
    assert body == data and r["SSEKMSKeyId"] == "team-a"
    check_ranges(s3, bucket, "k", data)
    keys = json.loads((srv.data_dir / "keys.json").read_text())["keys"]
    assert "team-a" in keys
    assert oct((srv.data_dir / "keys.json").stat().st_mode & 0o777) == "0o600"
    material = keys["team-a"][0]["material"]
    stored = stored_metadata_bytes(srv.data_dir)  # meta.db, or the object rows in PostgreSQL
    assert base64.b64decode(material) not in stored and material.encode() not in stored
    nokey = s3.put_object(Bucket=bucket, Key="k2", Body=b"abc", ServerSideEncryption="aws:kms")
    assert nokey["SSEKMSKeyId"] == "aws/s3"
    assert get(s3, bucket, "k2")[0] == b"abc"


def test_sse_c_round_trip_and_key_errors(s3: Any, bucket: str) -> None:
    data = os.urandom(3 * CHUNK + 1)
    put = s3.put_object(Bucket=bucket, Key="c", Body=data, **ssec(KEY_A))
    md5 = base64.b64encode(hashlib.md5(KEY_A).digest()).decode()
    assert put["SSECustomerAlgorithm"] == "AES256" and put["SSECustomerKeyMD5"] == md5
    assert "ServerSideEncryption" not in put
    body, r = get(s3, bucket, "c", **ssec(KEY_A))
    assert body == data and r["SSECustomerKeyMD5"] == md5
    check_ranges(s3, bucket, "c", data, **ssec(KEY_A))
    assert s3.head_object(Bucket=bucket, Key="c", **ssec(KEY_A))["ContentLength"] == len(data)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c")
    assert code_of(e) == (400, "InvalidRequest")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", **ssec(KEY_B))
    assert code_of(e) == (403, "AccessDenied")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="c")
    assert code_of(e)[0] == 400
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="c", **ssec(KEY_B))
    assert code_of(e)[0] == 403
    s3.put_object(Bucket=bucket, Key="p", Body=b"plain")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="p", **ssec(KEY_A))
    assert code_of(e) == (400, "InvalidRequest")


def test_sse_c_bad_md5_and_malformed_headers(srv: Server, bucket: str) -> None:
    s3 = srv.client()

    def bad_md5(request: Any, **_: Any) -> None:
        del request.headers["x-amz-server-side-encryption-customer-key-MD5"]
        request.headers["x-amz-server-side-encryption-customer-key-MD5"] = base64.b64encode(
            b"0" * 16
        ).decode()

    s3.meta.events.register("before-sign.s3.PutObject", bad_md5)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="m", Body=b"x", **ssec(KEY_A))
    assert code_of(e) == (400, "InvalidArgument")
    plain = srv.client()
    with pytest.raises(ClientError) as e:
        plain.put_object(Bucket=bucket, Key="m", Body=b"x", **ssec(b"short"))
    assert code_of(e) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as e:
        plain.put_object(
            Bucket=bucket, Key="m", Body=b"x", SSECustomerAlgorithm="AES128", SSECustomerKey=KEY_A
        )
    assert code_of(e) == (400, "InvalidEncryptionAlgorithmError")
    with pytest.raises(ClientError) as e:
        plain.put_object(Bucket=bucket, Key="m", Body=b"x", ServerSideEncryption="AES256", **ssec(KEY_A))
    assert code_of(e) == (400, "InvalidArgument")
    with pytest.raises(ClientError) as e:
        plain.put_object(Bucket=bucket, Key="m", Body=b"x", ServerSideEncryption="AES256", SSEKMSKeyId="k")
    assert code_of(e) == (400, "InvalidArgument")

    def bogus(request: Any, **_: Any) -> None:
        del request.headers["x-amz-server-side-encryption"]
        request.headers["x-amz-server-side-encryption"] = "rot13"

    s3b = srv.client()
    s3b.meta.events.register("before-sign.s3.PutObject", bogus)
    with pytest.raises(ClientError) as e:
        s3b.put_object(Bucket=bucket, Key="m", Body=b"x")
    assert code_of(e) == (400, "InvalidArgument")
    with pytest.raises(ClientError):
        plain.head_object(Bucket=bucket, Key="m")  # nothing was stored by the refused requests


def test_multipart_sse_s3_and_sse_c(s3: Any, bucket: str) -> None:
    p1, p2 = os.urandom(5 * 1024 * 1024), os.urandom(CHUNK + 99)
    for key, kw, extra in [
        ("mp-s3", {"ServerSideEncryption": "AES256"}, {}),
        ("mp-c", ssec(KEY_A), ssec(KEY_A)),
    ]:
        up = s3.create_multipart_upload(Bucket=bucket, Key=key, **kw)
        if extra:
            assert up["SSECustomerAlgorithm"] == "AES256"
            with pytest.raises(ClientError) as e:  # every part needs the key
                s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=1, Body=p1)
            assert code_of(e)[0] == 400
        else:
            assert up["ServerSideEncryption"] == "AES256"
        parts = []
        for n, data in ((1, p1), (2, p2)):
            r = s3.upload_part(
                Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=n, Body=data, **extra
            )
            assert (
                (r.get("ServerSideEncryption") == "AES256")
                if not extra
                else r["SSECustomerAlgorithm"] == "AES256"
            )
            parts.append({"PartNumber": n, "ETag": r["ETag"]})
        done = s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=up["UploadId"], MultipartUpload={"Parts": parts}
        )
        if not extra:
            assert done["ServerSideEncryption"] == "AES256"
        body, _ = get(s3, bucket, key, **extra)
        assert body == p1 + p2
        a = len(p1) - 10
        assert get(s3, bucket, key, Range=f"bytes={a}-{a + 20}", **extra)[0] == (p1 + p2)[a : a + 21]
        if extra:
            with pytest.raises(ClientError) as e:
                s3.get_object(Bucket=bucket, Key=key)
            assert code_of(e)[0] == 400


def test_copy_with_re_encryption(s3: Any, bucket: str) -> None:
    data = os.urandom(2 * CHUNK + 5)
    s3.put_object(Bucket=bucket, Key="src", Body=data, ServerSideEncryption="AES256")
    src = {"Bucket": bucket, "Key": "src"}
    r = s3.copy_object(Bucket=bucket, Key="to-c", CopySource=src, **ssec(KEY_A))
    assert r["SSECustomerAlgorithm"] == "AES256"
    assert get(s3, bucket, "to-c", **ssec(KEY_A))[0] == data
    # SSE-C source: the copy-source key is required, and the copy gets the requested encryption.
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="to-kms", CopySource={"Bucket": bucket, "Key": "to-c"})
    assert code_of(e)[0] == 400
    with pytest.raises(ClientError) as e:
        s3.copy_object(
            Bucket=bucket, Key="to-kms", CopySource={"Bucket": bucket, "Key": "to-c"}, **copy_ssec(KEY_B)
        )
    assert code_of(e)[0] == 403
    r = s3.copy_object(
        Bucket=bucket,
        Key="to-kms",
        CopySource={"Bucket": bucket, "Key": "to-c"},
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId="copy-key",
        **copy_ssec(KEY_A),
    )
    assert r["ServerSideEncryption"] == "aws:kms" and r["SSEKMSKeyId"] == "copy-key"
    body, g = get(s3, bucket, "to-kms")
    assert body == data and g["SSEKMSKeyId"] == "copy-key"
    # SSE-C to another SSE-C key, and a copy without SSE headers is stored unencrypted.
    s3.copy_object(
        Bucket=bucket,
        Key="to-c2",
        CopySource={"Bucket": bucket, "Key": "to-c"},
        **copy_ssec(KEY_A),
        **ssec(KEY_B),
    )
    assert get(s3, bucket, "to-c2", **ssec(KEY_B))[0] == data
    r = s3.copy_object(Bucket=bucket, Key="to-plain", CopySource=src)
    assert "ServerSideEncryption" not in r
    assert "ServerSideEncryption" not in s3.head_object(Bucket=bucket, Key="to-plain")
    # Changing only the encryption makes a copy onto itself legal.
    s3.copy_object(Bucket=bucket, Key="src", CopySource=src, ServerSideEncryption="aws:kms")
    assert s3.head_object(Bucket=bucket, Key="src")["ServerSideEncryption"] == "aws:kms"
    # UploadPartCopy from an SSE-C source into an SSE-S3 upload.
    up = s3.create_multipart_upload(Bucket=bucket, Key="upc", ServerSideEncryption="AES256")
    part = s3.upload_part_copy(
        Bucket=bucket,
        Key="upc",
        UploadId=up["UploadId"],
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "to-c"},
        **copy_ssec(KEY_A),
    )
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="upc",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]},
    )
    assert get(s3, bucket, "upc")[0] == data


def test_bucket_default_encryption(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.get_bucket_encryption(Bucket=bucket)
    assert code_of(e) == (404, "ServerSideEncryptionConfigurationNotFoundError")
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.put_object(Bucket=bucket, Key="d", Body=b"default")["ServerSideEncryption"] == "AES256"
    assert s3.head_object(Bucket=bucket, Key="d")["ServerSideEncryption"] == "AES256"
    # An explicit request still wins over the default.
    assert "ServerSideEncryption" not in s3.put_object(Bucket=bucket, Key="dc", Body=b"c", **ssec(KEY_A))
    up = s3.create_multipart_upload(Bucket=bucket, Key="dm")
    assert up["ServerSideEncryption"] == "AES256"
    s3.abort_multipart_upload(Bucket=bucket, Key="dm", UploadId=up["UploadId"])
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": "bucket-key",
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == "bucket-key"
    assert rule["BucketKeyEnabled"] is True
    r = s3.put_object(Bucket=bucket, Key="k", Body=b"kms")
    assert r["ServerSideEncryption"] == "aws:kms" and r["SSEKMSKeyId"] == "bucket-key"
    assert get(s3, bucket, "k")[0] == b"kms"
    with pytest.raises(ClientError) as e:
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "DES"}}]
            },
        )
    assert code_of(e)[0] == 400
    s3.delete_bucket_encryption(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_encryption(Bucket=bucket)
    assert code_of(e)[0] == 404
    assert "ServerSideEncryption" not in s3.put_object(Bucket=bucket, Key="after", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.get_bucket_encryption(Bucket="no-such-bucket-sse")
    assert code_of(e) == (404, "NoSuchBucket")


@pytest.mark.local_backend_only("reads or flips blob bytes on disk")
def test_ciphertext_on_disk_never_contains_plaintext(s3: Any, srv: Server, bucket: str) -> None:
    marker = b"PLAINTEXT-MARKER-" + secrets.token_hex(8).encode() + b"|"
    data = marker * (3 * CHUNK // len(marker))
    s3.put_object(Bucket=bucket, Key="s3", Body=data, ServerSideEncryption="AES256")
    s3.put_object(Bucket=bucket, Key="kms", Body=data, ServerSideEncryption="aws:kms", SSEKMSKeyId="scan")
    s3.put_object(Bucket=bucket, Key="c", Body=data, **ssec(KEY_A))
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ServerSideEncryption="AES256")
    r = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=data)
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": r["ETag"]}]},
    )
    s3.copy_object(
        Bucket=bucket, Key="cp", CopySource={"Bucket": bucket, "Key": "s3"}, ServerSideEncryption="AES256"
    )
    assert not disk_contains(srv.data_dir, marker)
    assert not disk_contains(srv.data_dir, base64.b64encode(KEY_A))
    assert not disk_contains(srv.data_dir, KEY_A)
    # The control: the same bytes stored unencrypted are found by the same scan.
    s3.put_object(Bucket=bucket, Key="plain", Body=data)
    assert disk_contains(srv.data_dir, marker)
    s3.delete_object(Bucket=bucket, Key="plain")


def _new_blob(srv: Server, s3: Any, bucket: str, key: str, data: bytes, **kw: Any) -> str:
    """The one stored blob (a file, or a packed row up to 32 KiB) the PUT made."""
    before = blob_ids(srv.data_dir)
    s3.put_object(Bucket=bucket, Key=key, Body=data, **kw)
    (blob_id,) = blob_ids(srv.data_dir) - before
    assert read_blob(srv.data_dir, blob_id)[: len(MAGIC)] == MAGIC
    return blob_id


def _flip(data_dir: Path, blob_id: str, offset: int) -> None:
    """One bit of one stored byte flipped (offset counted from the end when negative)."""
    raw = bytearray(read_blob(data_dir, blob_id))
    raw[offset] ^= 0x01
    write_blob(data_dir, blob_id, bytes(raw))


@pytest.mark.local_backend_only("reads or flips blob bytes on disk")
def test_tampering_with_one_byte_fails_the_get(s3: Any, srv: Server, bucket: str) -> None:
    # In the first chunk: an S3 error before any header goes out.
    blob = _new_blob(srv, s3, bucket, "t1", os.urandom(1000), ServerSideEncryption="AES256")
    _flip(srv.data_dir, blob, HEADER_SIZE + 500)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="t1")
    assert code_of(e) == (500, "InternalError")
    # In a later chunk: chunks before it still serve a range; a full read is cut short, never wrong.
    data = os.urandom(4 * CHUNK)
    blob = _new_blob(srv, s3, bucket, "t2", data, **ssec(KEY_A))
    _flip(srv.data_dir, blob, HEADER_SIZE + 3 * (CHUNK + 16) + 7)
    assert get(s3, bucket, "t2", Range=f"bytes=0-{CHUNK - 1}", **ssec(KEY_A))[0] == data[:CHUNK]
    with pytest.raises(Exception) as err:
        body, _ = get(s3, bucket, "t2", **ssec(KEY_A))
        assert body == data  # not reached: the stream is cut
    assert not isinstance(err.value, AssertionError)
    # Past the first MiB: the status line is out when the damage is met, so the connection is cut.
    data = os.urandom(2 * 1024 * 1024 + 100)
    blob = _new_blob(srv, s3, bucket, "t5", data, ServerSideEncryption="AES256")
    _flip(srv.data_dir, blob, -30)
    r = s3.get_object(Bucket=bucket, Key="t5")
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(ResponseStreamingError):  # IncompleteRead: short of Content-Length
        r["Body"].read()
    # In the wrapped data key (header slot) and in the last tag byte (truncation-like damage).
    blob = _new_blob(srv, s3, bucket, "t3", os.urandom(10), ServerSideEncryption="aws:kms", SSEKMSKeyId="t")
    _flip(srv.data_dir, blob, 24 + 4 + 1 + 128 + 1 + 20)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="t3")
    assert code_of(e)[0] == 500
    blob = _new_blob(srv, s3, bucket, "t4", os.urandom(CHUNK + 10), ServerSideEncryption="AES256")
    raw = read_blob(srv.data_dir, blob)
    write_blob(
        srv.data_dir, blob, raw[: HEADER_SIZE + CHUNK + 16]
    )  # drop the final chunk: the rest looks whole
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="t4")
    assert code_of(e)[0] == 500
    header = parse_header(raw[:HEADER_SIZE])
    assert header is not None and header.live[1].ref == "aws/s3#1"
