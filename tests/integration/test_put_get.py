"""PutObject, GetObject, HeadObject and DeleteObject through boto3: bodies, metadata, keys, ranges."""

from __future__ import annotations

import base64
import datetime
import email.header
import hashlib
import os
from typing import Any

import pytest
from botocore.exceptions import ClientError


def _status(e: pytest.ExceptionInfo[ClientError]) -> int:
    return int(e.value.response["ResponseMetadata"]["HTTPStatusCode"])


def test_roundtrip_etag_and_length(s3: Any, bucket: str) -> None:
    data = os.urandom(100_000)
    put = s3.put_object(Bucket=bucket, Key="obj", Body=data)
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="obj")
    assert got["Body"].read() == data
    assert got["ETag"] == put["ETag"]
    assert got["ContentLength"] == len(data)
    assert got["AcceptRanges"] == "bytes"
    head = s3.head_object(Bucket=bucket, Key="obj")
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == put["ETag"]
    assert head["ContentType"] == "binary/octet-stream"


def test_last_modified(s3: Any, bucket: str) -> None:
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(seconds=2)
    s3.put_object(Bucket=bucket, Key="t", Body=b"x")
    lm = s3.head_object(Bucket=bucket, Key="t")["LastModified"]
    assert before <= lm <= datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2)
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"][0]["LastModified"]
    assert abs((listed - lm).total_seconds()) < 1


def test_overwrite_replaces(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"first", Metadata={"a": "1"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"second!")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"second!"
    assert got["Metadata"] == {}


def test_system_and_user_metadata(s3: Any, bucket: str) -> None:
    expires = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    s3.put_object(
        Bucket=bucket,
        Key="meta",
        Body=b"hello",
        ContentType="text/plain; charset=utf-8",
        ContentEncoding="identity",
        ContentDisposition='attachment; filename="a b.txt"',
        ContentLanguage="de-DE",
        CacheControl="max-age=60, public",
        Expires=expires,
        Metadata={"color": "blue", "Mixed-Case": "Value", "empty": "", "spaces": "a  b"},
    )
    for out in (s3.head_object(Bucket=bucket, Key="meta"), s3.get_object(Bucket=bucket, Key="meta")):
        assert out["ContentType"] == "text/plain; charset=utf-8"
        assert out["ContentEncoding"] == "identity"
        assert out["ContentDisposition"] == 'attachment; filename="a b.txt"'
        assert out["ContentLanguage"] == "de-DE"
        assert out["CacheControl"] == "max-age=60, public"
        assert out["ResponseMetadata"]["HTTPHeaders"]["expires"] == "Wed, 02 Jan 2030 03:04:05 GMT"
        assert out["Metadata"] == {"color": "blue", "mixed-case": "Value", "empty": "", "spaces": "a  b"}


def _raw_meta(name: str, value: str) -> Any:
    """A before-sign hook that sends ``value`` as raw UTF-8 bytes (boto3 itself refuses non-ASCII)."""

    def hook(request: Any, **_: Any) -> None:
        request.headers[f"x-amz-meta-{name}"] = value  # botocore sends str headers as UTF-8

    return hook


def test_unicode_metadata_raw_utf8(s3: Any, bucket: str) -> None:
    # S3 answers non-ASCII values RFC 2047 encoded ("mail-safe"); decoding gives the original back.
    s3.meta.events.register("before-sign.s3.PutObject", _raw_meta("name", "Grüße 東京 ✓"))
    s3.put_object(Bucket=bucket, Key="u", Body=b"x")
    for out in (s3.head_object(Bucket=bucket, Key="u"), s3.get_object(Bucket=bucket, Key="u")):
        value = out["Metadata"]["name"]
        assert value.startswith("=?UTF-8?B?")
        assert str(email.header.make_header(email.header.decode_header(value))) == "Grüße 東京 ✓"


@pytest.mark.parametrize("encoded", ["=?UTF-8?B?R3LDvMOfZSDinJM=?=", "=?utf-8?q?Gr=C3=BC=C3=9Fe_=E2=9C=93?="])
def test_unicode_metadata_rfc2047(s3: Any, bucket: str, encoded: str) -> None:
    s3.put_object(Bucket=bucket, Key="u", Body=b"x", Metadata={"name": encoded})
    value = s3.head_object(Bucket=bucket, Key="u")["Metadata"]["name"]
    assert str(email.header.make_header(email.header.decode_header(value))) == "Grüße ✓"


def test_metadata_too_large(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="big", Body=b"x", Metadata={"m": "v" * 2100})
    assert e.value.response["Error"]["Code"] == "MetadataTooLarge"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="big")


