"""Object Lock on the other write paths, through boto3: CopyObject and multipart uploads carry the
request's lock headers (never the copy source's), and the bucket's default retention applies."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from object_lock_helpers import ahead, err, lock_bucket, wait_until

from conftest import fresh_bucket

GOV_1_DAY = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}}


def _lock(resp: dict[str, Any]) -> tuple[str | None, datetime.datetime | None, str | None]:
    return (
        resp.get("ObjectLockMode"),
        resp.get("ObjectLockRetainUntilDate"),
        resp.get("ObjectLockLegalHoldStatus"),
    )


def test_copy_carries_request_headers_not_the_source_lock(s3: Any) -> None:
    with lock_bucket(s3) as b:
        src_until = ahead(3600).replace(microsecond=0)
        s3.put_object(
            Bucket=b,
            Key="src",
            Body=b"data",
            ObjectLockMode="GOVERNANCE",
            ObjectLockRetainUntilDate=src_until,
            ObjectLockLegalHoldStatus="ON",
        )
        s3.copy_object(Bucket=b, Key="plain", CopySource={"Bucket": b, "Key": "src"})
        assert _lock(s3.head_object(Bucket=b, Key="plain")) == (None, None, None)
        until = ahead(3).replace(microsecond=0) + datetime.timedelta(seconds=1)
        for directive in ("COPY", "REPLACE"):
            key = f"locked-{directive}"
            out = s3.copy_object(
                Bucket=b,
                Key=key,
                CopySource={"Bucket": b, "Key": "src"},
                MetadataDirective=directive,
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=until,
            )
            assert _lock(s3.head_object(Bucket=b, Key=key)) == ("COMPLIANCE", until, None)
            with pytest.raises(ClientError) as e:
                s3.delete_object(
                    Bucket=b, Key=key, VersionId=out["VersionId"], BypassGovernanceRetention=True
                )
            assert err(e) == ("AccessDenied", 403)
        wait_until(until)


def test_copy_into_lock_bucket_gets_default_retention(s3: Any) -> None:
    with fresh_bucket(s3) as plain, lock_bucket(s3) as b:
        s3.put_object(Bucket=plain, Key="src", Body=b"data")
        s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration=GOV_1_DAY)
        s3.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": plain, "Key": "src"})
        mode, until, hold = _lock(s3.head_object(Bucket=b, Key="dst"))
        assert mode == "GOVERNANCE" and hold is None and until is not None
        assert abs((until - datetime.datetime.now(datetime.UTC)).total_seconds() - 86400) < 60


def test_copy_with_lock_headers_into_plain_bucket(s3: Any) -> None:
    with lock_bucket(s3) as b, fresh_bucket(s3) as plain:
        s3.put_object(Bucket=b, Key="src", Body=b"data")
        with pytest.raises(ClientError) as e:
            s3.copy_object(
                Bucket=plain,
                Key="dst",
                CopySource={"Bucket": b, "Key": "src"},
                ObjectLockLegalHoldStatus="ON",
            )
        assert err(e) == ("InvalidRequest", 400)


def _multipart(s3: Any, b: str, key: str, **lock: Any) -> str:
    up = s3.create_multipart_upload(Bucket=b, Key=key, **lock)
    part = s3.upload_part(Bucket=b, Key=key, UploadId=up["UploadId"], PartNumber=1, Body=b"part")
    done = s3.complete_multipart_upload(
        Bucket=b,
        Key=key,
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    vid: str = done["VersionId"]
    return vid


def test_multipart_carries_lock_headers(s3: Any) -> None:
    with lock_bucket(s3) as b:
        until = ahead(3600).replace(microsecond=0)
        vid = _multipart(s3, b, "mp", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)
        assert _lock(s3.head_object(Bucket=b, Key="mp")) == ("GOVERNANCE", until, None)
        with pytest.raises(ClientError) as e:
            s3.delete_object(Bucket=b, Key="mp", VersionId=vid)
        assert err(e) == ("AccessDenied", 403)
        held = _multipart(s3, b, "held", ObjectLockLegalHoldStatus="ON")
        assert s3.get_object_legal_hold(Bucket=b, Key="held", VersionId=held)["LegalHold"]["Status"] == "ON"
        with pytest.raises(ClientError) as e:
            s3.delete_object(Bucket=b, Key="held", VersionId=held, BypassGovernanceRetention=True)
        assert err(e) == ("AccessDenied", 403)


def test_multipart_gets_default_retention(s3: Any) -> None:
    with lock_bucket(s3) as b:
        s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration=GOV_1_DAY)
        _multipart(s3, b, "mp")
        mode, until, _ = _lock(s3.head_object(Bucket=b, Key="mp"))
        assert mode == "GOVERNANCE" and until is not None


def test_multipart_lock_errors(s3: Any) -> None:
    with fresh_bucket(s3) as plain:
        with pytest.raises(ClientError) as e:
            s3.create_multipart_upload(Bucket=plain, Key="k", ObjectLockLegalHoldStatus="ON")
        assert err(e) == ("InvalidRequest", 400)
    with lock_bucket(s3) as b:
        with pytest.raises(ClientError) as e:
            s3.create_multipart_upload(Bucket=b, Key="k", ObjectLockMode="GOVERNANCE")
        assert err(e) == ("InvalidRequest", 400)
        assert "Uploads" not in s3.list_multipart_uploads(Bucket=b)
