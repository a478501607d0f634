"""Malformed single-object requests get AWS's error code and status, never a 500, and store nothing."""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from conftest import Server


def _err(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return e.value.response["Error"]["Code"], int(e.value.response["ResponseMetadata"]["HTTPStatusCode"])


def _presigned_put(server: Server, bucket: str, key: str) -> str:
    s3 = server.client(signature_version="s3v4")
    url: str = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=60)
    return url


def _raw(
    server: Server, method: str, url: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        path = parts.path + ("?" + parts.query if parts.query else "")
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_missing_content_length(server: Server, s3: Any, bucket: str) -> None:
    status, body = _raw(server, "PUT", _presigned_put(server, bucket, "k"), None, {})
    assert status == 411
    assert b"<Code>MissingContentLength</Code>" in body


def test_bad_content_length(server: Server, s3: Any, bucket: str) -> None:
    url = _presigned_put(server, bucket, "k")
    status, _ = _raw(server, "PUT", url, b"abc", {"Content-Length": "3"})
    assert status == 200
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"abc"


def test_invalid_storage_class(s3: Any, bucket: str) -> None:
    def hook(request: Any, **_: Any) -> None:
        request.headers["x-amz-storage-class"] = "PLATINUM"

    s3.meta.events.register("before-sign.s3.PutObject", hook)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert _err(e) == ("InvalidStorageClass", 400)


def test_storage_class_roundtrip(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", StorageClass="STANDARD_IA")
    assert s3.head_object(Bucket=bucket, Key="k")["StorageClass"] == "STANDARD_IA"


@pytest.mark.parametrize("version", ["bad version", "x" * 100, "../etc"])
def test_invalid_version_id(s3: Any, bucket: str, version: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", VersionId=version)
    assert _err(e) == ("InvalidArgument", 400)


def test_no_such_version(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", VersionId="abcdef0123456789")
    assert _err(e) == ("NoSuchVersion", 404)
    # The null version of an unversioned bucket is addressable.
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"x"


@pytest.mark.parametrize("part", ["0", "abc", "10001", "-1"])
def test_bad_part_number(server: Server, s3: Any, bucket: str, part: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")

    def hook(request: Any, **_: Any) -> None:
        request.url = request.url.replace("partNumber=1", f"partNumber={part}")

    s3.meta.events.register("before-sign.s3.GetObject", hook)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", PartNumber=1)
    assert _err(e)[1] == 400


def test_part_number_with_range(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"xyz")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="k", PartNumber=1, Range="bytes=0-1")
    assert _err(e) == ("InvalidRequest", 400)


def test_unknown_checksum_header(s3: Any, bucket: str) -> None:
    def hook(request: Any, **_: Any) -> None:
        request.headers["x-amz-checksum-md4"] = "AAAA"

    s3.meta.events.register("before-sign.s3.PutObject", hook)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert _err(e)[1] == 400
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_copy_destination_key_too_long(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="d" * 1025, CopySource={"Bucket": bucket, "Key": "k"})
    assert _err(e) == ("KeyTooLongError", 400)


def test_invalid_percent_encoding_in_path(server: Server, s3: Any, bucket: str) -> None:
    url = server.client(signature_version="s3v4").generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=60
    )
    bad = url.replace(f"/{bucket}/k", f"/{bucket}/%ff%fe")
    status, body = _raw(server, "GET", bad, None, {})
    assert status in (400, 403)
    assert b"<Code>" in body


def test_put_on_bucket_path_without_key(server: Server, s3: Any, bucket: str) -> None:
    # A PUT to the bucket itself is CreateBucket: the owner gets BucketAlreadyOwnedByYou.
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=bucket)
    assert _err(e) == ("BucketAlreadyOwnedByYou", 409)


def test_get_after_delete_is_404(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="k")
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="k")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
