"""CopyObject through boto3: directives, self-copy rules, source conditions, cross-bucket, multipart."""

from __future__ import annotations

import datetime
import hashlib
import os
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import fresh_bucket

PAST = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
FUTURE = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)


def _err(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return e.value.response["Error"]["Code"], int(e.value.response["ResponseMetadata"]["HTTPStatusCode"])


@pytest.fixture
def bucket2(s3: Any) -> Iterator[str]:
    with fresh_bucket(s3) as name:
        yield name


def _src(s3: Any, bucket: str, key: str = "src", body: bytes = b"source body") -> str:
    etag: str = s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType="text/plain",
        CacheControl="max-age=1",
        Metadata={"origin": "yes"},
    )["ETag"]
    return etag


def test_copy_same_bucket_keeps_metadata(s3: Any, bucket: str) -> None:
    etag = _src(s3, bucket)
    out = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert out["CopyObjectResult"]["ETag"] == etag
    assert out["CopyObjectResult"]["LastModified"].year >= 2024
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == b"source body"
    assert got["ContentType"] == "text/plain"
    assert got["CacheControl"] == "max-age=1"
    assert got["Metadata"] == {"origin": "yes"}


def test_copy_cross_bucket(s3: Any, bucket: str, bucket2: str) -> None:
    etag = _src(s3, bucket)
    s3.copy_object(Bucket=bucket2, Key="x/y", CopySource=f"{bucket}/src")
    got = s3.get_object(Bucket=bucket2, Key="x/y")
    assert got["ETag"] == etag
    assert got["Body"].read() == b"source body"
    # The source is untouched.
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == b"source body"


def test_copy_replace_metadata(s3: Any, bucket: str) -> None:
    _src(s3, bucket)
    s3.copy_object(
        Bucket=bucket,
        Key="dst",
        CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="REPLACE",
        ContentType="application/json",
        Metadata={"new": "value"},
    )
    got = s3.head_object(Bucket=bucket, Key="dst")
    assert got["ContentType"] == "application/json"
    assert got["Metadata"] == {"new": "value"}
    assert "CacheControl" not in got


def test_copy_directive_copy_ignores_given_metadata(s3: Any, bucket: str) -> None:
    _src(s3, bucket)
    s3.copy_object(
        Bucket=bucket,
        Key="dst",
        CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="COPY",
        Metadata={"ignored": "1"},
    )
    assert s3.head_object(Bucket=bucket, Key="dst")["Metadata"] == {"origin": "yes"}


def test_copy_onto_itself(s3: Any, bucket: str) -> None:
    _src(s3, bucket)
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"})
    assert _err(e) == ("InvalidRequest", 400)
    s3.copy_object(
        Bucket=bucket,
        Key="src",
        CopySource={"Bucket": bucket, "Key": "src"},
        MetadataDirective="REPLACE",
        Metadata={"updated": "true"},
    )
    got = s3.get_object(Bucket=bucket, Key="src")
    assert got["Metadata"] == {"updated": "true"}
    assert got["Body"].read() == b"source body"


def test_copy_odd_key_names(s3: Any, bucket: str) -> None:
    key = "dir/with space+plus%pct?q#h ключ"
    s3.put_object(Bucket=bucket, Key=key, Body=b"odd")
    s3.copy_object(Bucket=bucket, Key=key + "-copy", CopySource={"Bucket": bucket, "Key": key})
    assert s3.get_object(Bucket=bucket, Key=key + "-copy")["Body"].read() == b"odd"


