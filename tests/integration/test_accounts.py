"""Two accounts: owners (canonical id, display name) stable across restarts, buckets isolated."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import USER2, Server, start_server


@pytest.fixture
def s3b(server: Server) -> Any:
    return server.client(USER2[1], USER2[2])


@pytest.fixture
def other_bucket(s3b: Any) -> Iterator[str]:
    """A bucket of the second account holding one object."""
    name = f"second-{uuid.uuid4().hex[:12]}"
    s3b.create_bucket(Bucket=name)
    s3b.put_object(Bucket=name, Key="k", Body=b"secret")
    yield name
    s3b.delete_object(Bucket=name, Key="k")
    s3b.delete_bucket(Bucket=name)


def test_owner_ids_are_canonical(s3: Any, s3b: Any) -> None:
    a, b = s3.list_buckets()["Owner"], s3b.list_buckets()["Owner"]
    assert b == {"ID": hashlib.sha256(b"rs3gw-account:second").hexdigest(), "DisplayName": "second"}
    assert a["ID"] != b["ID"] and len(a["ID"]) == 64 and a["DisplayName"]


def test_buckets_are_invisible_to_the_other_account(
    s3: Any, bucket: str, s3b: Any, other_bucket: str
) -> None:
    mine = [x["Name"] for x in s3.list_buckets()["Buckets"]]
    theirs = [x["Name"] for x in s3b.list_buckets()["Buckets"]]
    assert bucket in mine and other_bucket not in mine
    assert other_bucket in theirs and bucket not in theirs


def test_listings_name_the_owner(s3b: Any, other_bucket: str) -> None:
    owner = s3b.list_buckets()["Owner"]
    assert s3b.list_objects(Bucket=other_bucket)["Contents"][0]["Owner"] == owner
    assert s3b.list_objects_v2(Bucket=other_bucket, FetchOwner=True)["Contents"][0]["Owner"] == owner
    assert s3b.list_object_versions(Bucket=other_bucket)["Versions"][0]["Owner"] == owner


def _denied(call: Callable[[], Any]) -> None:
    with pytest.raises(ClientError) as exc:
        call()
    err = exc.value.response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert err["Error"]["Code"] in ("AccessDenied", "403")  # HEAD answers carry no body


def test_other_account_is_denied(s3: Any, bucket: str, other_bucket: str) -> None:
    b = other_bucket
    _denied(lambda: s3.get_object(Bucket=b, Key="k"))
    _denied(lambda: s3.head_object(Bucket=b, Key="k"))
    _denied(lambda: s3.put_object(Bucket=b, Key="new", Body=b"x"))
    _denied(lambda: s3.list_objects_v2(Bucket=b))
    _denied(lambda: s3.list_objects(Bucket=b))
    _denied(lambda: s3.list_object_versions(Bucket=b))
    _denied(lambda: s3.list_multipart_uploads(Bucket=b))
    _denied(lambda: s3.create_multipart_upload(Bucket=b, Key="m"))
    _denied(lambda: s3.delete_object(Bucket=b, Key="k"))
    _denied(lambda: s3.delete_bucket(Bucket=b))
    _denied(lambda: s3.head_bucket(Bucket=b))
    up = s3.create_multipart_upload(Bucket=bucket, Key="m")["UploadId"]
    _denied(
        lambda: s3.upload_part_copy(
            Bucket=bucket, Key="m", UploadId=up, PartNumber=1, CopySource={"Bucket": b, "Key": "k"}
        )
    )
    s3.abort_multipart_upload(Bucket=bucket, Key="m", UploadId=up)
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket=b)
    assert exc.value.response["Error"]["Code"] == "BucketAlreadyExists"


def test_owners_stable_across_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    seen: list[tuple[Any, ...]] = []
    for _ in range(2):
        srv = start_server(data, "--no-fsync")
        try:
            a, b = srv.client(), srv.client(USER2[1], USER2[2])
            if not seen:
                a.create_bucket(Bucket="restart-a")
                a.put_object(Bucket="restart-a", Key="k", Body=b"1")
                b.create_bucket(Bucket="restart-b")
            seen.append(
                (
                    a.list_buckets()["Owner"],
                    b.list_buckets()["Owner"],
                    a.list_objects(Bucket="restart-a")["Contents"][0]["Owner"],
                    a.list_object_versions(Bucket="restart-a")["Versions"][0]["Owner"],
                    [x["Name"] for x in a.list_buckets()["Buckets"]],
                    [x["Name"] for x in b.list_buckets()["Buckets"]],
                )
            )
        finally:
            srv.stop()
    assert seen[0] == seen[1]
    assert (
        seen[0][0] == seen[0][2] == seen[0][3] and seen[0][4] == ["restart-a"] and seen[0][5] == ["restart-b"]
    )