def test_empty_object(s3: Any, bucket: str) -> None:
    put = s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    assert put["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["Body"].read() == b""
    assert got["ContentLength"] == 0
    assert s3.head_object(Bucket=bucket, Key="empty")["ContentLength"] == 0
    # A range on an empty object is unsatisfiable.
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="empty", Range="bytes=0-0")
    assert _status(e) == 416


def test_content_md5_ok(s3: Any, bucket: str) -> None:
    data = b"checked body"
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    s3.put_object(Bucket=bucket, Key="m", Body=data, ContentMD5=md5)
    assert s3.get_object(Bucket=bucket, Key="m")["Body"].read() == data


def test_content_md5_wrong(s3: Any, bucket: str) -> None:
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="m", Body=b"data", ContentMD5=wrong)
    assert (e.value.response["Error"]["Code"], _status(e)) == ("BadDigest", 400)
    with pytest.raises(ClientError) as e2:
        s3.head_object(Bucket=bucket, Key="m")
    assert _status(e2) == 404


def test_content_md5_wrong_keeps_old(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="m", Body=b"old")
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError):
        s3.put_object(Bucket=bucket, Key="m", Body=b"new", ContentMD5=wrong)
    assert s3.get_object(Bucket=bucket, Key="m")["Body"].read() == b"old"


@pytest.mark.parametrize("value", ["not base64!!", base64.b64encode(b"short").decode(), ""])
def test_content_md5_malformed(s3: Any, bucket: str, value: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="m", Body=b"data", ContentMD5=value)
    assert (e.value.response["Error"]["Code"], _status(e)) == ("InvalidDigest", 400)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


KEYS = [
    "with space",
    "unicode-ключ-東京-✓",
    "../escape",
    "a/../../b",
    "percent%20and%",
    "plus+sign",
    "question?mark",
    "hash#tag",
    "amp&eq=semi;",
    "dir/sub/file.txt",
    "/leading-slash",
    "trailing/",
    "double//slash",
    "tab\tchar",
    "~tilde*star'quote\"",
    "k" * 1024,
    "é" * 512,
]


@pytest.mark.parametrize("key", KEYS, ids=range(len(KEYS)))
def test_odd_keys(s3: Any, bucket: str, key: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(key.encode())
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    s3.delete_object(Bucket=bucket, Key=key)
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


@pytest.mark.parametrize("key", ["k" * 1025, "é" * 513])
def test_key_too_long(s3: Any, bucket: str, key: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert (e.value.response["Error"]["Code"], _status(e)) == ("KeyTooLongError", 400)


def test_delete_object(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="d", Body=b"x")
    out = s3.delete_object(Bucket=bucket, Key="d")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="d")
    assert e.value.response["Error"]["Code"] == "NoSuchKey"


def test_delete_missing_key(s3: Any, bucket: str) -> None:
    out = s3.delete_object(Bucket=bucket, Key="never-existed")
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_missing_key_and_bucket(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="nope")
    assert (e.value.response["Error"]["Code"], _status(e)) == ("NoSuchKey", 404)
    assert e.value.response["Error"].get("Key") == "nope"
    with pytest.raises(ClientError) as e2:
        s3.head_object(Bucket=bucket, Key="nope")
    assert _status(e2) == 404
    with pytest.raises(ClientError) as e3:
        s3.get_object(Bucket=bucket + "-missing", Key="nope")
    assert (e3.value.response["Error"]["Code"], _status(e3)) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as e4:
        s3.put_object(Bucket=bucket + "-missing", Key="nope", Body=b"x")
    assert e4.value.response["Error"]["Code"] == "NoSuchBucket"
    with pytest.raises(ClientError) as e5:
        s3.delete_object(Bucket=bucket + "-missing", Key="nope")
    assert e5.value.response["Error"]["Code"] == "NoSuchBucket"


DATA = bytes(range(256)) * 4  # 1024 bytes


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=10-19", 10, 19),
        ("bytes=1000-", 1000, 1023),
        ("bytes=-24", 1000, 1023),
        ("bytes=-5000", 0, 1023),
        ("bytes=1000-99999", 1000, 1023),
        ("bytes=1023-1023", 1023, 1023),
    ],
)
def test_range_get(s3: Any, bucket: str, header: str, start: int, end: int) -> None:
    s3.put_object(Bucket=bucket, Key="r", Body=DATA)
    got = s3.get_object(Bucket=bucket, Key="r", Range=header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes {start}-{end}/1024"
    assert got["ContentLength"] == end - start + 1
    assert got["Body"].read() == DATA[start : end + 1]
    head = s3.head_object(Bucket=bucket, Key="r", Range=header)
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert head["ContentLength"] == end - start + 1


@pytest.mark.parametrize("header", ["bytes=1024-", "bytes=5000-6000", "bytes=-0"])
def test_range_unsatisfiable(s3: Any, bucket: str, header: str) -> None:
    s3.put_object(Bucket=bucket, Key="r", Body=DATA)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="r", Range=header)
    assert (e.value.response["Error"]["Code"], _status(e)) == ("InvalidRange", 416)
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"].get("content-range") == "bytes */1024"


