"""DeleteObjects through boto3: quiet and verbose modes, 1000 keys, per-key results, bad XML."""

from __future__ import annotations

import base64
import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError


def _keys(s3: Any, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_verbose(s3: Any, bucket: str) -> None:
    for k in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "gone"}]})
    # S3 reports keys that never existed as deleted too.
    assert sorted(d["Key"] for d in out["Deleted"]) == ["a", "b", "gone"]
    assert "Errors" not in out
    assert _keys(s3, bucket) == ["c"]


def test_quiet(s3: Any, bucket: str) -> None:
    for k in ("a", "b"):
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}], "Quiet": True})
    assert "Deleted" not in out
    assert "Errors" not in out
    assert _keys(s3, bucket) == []


def test_odd_keys(s3: Any, bucket: str) -> None:
    keys = ["with space", "amp&lt;", "<tag>", "ключ/東京", " leading", "trailing ", "a\"quote'"]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert sorted(d["Key"] for d in out["Deleted"]) == sorted(keys)
    assert _keys(s3, bucket) == []


def test_thousand_keys(s3: Any, bucket: str) -> None:
    keys = [f"k/{i:04d}" for i in range(1000)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b""), keys[:200]))
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert len(out["Deleted"]) == 1000
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_more_than_thousand(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"k{i}"} for i in range(1001)]})
    assert e.value.response["Error"]["Code"] == "MalformedXML"


def test_versioned_delete_markers(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    vid = s3.put_object(Bucket=bucket, Key="v", Body=b"x")["VersionId"]
    out = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "v"}]})
    d = out["Deleted"][0]
    assert d["DeleteMarker"] is True
    assert d["DeleteMarkerVersionId"]
    out2 = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "v", "VersionId": vid}]})
    assert out2["Deleted"][0]["VersionId"] == vid


def test_invalid_version_reported_per_key(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="ok", Body=b"x")
    out = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "ok"}, {"Key": "bad", "VersionId": "not-a-version!"}]}
    )
    assert [d["Key"] for d in out["Deleted"]] == ["ok"]
    assert [(e["Key"], e["Code"]) for e in out["Errors"]] == [("bad", "InvalidArgument")]


def _raw_body(body: bytes, with_md5: bool = True) -> Any:
    def hook(request: Any, **_: Any) -> None:
        request.data = body
        request.headers["Content-Length"] = str(len(body))
        for name in [h for h in request.headers if h.lower().startswith("x-amz-checksum-")]:
            del request.headers[name]
        if "x-amz-sdk-checksum-algorithm" in request.headers:
            del request.headers["x-amz-sdk-checksum-algorithm"]
        if "Content-MD5" in request.headers:
            del request.headers["Content-MD5"]
        if with_md5:
            request.headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()

    return hook


@pytest.mark.parametrize(
    "body",
    [
        b"<Delete><Object><Key>a</Key></Object>",
        b"not xml at all",
        b"<Delete></Delete>",
        b"<Wrong><Object><Key>a</Key></Object></Wrong>",
        b"<Delete><Object><VersionId>x</VersionId></Object></Delete>",
        b"<Delete><Quiet>maybe</Quiet><Object><Key>a</Key></Object></Delete>",
        b'<!DOCTYPE x [<!ENTITY e "a">]><Delete><Object><Key>&e;</Key></Object></Delete>',
    ],
)
def test_malformed_xml(s3: Any, bucket: str, body: bytes) -> None:
    s3.meta.events.register("before-sign.s3.DeleteObjects", _raw_body(body))
    with pytest.raises(ClientError) as e:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}]})
    assert (e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "MalformedXML",
        400,
    )


def test_missing_digest(s3: Any, bucket: str) -> None:
    body = b"<Delete><Object><Key>a</Key></Object></Delete>"
    s3.meta.events.register("before-sign.s3.DeleteObjects", _raw_body(body, with_md5=False))
    with pytest.raises(ClientError) as e:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}]})
    assert e.value.response["Error"]["Code"] == "InvalidRequest"


def test_wrong_digest(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="a", Body=b"x")
    body = b"<Delete><Object><Key>a</Key></Object></Delete>"

    def hook(request: Any, **_: Any) -> None:
        _raw_body(body, with_md5=False)(request)
        request.headers["Content-MD5"] = base64.b64encode(hashlib.md5(b"other").digest()).decode()

    s3.meta.events.register("before-sign.s3.DeleteObjects", hook)
    with pytest.raises(ClientError) as e:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}]})
    assert e.value.response["Error"]["Code"] == "BadDigest"
    assert _keys(s3, bucket) == ["a"]


def test_missing_bucket(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.delete_objects(Bucket=bucket + "-none", Delete={"Objects": [{"Key": "a"}]})
    assert e.value.response["Error"]["Code"] == "NoSuchBucket"
