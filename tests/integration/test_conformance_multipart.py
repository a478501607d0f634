"""Multipart and copy behaviours that ceph/s3-tests (boto3 flavour) exercises and rs3gw once answered
differently from AWS S3.

Each test names the s3-tests cases whose ground it covers. The suite's own code is not used: these
are our re-statements, against a real ``rs3gw serve`` with real boto3 clients. Where s3-tests
expects RGW-only behaviour, AWS's documented behaviour is what is asserted.
"""

from __future__ import annotations

from typing import Any

from conftest import fresh_bucket


def test_list_multipart_uploads_reports_checksum_algorithm_and_type(s3: Any, bucket: str) -> None:
    """test_list_multipart_upload / test_multipart_checksum_*: AWS's MultipartUpload element (in
    ListMultipartUploads) carries the ChecksumAlgorithm and ChecksumType an upload was created with,
    as ListParts does; they used to be left out."""
    crc = s3.create_multipart_upload(Bucket=bucket, Key="crc", ChecksumAlgorithm="CRC32")["UploadId"]
    full = s3.create_multipart_upload(
        Bucket=bucket, Key="full", ChecksumAlgorithm="CRC32C", ChecksumType="FULL_OBJECT"
    )["UploadId"]
    plain = s3.create_multipart_upload(Bucket=bucket, Key="plain")["UploadId"]
    uploads = {u["UploadId"]: u for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]}
    assert (uploads[crc]["ChecksumAlgorithm"], uploads[crc]["ChecksumType"]) == ("CRC32", "COMPOSITE")
    assert (uploads[full]["ChecksumAlgorithm"], uploads[full]["ChecksumType"]) == ("CRC32C", "FULL_OBJECT")
    assert "ChecksumAlgorithm" not in uploads[plain] and "ChecksumType" not in uploads[plain]
    # The same values as ListParts gives for the upload.
    parts = s3.list_parts(Bucket=bucket, Key="crc", UploadId=crc)
    assert (parts["ChecksumAlgorithm"], parts["ChecksumType"]) == ("CRC32", "COMPOSITE")


def test_upload_part_copy_reports_null_source_version(s3: Any, bucket: str) -> None:
    """test_multipart_copy_versioned / test_object_copy_versioned_bucket: UploadPartCopy answers
    x-amz-copy-source-version-id whenever the source bucket is versioned, as CopyObject does, so a
    source written before versioning was enabled (the "null" version) is reported as "null"; the
    header used to be missing for it."""
    s3.put_object(Bucket=bucket, Key="src", Body=b"0123456789")  # the null version
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    uid = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    part = s3.upload_part_copy(
        Bucket=bucket,
        Key="dst",
        UploadId=uid,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "src"},
        CopySourceRange="bytes=2-5",
    )
    assert part["CopySourceVersionId"] == "null"
    copied = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "src"})
    assert copied["CopySourceVersionId"] == "null"  # CopyObject already did
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="dst",
        UploadId=uid,
        MultipartUpload={"Parts": [{"ETag": part["CopyPartResult"]["ETag"], "PartNumber": 1}]},
    )
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"2345"
    # A later, named version is reported by its id; a never-versioned source bucket gets no header.
    vid = s3.put_object(Bucket=bucket, Key="src", Body=b"abcdef")["VersionId"]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="dst2")["UploadId"]
    part = s3.upload_part_copy(
        Bucket=bucket, Key="dst2", UploadId=uid, PartNumber=1, CopySource={"Bucket": bucket, "Key": "src"}
    )
    assert part["CopySourceVersionId"] == vid
    with fresh_bucket(s3) as plain:
        s3.put_object(Bucket=plain, Key="src", Body=b"abc")
        part = s3.upload_part_copy(
            Bucket=bucket, Key="dst2", UploadId=uid, PartNumber=2, CopySource={"Bucket": plain, "Key": "src"}
        )
        assert "CopySourceVersionId" not in part


def test_copy_object_result_names_checksum_type(s3: Any, bucket: str) -> None:
    """test_object_copy_* / the checksum group: AWS's CopyObjectResult carries ChecksumType beside the
    copy's checksum (CopyPartResult has no such member); it used to be left out, so a client could
    not tell the copy's FULL_OBJECT checksum from a composite one."""
    s3.put_object(Bucket=bucket, Key="src", Body=b"hello", ChecksumAlgorithm="CRC32")
    res = s3.copy_object(
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}, ChecksumAlgorithm="SHA256"
    )["CopyObjectResult"]
    head = s3.head_object(Bucket=bucket, Key="dst", ChecksumMode="ENABLED")
    assert res["ChecksumType"] == head["ChecksumType"] == "FULL_OBJECT"
    assert res["ChecksumSHA256"] == head["ChecksumSHA256"]
    # Without x-amz-checksum-algorithm the source's algorithm is kept, and its type reported too.
    res = s3.copy_object(Bucket=bucket, Key="dst2", CopySource={"Bucket": bucket, "Key": "src"})[
        "CopyObjectResult"
    ]
    assert (res["ChecksumType"], "ChecksumCRC32" in res) == ("FULL_OBJECT", True)