@pytest.mark.parametrize("header", ["bytes=20-10", "items=0-1", "bytes=0-1,5-6", "garbage"])
def test_range_ignored(s3: Any, bucket: str, header: str) -> None:
    s3.put_object(Bucket=bucket, Key="r", Body=DATA)
    got = s3.get_object(Bucket=bucket, Key="r", Range=header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert got["Body"].read() == DATA


def test_response_overrides(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="o", Body=b"x", ContentType="text/plain", CacheControl="no-cache")
    got = s3.get_object(
        Bucket=bucket,
        Key="o",
        ResponseContentType="application/json",
        ResponseContentDisposition='attachment; filename="x.json"',
        ResponseCacheControl="max-age=5",
        ResponseContentLanguage="fr",
        ResponseContentEncoding="gzip",
        ResponseExpires=datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=datetime.UTC),
    )
    assert got["ContentType"] == "application/json"
    assert got["ContentDisposition"] == 'attachment; filename="x.json"'
    assert got["CacheControl"] == "max-age=5"
    assert got["ContentLanguage"] == "fr"
    assert got["ContentEncoding"] == "gzip"
    assert got["ResponseMetadata"]["HTTPHeaders"]["expires"] == "Tue, 06 May 2031 07:08:09 GMT"
    assert got["Body"].read() == b"x"
    # Overrides do not change what is stored.
    head = s3.head_object(Bucket=bucket, Key="o")
    assert (head["ContentType"], head["CacheControl"]) == ("text/plain", "no-cache")


def test_part_number_on_single_part(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="p", Body=DATA)
    got = s3.get_object(Bucket=bucket, Key="p", PartNumber=1)
    assert got["Body"].read() == DATA
    assert got["ContentLength"] == len(DATA)
    # AWS treats it as a range over the whole object.
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["ContentRange"] == f"bytes 0-{len(DATA) - 1}/{len(DATA)}"
    assert "PartsCount" not in got
    head = s3.head_object(Bucket=bucket, Key="p", PartNumber=1)
    assert head["ContentLength"] == len(DATA)
    assert head["ResponseMetadata"]["HTTPStatusCode"] == 206
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    empty = s3.get_object(Bucket=bucket, Key="empty", PartNumber=1)
    assert (empty["ResponseMetadata"]["HTTPStatusCode"], empty["Body"].read()) == (200, b"")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="p", PartNumber=2)
    assert _status(e) == 416


def test_part_number_on_multipart(s3: Any, bucket: str) -> None:
    part1, part2 = os.urandom(5 * 1024 * 1024), b"tail"
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    etags = [
        s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=i, Body=b)["ETag"]
        for i, b in ((1, part1), (2, part2))
    ]
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": t} for i, t in enumerate(etags)]},
    )
    got = s3.get_object(Bucket=bucket, Key="mp", PartNumber=2)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert got["Body"].read() == part2
    assert got["ContentRange"] == f"bytes {len(part1)}-{len(part1) + 3}/{len(part1) + 4}"
    assert got["PartsCount"] == 2
