"""Storage classes through boto3: accepted on PUT, COPY and multipart, reported by HEAD/GET and
every listing (x-amz-storage-class omitted for STANDARD, as S3 does), others → InvalidStorageClass."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

CLASSES = [
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
]


def _err(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return e.value.response["Error"]["Code"], int(e.value.response["ResponseMetadata"]["HTTPStatusCode"])


def test_put_head_get_list(s3: Any, bucket: str) -> None:
    for sc in CLASSES:
        s3.put_object(Bucket=bucket, Key=f"k-{sc}", Body=sc.encode(), StorageClass=sc)
    for sc in CLASSES:
        head = s3.head_object(Bucket=bucket, Key=f"k-{sc}")
        if sc in ("GLACIER", "DEEP_ARCHIVE"):  # archived: refused until restored (test_archive_restore)
            with pytest.raises(ClientError) as e:
                s3.get_object(Bucket=bucket, Key=f"k-{sc}")
            assert _err(e) == ("InvalidObjectState", 403)
            assert head["StorageClass"] == sc
            continue
        get = s3.get_object(Bucket=bucket, Key=f"k-{sc}")
        assert get["Body"].read() == sc.encode()
        if sc == "STANDARD":
            assert "x-amz-storage-class" not in head["ResponseMetadata"]["HTTPHeaders"]
            assert "StorageClass" not in get
        else:
            assert head["StorageClass"] == sc and get["StorageClass"] == sc
    expected = {f"k-{sc}": sc for sc in CLASSES}
    v2 = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    v1 = {o["Key"]: o["StorageClass"] for o in s3.list_objects(Bucket=bucket)["Contents"]}
    versions = {o["Key"]: o["StorageClass"] for o in s3.list_object_versions(Bucket=bucket)["Versions"]}
    assert v2 == v1 == versions == expected


def test_default_is_standard(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3.list_objects_v2(Bucket=bucket)["Contents"][0]["StorageClass"] == "STANDARD"


@pytest.mark.parametrize("sc", ["GOLD", "standard", "", "OUTPOSTS", "EXPRESS_ONEZONE"])
def test_invalid_class_everywhere(s3: Any, bucket: str, sc: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"x")
    calls = [
        lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x", StorageClass=sc),
        lambda: s3.copy_object(
            Bucket=bucket, Key="k", CopySource={"Bucket": bucket, "Key": "src"}, StorageClass=sc
        ),
        lambda: s3.create_multipart_upload(Bucket=bucket, Key="k", StorageClass=sc),
    ]
    for call in calls:
        with pytest.raises(ClientError) as e:
            call()
        assert _err(e) == ("InvalidStorageClass", 400)
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["src"]
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_copy_changes_class(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"data", StorageClass="STANDARD_IA", Metadata={"m": "1"})
    src = {"Bucket": bucket, "Key": "k"}
    # In-place copy changing only the class is legal and keeps data and metadata.
    s3.copy_object(Bucket=bucket, Key="k", CopySource=src, StorageClass="GLACIER_IR")
    head = s3.head_object(Bucket=bucket, Key="k")
    assert head["StorageClass"] == "GLACIER_IR" and head["Metadata"] == {"m": "1"}
    # Same class in place: illegal self-copy.
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="k", CopySource=src, StorageClass="GLACIER_IR")
    assert _err(e) == ("InvalidRequest", 400)
    # Without a class header a copy lands in STANDARD, as in S3.
    s3.copy_object(Bucket=bucket, Key="c", CopySource=src)
    assert "StorageClass" not in s3.head_object(Bucket=bucket, Key="c")
    s3.copy_object(
        Bucket=bucket, Key="d", CopySource=src, StorageClass="ONEZONE_IA", MetadataDirective="REPLACE"
    )
    assert s3.head_object(Bucket=bucket, Key="d")["StorageClass"] == "ONEZONE_IA"
    assert s3.get_object(Bucket=bucket, Key="d")["Body"].read() == b"data"


def test_multipart_class(s3: Any, bucket: str) -> None:
    up = s3.create_multipart_upload(Bucket=bucket, Key="m", StorageClass="DEEP_ARCHIVE")
    uid = up["UploadId"]
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [u["StorageClass"] for u in uploads] == ["DEEP_ARCHIVE"]
    part = s3.upload_part(Bucket=bucket, Key="m", UploadId=uid, PartNumber=1, Body=b"p" * 100)
    assert s3.list_parts(Bucket=bucket, Key="m", UploadId=uid)["StorageClass"] == "DEEP_ARCHIVE"
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="m",
        UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert s3.head_object(Bucket=bucket, Key="m")["StorageClass"] == "DEEP_ARCHIVE"
    assert s3.list_objects_v2(Bucket=bucket)["Contents"][0]["StorageClass"] == "DEEP_ARCHIVE"


def test_versions_keep_their_class(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=bucket, Key="k", Body=b"1", StorageClass="GLACIER_IR")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"2", StorageClass="INTELLIGENT_TIERING")
    got = {v["VersionId"]: v["StorageClass"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]}
    assert got[v1] == "GLACIER_IR"
    assert sorted(got.values()) == ["GLACIER_IR", "INTELLIGENT_TIERING"]
    assert s3.head_object(Bucket=bucket, Key="k", VersionId=v1)["StorageClass"] == "GLACIER_IR"
