"""Reproducers for defects found in the review of the 2026-12-02 changes (real server, raw HTTP)."""

from __future__ import annotations

import json
import urllib.parse
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from object_lock_helpers import signed

from conftest import USER2, Server, cleanup_bucket


def _put(s3: Any, bucket: str, key: str, body: bytes = b"hello") -> str:
    return str(s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]).strip('"')


@pytest.mark.parametrize(
    "headers",
    [
        {"x-amz-object-attributes": ",,"},
        {"x-amz-object-attributes": "ETag", "x-amz-max-parts": "-1"},
        {"x-amz-object-attributes": "ETag", "x-amz-max-parts": "abc"},
        {"x-amz-object-attributes": "ObjectParts", "x-amz-max-parts": "99999999999999999999999"},
        {"x-amz-object-attributes": "ObjectParts", "x-amz-part-number-marker": "1e3"},
        {"x-amz-object-attributes": "Bogus"},
    ],
)
def test_get_object_attributes_bad_headers_are_4xx(
    server: Server, s3: Any, bucket: str, headers: dict[str, str]
) -> None:
    _put(s3, bucket, "k")
    status, body = signed(server, "GET", f"/{bucket}/k?attributes", headers=headers)
    assert 400 <= status < 500, (status, body)


@pytest.mark.parametrize(
    "query",
    [
        "max-buckets=abc",
        "max-buckets=0",
        "max-buckets=10001",
        "max-buckets=-1",
        "continuation-token=%25%25",
        "continuation-token=a",
        "continuation-token=" + urllib.parse.quote("é"),
        "continuation-token=AAAA",
    ],
)
def test_list_buckets_bad_paging_is_4xx(server: Server, query: str) -> None:
    status, body = signed(server, "GET", f"/?{query}")
    assert status == 400, (status, body)


@pytest.mark.parametrize("value", ["", " ", '""', 'W/"x"', "*, abc"])
def test_conditional_delete_odd_if_match_is_not_500(server: Server, s3: Any, bucket: str, value: str) -> None:
    _put(s3, bucket, "k")
    status, body = signed(server, "DELETE", f"/{bucket}/k", headers={"If-Match": value})
    assert status < 500, (status, body)


def test_conditional_delete_never_removes_a_newer_object(server: Server, s3: Any, bucket: str) -> None:
    """DELETE If-Match: <old etag> racing a PUT of new bytes: a 204 must mean the delete went first,
    so the PUT's object survives; the check and the delete must be one step in the store."""
    import concurrent.futures

    from botocore.exceptions import ClientError

    c1, c2 = server.client(), server.client()
    lost = 0
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        for i in range(150):
            old = _put(s3, bucket, "k", b"old")

            def delete(old: str = old) -> bool:
                try:
                    c1.delete_object(Bucket=bucket, Key="k", IfMatch=old)
                    return True
                except ClientError:
                    return False

            put = pool.submit(c2.put_object, Bucket=bucket, Key="k", Body=f"new{i}".encode())
            deleted = pool.submit(delete)
            put.result()
            if deleted.result():
                try:
                    s3.head_object(Bucket=bucket, Key="k")
                except ClientError:
                    lost += 1
    assert lost == 0, f"{lost} newer objects deleted by a conditional delete naming the old ETag"


def test_racing_completes_all_succeed(server: Server, s3: Any, bucket: str) -> None:
    """Two CompleteMultipartUpload calls for one upload at once (a client retry racing the first):
    both answer success with the same ETag, as a sequential retry does."""
    import concurrent.futures

    for _ in range(10):
        up = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
        etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"x" * 100)["ETag"]
        parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
        clients = [server.client() for _ in range(3)]
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            futs = [
                pool.submit(
                    c.complete_multipart_upload, Bucket=bucket, Key="mp", UploadId=up, MultipartUpload=parts
                )
                for c in clients
            ]
            etags = {f.result()["ETag"] for f in futs}
        assert len(etags) == 1


def test_conditional_delete_by_etag_also_needs_get_object(server: Server, s3: Any) -> None:
    """AWS: a delete conditional on a specific ETag needs s3:DeleteObject and s3:GetObject (else a
    delete-only principal could probe ETags); ``If-Match: *`` needs only s3:DeleteObject."""
    bucket = f"cdperm-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    other = server.client(USER2[1], USER2[2])
    try:
        etag = s3.put_object(Bucket=bucket, Key="k", Body=b"v1")["ETag"]
        s3.put_object(Bucket=bucket, Key="star", Body=b"v1")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": [f"arn:aws:iam::000000000000:user/{USER2[0]}"]},
                    "Action": "s3:DeleteObject",
                    "Resource": f"arn:aws:s3:::{bucket}/*",
                }
            ],
        }
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        for if_match in (etag, '"0123456789abcdef0123456789abcdef"'):
            with pytest.raises(ClientError) as exc:
                other.delete_object(Bucket=bucket, Key="k", IfMatch=if_match)
            assert exc.value.response["Error"]["Code"] == "AccessDenied"
        res = other.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k", "ETag": etag}]})
        assert [e["Code"] for e in res.get("Errors", [])] == ["AccessDenied"]
        assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v1"
        other.delete_object(Bucket=bucket, Key="star", IfMatch="*")
        assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="star")
        policy["Statement"][0]["Action"] = ["s3:DeleteObject", "s3:GetObject"]
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        other.delete_object(Bucket=bucket, Key="k", IfMatch=etag)
        assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="k")
    finally:
        cleanup_bucket(s3, bucket)
