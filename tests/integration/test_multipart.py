"""Multipart uploads through boto3: parts, completion rules, listings, copies, checksums, transfers."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest
from awscrt import checksums as crt
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

MIB = 1024 * 1024
P1 = os.urandom(5 * MIB)
P2 = os.urandom(5 * MIB + 17)
P3 = b"tail-bytes"


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def mp_etag(*parts: bytes) -> str:
    return '"' + md5(b"".join(bytes.fromhex(md5(p)) for p in parts)) + f'-{len(parts)}"'


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def upload(
    s3: Any, bucket: str, key: str, parts: list[bytes], **create: Any
) -> tuple[str, list[dict[str, Any]]]:
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    done = []
    for n, data in enumerate(parts, 1):
        res = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=data)
        done.append({"PartNumber": n, "ETag": res["ETag"]})
    return uid, done


def test_complete_and_read_parts(s3: Any, bucket: str) -> None:
    uid, parts = upload(s3, bucket, "obj", [P1, P2, P3], ContentType="text/x-mp", Metadata={"m": "v"})
    res = s3.complete_multipart_upload(
        Bucket=bucket, Key="obj", UploadId=uid, MultipartUpload={"Parts": parts}
    )
    assert res["ETag"] == mp_etag(P1, P2, P3) and res["Key"] == "obj" and res["Bucket"] == bucket
    assert "VersionId" not in res
    got = s3.get_object(Bucket=bucket, Key="obj")
    assert got["Body"].read() == P1 + P2 + P3 and got["ETag"] == res["ETag"]
    assert got["ContentType"] == "text/x-mp" and got["Metadata"] == {"m": "v"}
    part = s3.get_object(Bucket=bucket, Key="obj", PartNumber=2)
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206 and part["PartsCount"] == 3
    assert part["ContentRange"] == f"bytes {len(P1)}-{len(P1) + len(P2) - 1}/{len(P1 + P2 + P3)}"
    assert part["Body"].read() == P2 and part["ContentLength"] == len(P2)
    head = s3.head_object(Bucket=bucket, Key="obj", PartNumber=3)
    assert head["PartsCount"] == 3 and head["ContentLength"] == len(P3)
    # AWS documents x-amz-mp-parts-count for partNumber requests only (found by the s3-tests pass).
    assert "PartsCount" not in s3.head_object(Bucket=bucket, Key="obj")
    assert "PartsCount" not in s3.get_object(Bucket=bucket, Key="obj", Range="bytes=0-0")
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="obj", PartNumber=4)
    assert code(exc) == "InvalidPartNumber"
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket=bucket, Key="obj", UploadId=uid)
    assert code(exc) == "NoSuchUpload"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads") is None


def test_reupload_replaces_part(s3: Any, bucket: str) -> None:
    uid, parts = upload(s3, bucket, "r", [P1, b"old"])
    new = s3.upload_part(Bucket=bucket, Key="r", UploadId=uid, PartNumber=2, Body=b"new!")
    listed = s3.list_parts(Bucket=bucket, Key="r", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed] == [
        (1, parts[0]["ETag"], len(P1)),
        (2, new["ETag"], 4),
    ]
    with pytest.raises(ClientError) as exc:  # the replaced part's ETag is no longer valid
        s3.complete_multipart_upload(Bucket=bucket, Key="r", UploadId=uid, MultipartUpload={"Parts": parts})
    assert code(exc) == "InvalidPart"
    parts[1]["ETag"] = new["ETag"]
    res = s3.complete_multipart_upload(Bucket=bucket, Key="r", UploadId=uid, MultipartUpload={"Parts": parts})
    assert res["ETag"] == mp_etag(P1, b"new!")
    assert s3.get_object(Bucket=bucket, Key="r")["Body"].read() == P1 + b"new!"


def test_complete_errors(s3: Any, bucket: str) -> None:
    uid, parts = upload(s3, bucket, "e", [b"small", P1, b"x"])

    def complete(ps: list[dict[str, Any]], **kw: Any) -> str:
        with pytest.raises(ClientError) as exc:
            s3.complete_multipart_upload(
                Bucket=bucket, Key="e", UploadId=kw.pop("uid", uid), MultipartUpload={"Parts": ps}, **kw
            )
        return code(exc)

    assert complete([{"PartNumber": 9, "ETag": parts[0]["ETag"]}]) == "InvalidPart"
    assert complete([{"PartNumber": 1, "ETag": '"' + "0" * 32 + '"'}]) == "InvalidPart"
    assert complete([parts[1], parts[0]]) == "InvalidPartOrder"
    assert complete([parts[1], parts[1]]) == "InvalidPartOrder"
    assert complete(parts) == "EntityTooSmall"  # part 1 is small and not last
    assert complete([]) == "MalformedXML"
    assert complete(parts[1:], uid="nosuchupload") == "NoSuchUpload"
    s3.put_object(Bucket=bucket, Key="e", Body=b"exists")
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="e", UploadId=uid, MultipartUpload={"Parts": parts[1:]}, IfNoneMatch="*"
        )
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert s3.get_object(Bucket=bucket, Key="e")["Body"].read() == b"exists"
    # the upload survives failed completions; the last part alone may be small
    res = s3.complete_multipart_upload(
        Bucket=bucket, Key="e", UploadId=uid, MultipartUpload={"Parts": parts[1:]}
    )
    assert res["ETag"] == mp_etag(P1, b"x")


def test_abort(s3: Any, bucket: str) -> None:
    uid, parts = upload(s3, bucket, "a", [b"1"])
    s3.abort_multipart_upload(Bucket=bucket, Key="a", UploadId=uid)
    for call in (
        lambda: s3.abort_multipart_upload(Bucket=bucket, Key="a", UploadId=uid),
        lambda: s3.list_parts(Bucket=bucket, Key="a", UploadId=uid),
        lambda: s3.upload_part(Bucket=bucket, Key="a", UploadId=uid, PartNumber=2, Body=b"2"),
        lambda: s3.complete_multipart_upload(
            Bucket=bucket, Key="a", UploadId=uid, MultipartUpload={"Parts": parts}
        ),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert code(exc) == "NoSuchUpload" and exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="a")
    assert code(exc) == "404"


def test_upload_id_bound_to_key_and_part_numbers(s3: Any, bucket: str) -> None:
    uid = s3.create_multipart_upload(Bucket=bucket, Key="k1")["UploadId"]
    with pytest.raises(ClientError) as exc:
        s3.upload_part(Bucket=bucket, Key="k2", UploadId=uid, PartNumber=1, Body=b"x")
    assert code(exc) == "NoSuchUpload"
    for n in (0, 10001):
        with pytest.raises(ClientError) as exc:
            s3.upload_part(Bucket=bucket, Key="k1", UploadId=uid, PartNumber=n, Body=b"x")
        assert code(exc) == "InvalidArgument"


def test_list_parts_pagination(s3: Any, bucket: str) -> None:
    uid, parts = upload(
        s3, bucket, "lp", [bytes([i]) * (i + 1) for i in range(7)], StorageClass="STANDARD_IA"
    )
    owner = s3.list_buckets()["Owner"]
    res = s3.list_parts(Bucket=bucket, Key="lp", UploadId=uid, MaxParts=3)
    assert [p["PartNumber"] for p in res["Parts"]] == [1, 2, 3]
    assert res["IsTruncated"] is True and res["NextPartNumberMarker"] == 3 and res["MaxParts"] == 3
    assert res["Owner"] == owner and res["Initiator"] == owner and res["StorageClass"] == "STANDARD_IA"
    res = s3.list_parts(Bucket=bucket, Key="lp", UploadId=uid, MaxParts=3, PartNumberMarker=3)
    assert [p["PartNumber"] for p in res["Parts"]] == [4, 5, 6] and res["PartNumberMarker"] == 3
    res = s3.list_parts(Bucket=bucket, Key="lp", UploadId=uid, PartNumberMarker=6)
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in res["Parts"]] == [(7, 7, parts[6]["ETag"])]
    assert res["IsTruncated"] is False
    pages = list(
        s3.get_paginator("list_parts").paginate(
            Bucket=bucket, Key="lp", UploadId=uid, PaginationConfig={"PageSize": 2}
        )
    )
    assert [p["PartNumber"] for page in pages for p in page["Parts"]] == list(range(1, 8)) and len(pages) == 4


def test_list_multipart_uploads(s3: Any, bucket: str) -> None:
    owner = s3.list_buckets()["Owner"]
    made: list[tuple[str, str]] = []
    for key in ["a/1", "a/2", "b", "b", "b", "c/x/y", "d"]:
        made.append((key, s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]))
    res = s3.list_multipart_uploads(Bucket=bucket)
    assert [(u["Key"], u["UploadId"]) for u in res["Uploads"]] == made  # same key: oldest first
    assert res["Uploads"][0]["Owner"] == owner and res["Uploads"][0]["Initiator"] == owner
    assert res["IsTruncated"] is False
    res = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["a/", "c/"]
    assert [u["Key"] for u in res["Uploads"]] == ["b", "b", "b", "d"]
    res = s3.list_multipart_uploads(Bucket=bucket, Prefix="c/", Delimiter="/")
    assert [p["Prefix"] for p in res["CommonPrefixes"]] == ["c/x/"] and "Uploads" not in res
    res = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=3)
    assert res["IsTruncated"] is True and res["NextKeyMarker"] == "b"
    assert res["NextUploadIdMarker"] == made[2][1]
    res = s3.list_multipart_uploads(
        Bucket=bucket, MaxUploads=3, KeyMarker=res["NextKeyMarker"], UploadIdMarker=res["NextUploadIdMarker"]
    )
    assert [(u["Key"], u["UploadId"]) for u in res["Uploads"]] == made[3:6]
    res = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="b")  # without an id: keys after "b"
    assert [u["Key"] for u in res["Uploads"]] == ["c/x/y", "d"]
    seen = []
    for page in s3.get_paginator("list_multipart_uploads").paginate(
        Bucket=bucket, PaginationConfig={"PageSize": 2}
    ):
        seen += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
    assert seen == made


def test_upload_part_copy(s3: Any, bucket: str) -> None:
    src = os.urandom(6 * MIB)
    s3.put_object(Bucket=bucket, Key="src", Body=src)
    uid = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    whole = s3.upload_part_copy(
        Bucket=bucket, Key="dst", UploadId=uid, PartNumber=1, CopySource={"Bucket": bucket, "Key": "src"}
    )["CopyPartResult"]
    ranged = s3.upload_part_copy(
        Bucket=bucket,
        Key="dst",
        UploadId=uid,
        PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "src"},
        CopySourceRange="bytes=10-1033",
    )["CopyPartResult"]
    assert whole["ETag"] == f'"{md5(src)}"' and ranged["ETag"] == f'"{md5(src[10:1034])}"'
    for bad, want in [
        ("bytes=0-", "InvalidArgument"),
        ("bytes=5-2", "InvalidArgument"),
        ("items=0-1", "InvalidArgument"),
        ("bytes=0-99999999", "InvalidRange"),
        (f"bytes={len(src)}-{len(src)}", "InvalidRange"),
    ]:
        with pytest.raises(ClientError) as exc:
            s3.upload_part_copy(
                Bucket=bucket,
                Key="dst",
                UploadId=uid,
                PartNumber=3,
                CopySource={"Bucket": bucket, "Key": "src"},
                CopySourceRange=bad,
            )
        assert code(exc) == want, bad
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(
            Bucket=bucket, Key="dst", UploadId=uid, PartNumber=3, CopySource={"Bucket": bucket, "Key": "nope"}
        )
    assert code(exc) == "NoSuchKey"
    parts = [{"PartNumber": 1, "ETag": whole["ETag"]}, {"PartNumber": 2, "ETag": ranged["ETag"]}]
    s3.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=uid, MultipartUpload={"Parts": parts})
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == src + src[10:1034]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _crc32(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "big")


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _crc64(data: bytes) -> bytes:
    return int(crt.crc64nvme(data)).to_bytes(8, "big")


@pytest.mark.parametrize(
    ("alg", "fn", "ctype"),
    [("CRC32", _crc32, "COMPOSITE"), ("SHA256", _sha256, "COMPOSITE"), ("CRC64NVME", _crc64, "FULL_OBJECT")],
)
def test_checksums(s3: Any, bucket: str, alg: str, fn: Any, ctype: str) -> None:
    key = f"ck-{alg}"
    created = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=alg)
    assert created["ChecksumAlgorithm"] == alg and created.get("ChecksumType", ctype) == ctype
    uid = created["UploadId"]
    parts = []
    for n, data in enumerate([P1, P3], 1):
        res = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=data, ChecksumAlgorithm=alg
        )
        assert res[f"Checksum{alg}"] == _b64(fn(data))
        parts.append({"PartNumber": n, "ETag": res["ETag"], f"Checksum{alg}": res[f"Checksum{alg}"]})
    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)
    assert [p[f"Checksum{alg}"] for p in listed["Parts"]] == [p[f"Checksum{alg}"] for p in parts]
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": parts}
    )
    # AWS: COMPOSITE is the checksum of the concatenated part checksums plus "-N";
    # FULL_OBJECT is the checksum of the whole object's bytes.
    want = _b64(fn(fn(P1) + fn(P3))) + "-2" if ctype == "COMPOSITE" else _b64(fn(P1 + P3))
    assert done[f"Checksum{alg}"] == want and done["ChecksumType"] == ctype
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head[f"Checksum{alg}"] == want and head["ChecksumType"] == ctype
    got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")  # boto3 validates FULL_OBJECT
    assert got["Body"].read() == P1 + P3


def test_checksum_mismatch_on_complete(s3: Any, bucket: str) -> None:
    uid = s3.create_multipart_upload(Bucket=bucket, Key="cm", ChecksumAlgorithm="CRC32")["UploadId"]
    res = s3.upload_part(
        Bucket=bucket, Key="cm", UploadId=uid, PartNumber=1, Body=b"x", ChecksumAlgorithm="CRC32"
    )
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="cm",
            UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": res["ETag"], "ChecksumCRC32": "AAAAAA=="}]},
        )
    assert code(exc) in ("InvalidPart", "BadDigest")


def test_transfer_manager_round_trip(s3: Any, bucket: str, tmp_path: Path) -> None:
    """100 MiB through upload_file/download_file with 8 MiB parts (a few seconds on loopback)."""
    src = tmp_path / "src.bin"
    data = os.urandom(100 * MIB + 12345)
    src.write_bytes(data)
    cfg = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=4)
    s3.upload_file(str(src), bucket, "big/file.bin", Config=cfg)
    head = s3.head_object(Bucket=bucket, Key="big/file.bin")
    nparts = -(-len(data) // (8 * MIB))
    assert head["ContentLength"] == len(data) and head["ETag"].endswith(f'-{nparts}"')
    dst = tmp_path / "dst.bin"
    s3.download_file(bucket, "big/file.bin", str(dst), Config=cfg)
    assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(data).digest()
    uid = uuid.uuid4().hex  # a random upload id is simply unknown
    with pytest.raises(ClientError) as exc:
        s3.list_parts(Bucket=bucket, Key="big/file.bin", UploadId=uid)
    assert code(exc) == "NoSuchUpload"


def test_checksum_rules(s3: Any, bucket: str) -> None:
    for kw in (
        {"ChecksumAlgorithm": "SHA256", "ChecksumType": "FULL_OBJECT"},
        {"ChecksumAlgorithm": "CRC64NVME", "ChecksumType": "COMPOSITE"},
        {"ChecksumType": "FULL_OBJECT"},
    ):
        with pytest.raises(ClientError) as exc:
            s3.create_multipart_upload(Bucket=bucket, Key="r", **kw)
        assert code(exc) == "InvalidRequest", kw
    uid = s3.create_multipart_upload(Bucket=bucket, Key="r", ChecksumAlgorithm="SHA256")["UploadId"]
    with pytest.raises(ClientError) as exc:  # another algorithm than the upload's
        s3.upload_part(
            Bucket=bucket, Key="r", UploadId=uid, PartNumber=1, Body=b"x", ChecksumAlgorithm="CRC32"
        )
    assert code(exc) == "InvalidRequest"
    res = s3.upload_part(
        Bucket=bucket, Key="r", UploadId=uid, PartNumber=1, Body=b"x", ChecksumAlgorithm="SHA256"
    )
    with pytest.raises(ClientError) as exc:  # COMPOSITE needs every part's checksum
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="r",
            UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": res["ETag"]}]},
        )
    assert code(exc) == "InvalidRequest"
    part = {"PartNumber": 1, "ETag": res["ETag"], "ChecksumSHA256": res["ChecksumSHA256"]}
    want = _b64(_sha256(_sha256(b"x"))) + "-1"
    with pytest.raises(ClientError) as exc:  # a whole-object checksum that does not match
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="r",
            UploadId=uid,
            MultipartUpload={"Parts": [part]},
            ChecksumSHA256=_b64(b"\0" * 32),
        )
    assert code(exc) == "BadDigest"
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="r", UploadId=uid, MultipartUpload={"Parts": [part]}, ChecksumSHA256=want
    )
    assert done["ChecksumSHA256"] == want


def test_full_object_checksum_parts_optional(s3: Any, bucket: str) -> None:
    uid = s3.create_multipart_upload(
        Bucket=bucket, Key="f", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
    )["UploadId"]
    etags = [
        s3.upload_part(Bucket=bucket, Key="f", UploadId=uid, PartNumber=n, Body=d)["ETag"]
        for n, d in ((1, P1), (2, P3))
    ]
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="f",
        UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
        ChecksumCRC32=_b64(_crc32(P1 + P3)),
        ChecksumType="FULL_OBJECT",
    )
    assert done["ChecksumCRC32"] == _b64(_crc32(P1 + P3)) and done["ChecksumType"] == "FULL_OBJECT"