def test_copy_empty_object(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    s3.copy_object(Bucket=bucket, Key="empty2", CopySource={"Bucket": bucket, "Key": "empty"})
    got = s3.get_object(Bucket=bucket, Key="empty2")
    assert got["ContentLength"] == 0
    assert got["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'


@pytest.mark.parametrize(
    ("cond", "ok"),
    [
        ({"CopySourceIfMatch": "ETAG"}, True),
        ({"CopySourceIfMatch": '"0000"'}, False),
        ({"CopySourceIfNoneMatch": "ETAG"}, False),
        ({"CopySourceIfNoneMatch": '"0000"'}, True),
        ({"CopySourceIfModifiedSince": PAST}, True),
        ({"CopySourceIfModifiedSince": FUTURE}, False),
        ({"CopySourceIfUnmodifiedSince": PAST}, False),
        ({"CopySourceIfUnmodifiedSince": FUTURE}, True),
        ({"CopySourceIfMatch": "ETAG", "CopySourceIfUnmodifiedSince": PAST}, True),
        # AWS's documented combination: if-none-match false and if-modified-since true -> 412.
        ({"CopySourceIfNoneMatch": "ETAG", "CopySourceIfModifiedSince": PAST}, False),
    ],
)
def test_copy_source_conditions(s3: Any, bucket: str, cond: dict[str, Any], ok: bool) -> None:
    etag = _src(s3, bucket)
    args = {k: etag if v == "ETAG" else v for k, v in cond.items()}
    call = {"Bucket": bucket, "Key": "dst", "CopySource": {"Bucket": bucket, "Key": "src"}, **args}
    if ok:
        s3.copy_object(**call)
        assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"source body"
        return
    with pytest.raises(ClientError) as e:
        s3.copy_object(**call)
    assert _err(e) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="dst")


def test_copy_missing_source(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "absent"})
    assert _err(e) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as e2:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket + "-none", "Key": "k"})
    assert _err(e2) == ("NoSuchBucket", 404)


def test_copy_to_missing_bucket(s3: Any, bucket: str) -> None:
    _src(s3, bucket)
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket + "-none", Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert _err(e) == ("NoSuchBucket", 404)


@pytest.mark.parametrize("source", ["nobucketonly", "/", "bucket/"])
def test_copy_bad_source_header(s3: Any, bucket: str, source: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource=source)
    assert _err(e)[1] == 400


def test_copy_bad_directive(s3: Any, bucket: str) -> None:
    _src(s3, bucket)

    def hook(request: Any, **_: Any) -> None:
        request.headers["x-amz-metadata-directive"] = "MERGE"

    s3.meta.events.register("before-sign.s3.CopyObject", hook)
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert _err(e) == ("InvalidArgument", 400)


def test_copy_multipart_object(s3: Any, bucket: str, bucket2: str) -> None:
    part1, part2 = os.urandom(5 * 1024 * 1024), os.urandom(1000)
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="video/mp4")
    etags = [
        s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=i, Body=b)["ETag"]
        for i, b in ((1, part1), (2, part2))
    ]
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": t} for i, t in enumerate(etags)]},
    )
    assert done["ETag"].endswith('-2"')
    out = s3.copy_object(Bucket=bucket2, Key="copy", CopySource={"Bucket": bucket, "Key": "mp"})
    # A copy is a new single-part object: its ETag is the MD5 of the whole body.
    assert out["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(part1 + part2).hexdigest()}"'
    got = s3.get_object(Bucket=bucket2, Key="copy")
    assert got["Body"].read() == part1 + part2
    assert got["ContentType"] == "video/mp4"
    assert "PartsCount" not in s3.head_object(Bucket=bucket2, Key="copy", PartNumber=1)


def test_copy_with_version_query(s3: Any, bucket: str) -> None:
    _src(s3, bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v2 = s3.put_object(Bucket=bucket, Key="src", Body=b"version two")["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"version three")
    out = s3.copy_object(
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src", "VersionId": v2}
    )
    assert out["CopySourceVersionId"] == v2
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"version two"


def test_copy_preserves_checksum(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="c", Body=b"checksummed", ChecksumAlgorithm="SHA256")
    out = s3.copy_object(Bucket=bucket, Key="c2", CopySource={"Bucket": bucket, "Key": "c"})
    src = s3.head_object(Bucket=bucket, Key="c", ChecksumMode="ENABLED")
    dst = s3.head_object(Bucket=bucket, Key="c2", ChecksumMode="ENABLED")
    assert dst["ChecksumSHA256"] == src["ChecksumSHA256"]
    assert out["CopyObjectResult"].get("ChecksumSHA256") == src["ChecksumSHA256"]


def test_copy_changes_storage_class_keeps_metadata(s3: Any, bucket: str) -> None:
    _src(s3, bucket)
    # A new storage class alone makes a self-copy legal, and COPY keeps the metadata.
    s3.copy_object(
        Bucket=bucket, Key="src", CopySource={"Bucket": bucket, "Key": "src"}, StorageClass="STANDARD_IA"
    )
    head = s3.head_object(Bucket=bucket, Key="src")
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["Metadata"] == {"origin": "yes"}
    assert head["ContentType"] == "text/plain"
    # Without the header a copy is STANDARD again (S3's default for new objects).
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert "StorageClass" not in s3.head_object(Bucket=bucket, Key="dst")
