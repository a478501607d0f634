"""Object and bucket tagging through boto3: the operations, x-amz-tagging on writes, and the limits."""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import urlparse

import pytest
from botocore.exceptions import ClientError

from conftest import Server


def _err(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return e.value.response["Error"]["Code"], int(e.value.response["ResponseMetadata"]["HTTPStatusCode"])


def _tagset(d: dict[str, str]) -> dict[str, Any]:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in d.items()]}


def _tags(s3: Any, bucket: str, key: str, **kw: Any) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=bucket, Key=key, **kw)["TagSet"]}


def test_object_tagging_roundtrip(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert _tags(s3, bucket, "k") == {}
    assert "TagCount" not in s3.head_object(Bucket=bucket, Key="k")
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=_tagset({"a": "1", "Ünï cødé": "välue @+-=._:/"}))
    assert _tags(s3, bucket, "k") == {"a": "1", "Ünï cødé": "välue @+-=._:/"}
    assert s3.get_object(Bucket=bucket, Key="k")["TagCount"] == 2
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "2"
    # Replacing is whole-set, not a merge.
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=_tagset({"b": ""}))
    assert _tags(s3, bucket, "k") == {"b": ""}
    resp = s3.delete_object_tagging(Bucket=bucket, Key="k")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _tags(s3, bucket, "k") == {}
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"  # data untouched


def test_tag_set_comes_back_in_key_order(s3: Any, bucket: str) -> None:
    """ceph/s3-tests (test_put_obj_with_tags) compares the TagSet with a list sorted by key."""
    s3.put_object(Bucket=bucket, Key="t", Body=b"x", Tagging="foo=bar&bar")
    got = s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]
    assert got == [{"Key": "bar", "Value": ""}, {"Key": "foo", "Value": "bar"}]
    s3.put_object_tagging(Bucket=bucket, Key="t", Tagging=_tagset({"z": "1", "a": "2", "m": "3"}))
    assert [t["Key"] for t in s3.get_object_tagging(Bucket=bucket, Key="t")["TagSet"]] == ["a", "m", "z"]
    s3.put_bucket_tagging(Bucket=bucket, Tagging=_tagset({"y": "1", "b": "2"}))
    assert [t["Key"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]] == ["b", "y"]


def test_tagging_missing_object(s3: Any, bucket: str) -> None:
    for call in (
        lambda: s3.get_object_tagging(Bucket=bucket, Key="nope"),
        lambda: s3.put_object_tagging(Bucket=bucket, Key="nope", Tagging=_tagset({"a": "b"})),
        lambda: s3.delete_object_tagging(Bucket=bucket, Key="nope"),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert _err(e) == ("NoSuchKey", 404)


def test_tagging_on_put_and_multipart(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="p", Body=b"x", Tagging="team=data&empty=&sp=a%20b%2Bc")
    assert _tags(s3, bucket, "p") == {"team": "data", "empty": "", "sp": "a b+c"}
    up = s3.create_multipart_upload(Bucket=bucket, Key="m", Tagging="mp=yes")
    part = s3.upload_part(Bucket=bucket, Key="m", UploadId=up["UploadId"], PartNumber=1, Body=b"y" * 10)
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="m",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert _tags(s3, bucket, "m") == {"mp": "yes"}
    assert (
        s3.head_object(Bucket=bucket, Key="m")["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"]
        == "1"
    )
    # Overwriting without a tagging header leaves the new object untagged.
    s3.put_object(Bucket=bucket, Key="p", Body=b"z")
    assert _tags(s3, bucket, "p") == {}


def test_copy_tagging_directive(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", Tagging="a=1&b=2")
    src = {"Bucket": bucket, "Key": "src"}
    s3.copy_object(Bucket=bucket, Key="copied", CopySource=src)
    assert _tags(s3, bucket, "copied") == {"a": "1", "b": "2"}
    # COPY ignores a new tag header; REPLACE uses it (or nothing).
    s3.copy_object(Bucket=bucket, Key="copy2", CopySource=src, Tagging="c=3", TaggingDirective="COPY")
    assert _tags(s3, bucket, "copy2") == {"a": "1", "b": "2"}
    s3.copy_object(Bucket=bucket, Key="repl", CopySource=src, Tagging="c=3", TaggingDirective="REPLACE")
    assert _tags(s3, bucket, "repl") == {"c": "3"}
    s3.copy_object(Bucket=bucket, Key="none", CopySource=src, TaggingDirective="REPLACE")
    assert _tags(s3, bucket, "none") == {}
    # Metadata REPLACE and tagging COPY are independent.
    s3.copy_object(
        Bucket=bucket, Key="meta", CopySource=src, MetadataDirective="REPLACE", Metadata={"m": "1"}
    )
    assert _tags(s3, bucket, "meta") == {"a": "1", "b": "2"}
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="bad", CopySource=src, TaggingDirective="MERGE")
    assert _err(e) == ("InvalidArgument", 400)


@pytest.mark.parametrize(
    "tags",
    [
        {"k" * 129: "v"},
        {"k": "v" * 257},
        {"aws:reserved": "v"},
        {"bad*char": "v"},
    ],
    ids=["long-key", "long-value", "aws-prefix", "bad-char"],
)
def test_object_tag_limits(s3: Any, bucket: str, tags: dict[str, str]) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=_tagset(tags))
    assert _err(e) == ("InvalidTag", 400)
    assert _tags(s3, bucket, "k") == {}


