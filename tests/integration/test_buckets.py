"""ListBuckets, CreateBucket, HeadBucket, DeleteBucket and GetBucketLocation through boto3."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import USER2, Server, cleanup_bucket


def _code(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def _name() -> str:
    return f"bk-{uuid.uuid4().hex[:12]}"


def test_create_list_head_delete(s3: Any) -> None:
    name = _name()
    s3.create_bucket(Bucket=name)
    try:
        names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
        assert name in names
        listed = next(b for b in s3.list_buckets()["Buckets"] if b["Name"] == name)
        assert listed["CreationDate"].year >= 2024
        head = s3.head_bucket(Bucket=name)
        assert head["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        s3.delete_bucket(Bucket=name)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_list_buckets_owner(s3: Any, bucket: str) -> None:
    out = s3.list_buckets()
    assert out["Owner"]["ID"]
    assert out["Owner"]["DisplayName"]


@pytest.mark.parametrize(
    "name",
    [
        "UpperCase",
        "ab",
        "a" * 64,
        "192.168.5.4",
        "bad_underscore",
        "-leadingdash",
        "trailingdash-",
        "double..dot",
        "dot.-dash",
        "xn--punycode",
        "name-s3alias",
    ],
)
def test_invalid_bucket_names(s3: Any, name: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name)
    assert _code(e) == ("InvalidBucketName", 400)


def test_valid_edge_names(s3: Any) -> None:
    for name in ("abc" + uuid.uuid4().hex[:0], "a" * 63, f"x.y-{uuid.uuid4().hex[:8]}"):
        try:
            s3.create_bucket(Bucket=name)
        except ClientError as err:  # a previous run may have left it, but it must be ours
            assert err.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
        s3.head_bucket(Bucket=name)
        s3.delete_bucket(Bucket=name)


def test_recreate_owned(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=bucket)
    assert _code(e) == ("BucketAlreadyOwnedByYou", 409)


def test_create_taken_by_other_account(server: Server, bucket: str) -> None:
    other = server.client(USER2[1], USER2[2])
    with pytest.raises(ClientError) as e:
        other.create_bucket(Bucket=bucket)
    assert _code(e) == ("BucketAlreadyExists", 409)


def test_create_with_location_constraint(s3: Any) -> None:
    name = _name()
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    assert _code(e)[1] == 400
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=name)


def test_create_with_us_east_1_constraint_is_invalid(s3: Any) -> None:
    """AWS refuses LocationConstraint=us-east-1 even in us-east-1: the classic region is the
    absence of a constraint (tools such as velero and minio-py omit it for that reason)."""
    name = _name()
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-east-1"})
    assert _code(e) == ("InvalidLocationConstraint", 400)
    assert e.value.response["Error"].get("LocationConstraint") == "us-east-1"
    s3.create_bucket(Bucket=name)  # without the constraint: created in us-east-1
    assert s3.get_bucket_location(Bucket=name).get("LocationConstraint") in (None, "")


def test_create_malformed_body(server: Server) -> None:
    s3 = server.client()
    name = _name()

    def body(request: Any, **_: Any) -> None:
        request.data = b"<CreateBucketConfiguration><LocationConstraint>"
        request.headers["Content-Length"] = str(len(request.data))

    s3.meta.events.register("before-sign.s3.CreateBucket", body)
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name)
    assert _code(e) == ("MalformedXML", 400)


def test_head_missing(s3: Any) -> None:
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=_name())
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_delete_missing(s3: Any) -> None:
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=_name())
    assert _code(e) == ("NoSuchBucket", 404)


def test_delete_not_empty(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=bucket)
    assert _code(e) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket=bucket, Key="k")
    s3.delete_bucket(Bucket=bucket)
    with pytest.raises(ClientError) as e2:
        s3.head_bucket(Bucket=bucket)
    assert e2.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_delete_with_pending_upload(s3: Any, bucket: str) -> None:
    s3.create_multipart_upload(Bucket=bucket, Key="mp")
    s3.delete_bucket(Bucket=bucket)
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket=bucket)


def test_get_bucket_location(s3: Any, bucket: str) -> None:
    out = s3.get_bucket_location(Bucket=bucket)
    assert out.get("LocationConstraint") in (None, "")


def test_get_bucket_location_missing(s3: Any) -> None:
    with pytest.raises(ClientError) as e:
        s3.get_bucket_location(Bucket=_name())
    assert _code(e) == ("NoSuchBucket", 404)


def test_owner_isolation_list(server: Server, s3: Any, bucket: str) -> None:
    other = server.client(USER2[1], USER2[2])
    assert bucket not in [b["Name"] for b in other.list_buckets()["Buckets"]]
    name = _name()
    other.create_bucket(Bucket=name)
    try:
        assert name in [b["Name"] for b in other.list_buckets()["Buckets"]]
        assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    finally:
        cleanup_bucket(other, name)


def test_owner_isolation_access(server: Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="secret", Body=b"mine")
    other = server.client(USER2[1], USER2[2])
    calls = [
        lambda: other.get_object(Bucket=bucket, Key="secret"),
        lambda: other.put_object(Bucket=bucket, Key="intruder", Body=b"x"),
        lambda: other.list_objects(Bucket=bucket),
        lambda: other.list_objects_v2(Bucket=bucket),
        lambda: other.delete_object(Bucket=bucket, Key="secret"),
        lambda: other.delete_bucket(Bucket=bucket),
        lambda: other.copy_object(Bucket=bucket, Key="c", CopySource={"Bucket": bucket, "Key": "secret"}),
    ]
    for call in calls:
        with pytest.raises(ClientError) as e:
            call()
        assert _code(e) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as e2:
        other.head_bucket(Bucket=bucket)
    assert e2.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert s3.get_object(Bucket=bucket, Key="secret")["Body"].read() == b"mine"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["secret"]


def test_copy_from_other_accounts_bucket_denied(server: Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="secret", Body=b"mine")
    other = server.client(USER2[1], USER2[2])
    name = _name()
    other.create_bucket(Bucket=name)
    try:
        with pytest.raises(ClientError) as e:
            other.copy_object(Bucket=name, Key="stolen", CopySource={"Bucket": bucket, "Key": "secret"})
        assert _code(e) == ("AccessDenied", 403)
    finally:
        cleanup_bucket(other, name)
