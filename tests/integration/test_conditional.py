"""Conditional GET/HEAD (If-Match & co.) and conditional PUT (If-None-Match: *, If-Match) via boto3."""

from __future__ import annotations

import datetime
import hashlib
from typing import Any

import pytest
from botocore.exceptions import ClientError

PAST = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
FUTURE = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)


def _status(e: pytest.ExceptionInfo[ClientError]) -> int:
    return int(e.value.response["ResponseMetadata"]["HTTPStatusCode"])


@pytest.fixture
def obj(s3: Any, bucket: str) -> tuple[str, str, datetime.datetime]:
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"conditional")["ETag"]
    lm = s3.head_object(Bucket=bucket, Key="c")["LastModified"]
    return bucket, etag, lm


CASES: list[tuple[dict[str, Any], int]] = [
    ({"IfMatch": "ETAG"}, 200),
    ({"IfMatch": '"0123456789abcdef0123456789abcdef"'}, 412),
    ({"IfMatch": "*"}, 200),
    ({"IfNoneMatch": "ETAG"}, 304),
    ({"IfNoneMatch": '"0123456789abcdef0123456789abcdef"'}, 200),
    ({"IfNoneMatch": "*"}, 304),
    ({"IfModifiedSince": PAST}, 200),
    ({"IfModifiedSince": FUTURE}, 304),
    ({"IfModifiedSince": "LM"}, 304),
    ({"IfUnmodifiedSince": PAST}, 412),
    ({"IfUnmodifiedSince": FUTURE}, 200),
    ({"IfUnmodifiedSince": "LM"}, 200),
    # S3's documented combinations: If-Match true wins over If-Unmodified-Since false ...
    ({"IfMatch": "ETAG", "IfUnmodifiedSince": PAST}, 200),
    # ... and If-None-Match false (a match) wins over If-Modified-Since true.
    ({"IfNoneMatch": "ETAG", "IfModifiedSince": PAST}, 304),
    ({"IfNoneMatch": '"other"', "IfModifiedSince": FUTURE}, 200),
    ({"IfMatch": '"other"', "IfNoneMatch": "ETAG"}, 412),
]


def _args(case: dict[str, Any], etag: str, lm: datetime.datetime) -> dict[str, Any]:
    return {k: etag if v == "ETAG" else lm if v == "LM" else v for k, v in case.items()}


@pytest.mark.parametrize(("case", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
@pytest.mark.parametrize("method", ["get_object", "head_object"])
def test_read_conditions(
    s3: Any, obj: tuple[str, str, datetime.datetime], case: dict[str, Any], expected: int, method: str
) -> None:
    bucket, etag, lm = obj
    call = getattr(s3, method)
    if expected == 200:
        out = call(Bucket=bucket, Key="c", **_args(case, etag, lm))
        assert out["ETag"] == etag
        if method == "get_object":
            assert out["Body"].read() == b"conditional"
        return
    with pytest.raises(ClientError) as e:
        call(Bucket=bucket, Key="c", **_args(case, etag, lm))
    assert _status(e) == expected
    headers = e.value.response["ResponseMetadata"]["HTTPHeaders"]
    if expected == 304:
        assert headers.get("etag") == etag
    if expected == 412 and method == "get_object":
        assert e.value.response["Error"]["Code"] == "PreconditionFailed"


def test_conditions_on_missing_key(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="nope", IfMatch='"x"')
    assert _status(e) == 404


def test_unquoted_and_weak_etags(s3: Any, obj: tuple[str, str, datetime.datetime]) -> None:
    bucket, etag, _ = obj
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag.strip('"'))["ETag"] == etag
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=f'"nope", {etag}')["ETag"] == etag
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=f"W/{etag}")
    assert _status(e) == 304


def test_range_with_condition(s3: Any, obj: tuple[str, str, datetime.datetime]) -> None:
    bucket, etag, _ = obj
    out = s3.get_object(Bucket=bucket, Key="c", IfMatch=etag, Range="bytes=0-3")
    assert out["Body"].read() == b"cond"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"zzz"', Range="bytes=0-3")
    assert _status(e) == 412


def test_put_if_none_match_star(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="once", Body=b"second", IfNoneMatch="*")
    assert (e.value.response["Error"]["Code"], _status(e)) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"first"
    s3.delete_object(Bucket=bucket, Key="once")
    s3.put_object(Bucket=bucket, Key="once", Body=b"third", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"third"


def test_put_if_match(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="v", Body=b"v1")["ETag"]
    new = s3.put_object(Bucket=bucket, Key="v", Body=b"v2", IfMatch=etag)["ETag"]
    assert new == f'"{hashlib.md5(b"v2").hexdigest()}"'
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="v", Body=b"v3", IfMatch=etag)  # stale etag
    assert (e.value.response["Error"]["Code"], _status(e)) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="v")["Body"].read() == b"v2"


def test_put_if_match_missing_key(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="absent", Body=b"x", IfMatch='"abc"')
    assert (e.value.response["Error"]["Code"], _status(e)) == ("NoSuchKey", 404)


def test_put_if_none_match_etag_not_implemented(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="x", Body=b"x", IfNoneMatch='"abc"')
    assert _status(e) == 501


def test_complete_multipart_if_none_match(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="mp", Body=b"exists")
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp")
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"p")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="mp",
            UploadId=up["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
            IfNoneMatch="*",
        )
    assert _status(e) == 412
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"exists"