def test_eleven_object_tags_is_bad_request(s3: Any, bucket: str) -> None:
    """AWS: 400 BadRequest "Object tags cannot be greater than 10" (boto/boto3#1213), set unchanged."""
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=_tagset({f"k{i}": "v" for i in range(11)}))
    assert _err(e) == ("BadRequest", 400)
    assert e.value.response["Error"]["Message"] == "Object tags cannot be greater than 10"
    assert _tags(s3, bucket, "k") == {}


def test_object_tag_limits_at_the_edge(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    tags = {f"{i}" + "k" * 127: "é" * 256 for i in range(10)}
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=_tagset(tags))
    assert _tags(s3, bucket, "k") == tags


def test_duplicate_keys_and_bad_header(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    dup = {"TagSet": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]}
    with pytest.raises(ClientError) as e:
        s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=dup)
    assert _err(e) == ("InvalidTag", 400)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="h", Body=b"x", Tagging="a=1&a=2")
    assert _err(e) == ("InvalidArgument", 400)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="h", Body=b"x", Tagging="&".join(f"k{i}=v" for i in range(11)))
    assert _err(e) == ("BadRequest", 400)  # "Object tags cannot be greater than 10" (AWS)
    with pytest.raises(ClientError) as e:
        s3.create_multipart_upload(Bucket=bucket, Key="h", Tagging="aws:x=1")
    assert _err(e) == ("InvalidTag", 400)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="h")


def _raw(server: Server, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    """Unsigned-payload requests signed by botocore's signer, to send bodies boto3 would not build."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    from conftest import ACCESS_KEY, SECRET_KEY

    url = server.endpoint + path
    req = botocore.awsrequest.AWSRequest(method=method, url=url, data=body)
    botocore.auth.S3SigV4Auth(
        botocore.credentials.Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1"
    ).add_auth(req)
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname or "", u.port)
    conn.request(method, u.path + ("?" + u.query if u.query else ""), body=body, headers=dict(req.headers))
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, data


@pytest.mark.parametrize(
    "body",
    [
        b"not xml",
        b"<Tagging><Nope/></Tagging>",
        b"<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>",
        b"<Other><TagSet/></Other>",
    ],
)
def test_malformed_tagging_xml(server: Server, s3: Any, bucket: str, body: bytes) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    for path in (f"/{bucket}/k?tagging", f"/{bucket}?tagging"):
        status, data = _raw(server, "PUT", path, body)
        assert status == 400 and b"<Code>MalformedXML</Code>" in data, data


def test_empty_tag_key(server: Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    body = b"<Tagging><TagSet><Tag><Key></Key><Value>v</Value></Tag></TagSet></Tagging>"
    status, data = _raw(server, "PUT", f"/{bucket}/k?tagging", body)
    assert status == 400 and b"<Code>InvalidTag</Code>" in data, data


def test_tagging_by_version(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"1", Tagging="gen=1")["VersionId"]
    v2 = s3.put_object(Bucket=bucket, Key="k", Body=b"2")["VersionId"]
    assert _tags(s3, bucket, "k") == {}
    assert _tags(s3, bucket, "k", VersionId=v1) == {"gen": "1"}
    resp = s3.put_object_tagging(Bucket=bucket, Key="k", VersionId=v1, Tagging=_tagset({"gen": "old"}))
    assert resp["VersionId"] == v1
    got = s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=v1)
    assert got["VersionId"] == v1
    assert _tags(s3, bucket, "k", VersionId=v1) == {"gen": "old"}
    assert _tags(s3, bucket, "k", VersionId=v2) == {}
    assert s3.delete_object_tagging(Bucket=bucket, Key="k", VersionId=v1)["VersionId"] == v1
    assert _tags(s3, bucket, "k", VersionId=v1) == {}
    s3.delete_object(Bucket=bucket, Key="k")  # a delete marker has no tags to read
    with pytest.raises(ClientError) as e:
        s3.get_object_tagging(Bucket=bucket, Key="k")
    assert _err(e) == ("NoSuchKey", 404)
    assert _tags(s3, bucket, "k", VersionId=v2) == {}


def test_bucket_tagging(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert _err(e) == ("NoSuchTagSet", 404)
    tags = {f"key{i}": f"value {i}" for i in range(50)}
    s3.put_bucket_tagging(Bucket=bucket, Tagging=_tagset(tags))
    got = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert got == tags
    with pytest.raises(ClientError) as e:
        s3.put_bucket_tagging(Bucket=bucket, Tagging=_tagset({f"k{i}": "v" for i in range(51)}))
    assert _err(e) == ("BadRequest", 400)  # a count, not one bad tag (AWS)
    with pytest.raises(ClientError) as e:
        s3.put_bucket_tagging(Bucket=bucket, Tagging=_tagset({"aws:x": "v"}))
    assert _err(e) == ("InvalidTag", 400)
    assert len(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == 50
    assert s3.delete_bucket_tagging(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket=bucket)
    assert _err(e) == ("NoSuchTagSet", 404)


def test_bucket_tagging_missing_bucket(s3: Any) -> None:
    with pytest.raises(ClientError) as e:
        s3.get_bucket_tagging(Bucket="no-such-bucket-tagging")
    assert _err(e) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as e:
        s3.put_bucket_tagging(Bucket="no-such-bucket-tagging", Tagging=_tagset({"a": "b"}))
    assert _err(e) == ("NoSuchBucket", 404)
