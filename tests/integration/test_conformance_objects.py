"""Object behaviours that ceph/s3-tests (boto3 flavour) checks and rs3gw once answered differently.

Each test names the s3-tests cases that found the gap. The suite's own code is not used: these
are our re-statements of what it checks, against a real ``rs3gw serve`` with real boto3 clients
and, where a client cannot send the request at all, a raw signed HTTP request.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import urllib.parse
import uuid
from typing import Any

import pytest
import requests
from botocore import UNSIGNED
from botocore.auth import S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, SECRET_KEY, Server, cleanup_bucket

MIB = 1024 * 1024


def _err(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    resp = exc.value.response
    return int(resp["ResponseMetadata"]["HTTPStatusCode"]), str(resp["Error"].get("Code"))


def _with_headers(client: Any, operation: str, headers: dict[str, str]) -> Any:
    """Add raw headers to one operation (before signing), as s3-tests does with its event hooks."""
    client.meta.events.register(
        f"before-call.s3.{operation}", lambda params, **_: params["headers"].update(headers)
    )
    return client


def _raw(server: Server, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Any:
    """One HTTP request exactly as given: no SDK adds or fixes headers."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _signed_headers(
    server: Server, method: str, path: str, body: bytes, extra: dict[str, str] | None = None
) -> dict[str, str]:
    req = AWSRequest(
        method=method,
        url=f"{server.endpoint}{path}",
        data=body,
        headers={"x-amz-content-sha256": hashlib.sha256(body).hexdigest(), **(extra or {})},
    )
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
    return {"Host": f"127.0.0.1:{server.port}", "Content-Length": str(len(body)), **dict(req.headers)}


# --- CompleteMultipartUpload ----------------------------------------------------------------------


def _upload(s3: Any, bucket: str, key: str, parts: list[bytes], **create: Any) -> tuple[str, list[Any]]:
    uid = s3.create_multipart_upload(Bucket=bucket, Key=key, **create)["UploadId"]
    done = []
    for n, body in enumerate(parts, 1):
        etag = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=body)["ETag"]
        done.append({"ETag": etag, "PartNumber": n})
    return uid, done


def test_complete_retried_after_success_answers_the_same(s3: Any, bucket: str) -> None:
    """test_multipart_upload, test_multipart_upload_small: a second Complete succeeds (S3 is idempotent)."""
    data = [b"a" * (5 * MIB), b"tail"]
    uid, parts = _upload(s3, bucket, "mp", data, ContentType="text/bla", Metadata={"foo": "bar"})
    first = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": parts}
    )
    again = s3.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": parts}
    )
    assert again["ETag"] == first["ETag"] and again["ETag"].endswith('-2"')
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == b"".join(data) and got["Metadata"] == {"foo": "bar"}
    # The single-byte, single-part case of test_multipart_upload_small.
    uid1, parts1 = _upload(s3, bucket, "small", [b"x"])
    for _ in range(2):
        s3.complete_multipart_upload(
            Bucket=bucket, Key="small", UploadId=uid1, MultipartUpload={"Parts": parts1}
        )
    assert s3.head_object(Bucket=bucket, Key="small")["ContentLength"] == 1
    # Only the upload that made the current object is recognised: once the key is overwritten,
    # or for an upload id that never existed, the answer is NoSuchUpload as before.
    s3.put_object(Bucket=bucket, Key="mp", Body=b"overwritten")
    for upload_id in (uid, "no-such-upload"):
        with pytest.raises(ClientError) as exc:
            s3.complete_multipart_upload(
                Bucket=bucket, Key="mp", UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        assert _err(exc) == (404, "NoSuchUpload")
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"overwritten"


def test_complete_with_malformed_checksum_is_invalid_request(s3: Any, bucket: str) -> None:
    """test_multipart_checksum_sha256: a value that is no SHA-256 digest is InvalidRequest (not BadDigest)."""
    body = b"A" * 1024
    part_sum = base64.b64encode(hashlib.sha256(body).digest()).decode()
    uid = s3.create_multipart_upload(Bucket=bucket, Key="ck", ChecksumAlgorithm="SHA256")["UploadId"]
    part = s3.upload_part(
        Bucket=bucket, Key="ck", UploadId=uid, PartNumber=1, Body=body, ChecksumAlgorithm="SHA256"
    )
    assert part["ChecksumSHA256"] == part_sum
    parts = {"Parts": [{"ETag": part["ETag"], "ChecksumSHA256": part_sum, "PartNumber": 1}]}
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="ck", UploadId=uid, ChecksumSHA256="0" * 64, MultipartUpload=parts
        )
    assert _err(exc) == (400, "InvalidRequest")
    # A well-formed digest that does not match stays BadDigest.
    wrong = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    with pytest.raises(ClientError) as exc:
        s3.complete_multipart_upload(
            Bucket=bucket, Key="ck", UploadId=uid, ChecksumSHA256=wrong, MultipartUpload=parts
        )
    assert _err(exc) == (400, "BadDigest")
    # Neither failure consumed the upload; the composite checksum is the one S3 computes.
    done = s3.complete_multipart_upload(Bucket=bucket, Key="ck", UploadId=uid, MultipartUpload=parts)
    composite = base64.b64encode(hashlib.sha256(base64.b64decode(part_sum)).digest()).decode() + "-1"
    assert done["ChecksumSHA256"] == composite
    head = s3.head_object(Bucket=bucket, Key="ck", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == composite


# --- conditional PutObject: If-Match: * ---------------------------------------------------------------


def test_put_if_match_star(server: Server, s3: Any, bucket: str) -> None:
    """test_put_object_ifmatch_overwrite_existed_good, test_put_object_ifmatch_nonexisted_failed,
    test_atomic_conditional_write_1mb: ``If-Match: *`` overwrites any existing object and is 412
    (nothing written) when there is none."""
    s3.put_object(Bucket=bucket, Key="foo", Body=b"bar")
    star = _with_headers(server.client(), "PutObject", {"If-Match": "*"})
    star.put_object(Bucket=bucket, Key="foo", Body=b"C" * MIB)
    assert s3.get_object(Bucket=bucket, Key="foo")["Body"].read() == b"C" * MIB
    with pytest.raises(ClientError) as exc:
        star.put_object(Bucket=bucket, Key="absent", Body=b"bar")
    assert _err(exc) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="absent")
    assert _err(exc)[0] == 404
    # An ETag (not *) on a missing key stays S3's documented 404 NoSuchKey; a stale one is 412.
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="absent", Body=b"bar", IfMatch='"37b51d194a7513e45b56f6524f2d51f2"')
    assert _err(exc) == (404, "NoSuchKey")
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key="foo", Body=b"zar", IfMatch='"ABCORZ"')
    assert _err(exc) == (412, "PreconditionFailed")
    assert s3.get_object(Bucket=bucket, Key="foo")["Body"].read() == b"C" * MIB


# --- CopyObject checksums -------------------------------------------------------------------------


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_copy_object_checksum_algorithm(s3: Any, bucket: str) -> None:
    """CopyObject's x-amz-checksum-algorithm (s3-tests' checksum group) makes S3 compute that
    checksum for the copy and return it in CopyObjectResult; it used to be ignored."""
    s3.put_object(Bucket=bucket, Key="src", Body=b"hello")
    res = s3.copy_object(
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"}, ChecksumAlgorithm="SHA256"
    )
    assert res["CopyObjectResult"]["ChecksumSHA256"] == _sha256_b64(b"hello")
    head = s3.head_object(Bucket=bucket, Key="dst", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == _sha256_b64(b"hello") and head["ChecksumType"] == "FULL_OBJECT"
    # A source with a composite (multipart) checksum: the single-part copy gets a full-object one
    # of the same algorithm instead of none.
    uid = s3.create_multipart_upload(Bucket=bucket, Key="mp", ChecksumAlgorithm="SHA256")["UploadId"]
    part = s3.upload_part(
        Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=b"x", ChecksumAlgorithm="SHA256"
    )
    ref = {"ETag": part["ETag"], "PartNumber": 1, "ChecksumSHA256": part["ChecksumSHA256"]}
    s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={"Parts": [ref]})
    res = s3.copy_object(Bucket=bucket, Key="mp-copy", CopySource={"Bucket": bucket, "Key": "mp"})
    assert res["CopyObjectResult"]["ChecksumSHA256"] == _sha256_b64(b"x")
    head = s3.head_object(Bucket=bucket, Key="mp-copy", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == _sha256_b64(b"x") and head["ChecksumType"] == "FULL_OBJECT"


# --- conditional deletes ------------------------------------------------------------------------------


def test_delete_object_if_match(s3: Any, bucket: str) -> None:
    """test_delete_object_if_match (s3-tests' conditional_write group): DeleteObject honours
    If-Match; a stale ETag is 412 and deletes nothing (it used to delete regardless)."""
    etag = s3.put_object(Bucket=bucket, Key="obj", Body=b"x")["ETag"]
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=bucket, Key="obj", IfMatch='"00000000000000000000000000000000"')
    assert _err(exc) == (412, "PreconditionFailed")
    assert s3.get_object(Bucket=bucket, Key="obj")["Body"].read() == b"x"
    s3.delete_object(Bucket=bucket, Key="obj", IfMatch=etag)
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=bucket, Key="obj", IfMatch=etag)
    assert _err(exc) == (404, "NoSuchKey")
    s3.put_object(Bucket=bucket, Key="any", Body=b"y")
    s3.delete_object(Bucket=bucket, Key="any", IfMatch="*")
    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=bucket, Key="any", IfMatch="*")
    assert _err(exc) == (412, "PreconditionFailed")


def test_delete_objects_with_etag(s3: Any, bucket: str) -> None:
    """test_multi_object_delete with per-object <ETag>: a mismatch is that key's PreconditionFailed
    error and the object stays; the others are deleted."""
    s3.put_object(Bucket=bucket, Key="keep", Body=b"x")
    etag = s3.put_object(Bucket=bucket, Key="go", Body=b"y")["ETag"]
    objects = [{"Key": "keep", "ETag": '"00000000000000000000000000000000"'}, {"Key": "go", "ETag": etag}]
    res = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects})
    assert [(e["Key"], e["Code"]) for e in res["Errors"]] == [("keep", "PreconditionFailed")]
    assert [d["Key"] for d in res["Deleted"]] == ["go"]
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"x"
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="go")
    assert _err(exc)[0] == 404


# --- authentication headers ------------------------------------------------------------------------


def test_empty_authorization_header_is_anonymous(server: Server, s3: Any, bucket: str) -> None:
    """test_object_create_bad_authorization_empty, test_bucket_create_bad_authorization_empty:
    ``Authorization:`` with no value is a request without credentials: 403 AccessDenied."""
    for method, path in (("PUT", f"/{bucket}/foo"), ("PUT", f"/{bucket}-new")):
        status, body = _raw(
            server,
            method,
            path,
            {"Host": f"127.0.0.1:{server.port}", "Authorization": "", "Content-Length": "3"},
            b"bar",
        )
        assert status == 403 and b"<Code>AccessDenied</Code>" in body
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket=bucket, Key="foo")
    assert _err(exc)[0] == 404
    # The same request, signed, is accepted: the 403 is about the header, not the request.
    path = f"/{bucket}/{urllib.parse.quote('foo')}"
    assert _raw(server, "PUT", path, _signed_headers(server, "PUT", path, b"bar"), b"bar")[0] == 200


SIGV2_DATES = [
    ("Bad Date", (403, "AccessDenied")),  # test_object_create_bad_date_invalid_aws2
    ("", (403, "AccessDenied")),  # test_object_create_bad_date_empty_aws2
    ("Tue, 07 Jul 1950 21:53:04 GMT", (403, "AccessDenied")),  # ..._bad_date_before_epoch_aws2
    ("Tue, 07 Jul 2010 21:53:04 GMT", (403, "RequestTimeTooSkewed")),  # ..._bad_date_before_today_aws2
    ("Tue, 07 Jul 2030 21:53:04 GMT", (403, "RequestTimeTooSkewed")),  # ..._bad_date_after_today_aws2
    ("Tue, 07 Jul 9999 21:53:04 GMT", (403, "RequestTimeTooSkewed")),  # ..._bad_date_after_end_aws2
]


@pytest.mark.parametrize(("amz_date", "expected"), SIGV2_DATES)
def test_sigv2_x_amz_date_checks(
    server: Server, bucket: str, amz_date: str, expected: tuple[int, str]
) -> None:
    """SigV2 (``AWS key:signature``) with a bad x-amz-date: an empty or pre-epoch date is no date
    (AccessDenied) rather than a fallback to Date or a skew; far dates are RequestTimeTooSkewed."""
    v2 = _with_headers(server.client(signature_version="s3"), "PutObject", {"x-amz-date": amz_date})
    with pytest.raises(ClientError) as exc:
        v2.put_object(Bucket=bucket, Key="foo", Body=b"bar")
    assert _err(exc) == expected


def test_sigv2_put_still_works(server: Server, s3: Any, bucket: str) -> None:
    """test_object_create_bad_ua_empty_aws2 and the other *_aws2 cases rely on plain SigV2 working."""
    v2 = _with_headers(server.client(signature_version="s3"), "PutObject", {"User-Agent": ""})
    v2.put_object(Bucket=bucket, Key="foo", Body=b"bar")
    assert s3.get_object(Bucket=bucket, Key="foo")["Body"].read() == b"bar"


# --- response-* overrides ---------------------------------------------------------------------------


OVERRIDES = {
    "ResponseCacheControl": ("cache-control", "no-cache"),
    "ResponseContentDisposition": ("content-disposition", "bla"),
    "ResponseContentEncoding": ("content-encoding", "aaa"),
    "ResponseContentLanguage": ("content-language", "esperanto"),
    "ResponseContentType": ("content-type", "foo/bar"),
}


def test_response_overrides_need_a_signed_request(server: Server, s3: Any) -> None:
    """test_object_raw_response_headers: signed and presigned GETs get the overrides; S3 refuses
    them (400 InvalidRequest) on an anonymous GET, even of a public object."""
    name = f"pub-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, ACL="public-read")
    try:
        s3.put_object(Bucket=name, Key="foo", Body=b"x", ACL="public-read")
        params = {k: v for k, (_, v) in OVERRIDES.items()}
        got = s3.get_object(Bucket=name, Key="foo", **params)["ResponseMetadata"]["HTTPHeaders"]
        assert all(got[h] == v for h, v in OVERRIDES.values())
        url = server.client(signature_version="s3v4").generate_presigned_url(
            "get_object", Params={"Bucket": name, "Key": "foo", **params}, ExpiresIn=100000
        )
        resp = requests.get(url, timeout=30)
        assert resp.status_code == 200 and all(resp.headers[h] == v for h, v in OVERRIDES.values())
        anon = server.client(signature_version=UNSIGNED)
        assert anon.get_object(Bucket=name, Key="foo")["Body"].read() == b"x"
        with pytest.raises(ClientError) as exc:
            anon.get_object(Bucket=name, Key="foo", ResponseContentType="foo/bar")
        assert _err(exc) == (400, "InvalidRequest")
    finally:
        cleanup_bucket(s3, name)


# --- presigned URL lifetimes ---------------------------------------------------------------------------


def _presigned_get(server: Server, path: str, expires: int) -> str:
    """A SigV4 query-signed GET URL with any X-Amz-Expires (botocore's CRT signer refuses <= 0)."""
    req = AWSRequest(method="GET", url=f"{server.endpoint}{path}")
    S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1", expires=expires).add_auth(req)
    return str(req.url)


@pytest.mark.parametrize(
    ("expires", "status", "text"),
    [
        (100000, 200, "hello"),  # test_object_raw_get_x_amz_expires_not_expired
        (609901, 400, "must be less than a week"),  # ..._out_max_range (s3-tests: 403, AWS: 400)
        (0, 400, "must be non-negative"),  # ..._out_range_zero (s3-tests: 403, AWS: 400)
        (-7, 400, "must be non-negative"),  # ..._out_positive_range (s3-tests: 403, AWS: 400)
    ],
)
def test_presigned_x_amz_expires_bounds(
    server: Server, s3: Any, bucket: str, expires: int, status: int, text: str
) -> None:
    """X-Amz-Expires outside 1..604800 is AWS's 400 AuthorizationQueryParametersError (s3-tests,
    written against RGW, expects 403 there; AWS's code and status are kept on purpose)."""
    s3.put_object(Bucket=bucket, Key="foo", Body=b"hello")
    resp = requests.get(_presigned_get(server, f"/{bucket}/foo", expires), timeout=30)
    assert resp.status_code == status and text in resp.text
    if status == 400:
        assert "<Code>AuthorizationQueryParametersError</Code>" in resp.text


# --- GetObjectAttributes -----------------------------------------------------------------------------


def test_get_object_attributes_single_part(s3: Any, bucket: str) -> None:
    """test_get_object_attributes (s3-tests' newer object tests): ETag without quotes, size, class and
    the full-object checksum; no ObjectParts for a single-part object; errors as for HEAD."""
    put = s3.put_object(Bucket=bucket, Key="a", Body=b"hello", ChecksumAlgorithm="SHA256")
    got = s3.get_object_attributes(
        Bucket=bucket,
        Key="a",
        ObjectAttributes=["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"],
    )
    assert (
        got["ETag"] == put["ETag"].strip('"') and got["ObjectSize"] == 5 and got["StorageClass"] == "STANDARD"
    )
    assert got["Checksum"] == {"ChecksumSHA256": put["ChecksumSHA256"], "ChecksumType": "FULL_OBJECT"}
    assert "ObjectParts" not in got and "LastModified" in got
    only = s3.get_object_attributes(Bucket=bucket, Key="a", ObjectAttributes=["ObjectSize"])
    assert only["ObjectSize"] == 5 and "ETag" not in only and "Checksum" not in only
    with pytest.raises(ClientError) as exc:
        s3.get_object_attributes(Bucket=bucket, Key="missing", ObjectAttributes=["ETag"])
    assert _err(exc) == (404, "NoSuchKey")


def test_get_object_attributes_header_checks(server: Server, bucket: str) -> None:
    """No x-amz-object-attributes is InvalidRequest, an unknown name InvalidArgument (boto3 checks
    both before sending, so these go out as raw signed requests)."""
    server.client().put_object(Bucket=bucket, Key="a", Body=b"hello")
    path = f"/{bucket}/a?attributes"
    for extra, code in (
        ({}, b"InvalidRequest"),
        ({"x-amz-object-attributes": "ETag,Colour"}, b"InvalidArgument"),
    ):
        headers = {**_signed_headers(server, "GET", path, b"", extra), "Content-Length": "0"}
        status, body = _raw(server, "GET", path, headers)
        assert status == 400 and b"<Code>" + code + b"</Code>" in body
    headers = _signed_headers(server, "GET", path, b"", {"x-amz-object-attributes": "objectsize"})
    status, body = _raw(server, "GET", path, headers)
    assert status == 200 and b"<ObjectSize>5</ObjectSize>" in body


def test_get_object_attributes_multipart_parts(s3: Any, bucket: str) -> None:
    """test_get_multipart_object_attributes / paginated variant: PartsCount, part sizes and part
    checksums, paged by max-parts and part-number-marker."""
    bodies = [b"a" * (5 * MIB), b"b" * (5 * MIB), b"c" * 10]
    uid = s3.create_multipart_upload(Bucket=bucket, Key="m", ChecksumAlgorithm="SHA256")["UploadId"]
    parts = []
    for n, body in enumerate(bodies, 1):
        r = s3.upload_part(
            Bucket=bucket, Key="m", UploadId=uid, PartNumber=n, Body=body, ChecksumAlgorithm="SHA256"
        )
        parts.append({"ETag": r["ETag"], "PartNumber": n, "ChecksumSHA256": r["ChecksumSHA256"]})
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="m", UploadId=uid, MultipartUpload={"Parts": parts}
    )
    first = s3.get_object_attributes(
        Bucket=bucket, Key="m", ObjectAttributes=["ObjectParts", "Checksum"], MaxParts=2
    )
    op = first["ObjectParts"]
    assert op["TotalPartsCount"] == 3 and op["IsTruncated"] and op["NextPartNumberMarker"] == 2
    assert [(p["PartNumber"], p["Size"], p["ChecksumSHA256"]) for p in op["Parts"]] == [
        (n, len(b), parts[n - 1]["ChecksumSHA256"]) for n, b in enumerate(bodies[:2], 1)
    ]
    assert first["Checksum"]["ChecksumType"] == "COMPOSITE"
    assert done["ChecksumSHA256"].startswith(first["Checksum"]["ChecksumSHA256"])
    rest = s3.get_object_attributes(
        Bucket=bucket, Key="m", ObjectAttributes=["ObjectParts"], MaxParts=2, PartNumberMarker=2
    )["ObjectParts"]
    assert not rest["IsTruncated"] and [p["PartNumber"] for p in rest["Parts"]] == [3]
    # GET ?partNumber=N with checksum mode answers that part's own checksum (boto3 then verifies
    # the part's bytes against it); the whole object's composite value would not fit a part.
    got = s3.get_object(Bucket=bucket, Key="m", PartNumber=2, ChecksumMode="ENABLED")
    assert got["ChecksumSHA256"] == parts[1]["ChecksumSHA256"] and got["Body"].read() == bodies[1]
    head = s3.head_object(Bucket=bucket, Key="m", PartNumber=3, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == parts[2]["ChecksumSHA256"] and head["ContentLength"] == 10
    # Without an additional checksum S3 reports the count but no Part entries.
    uid2 = s3.create_multipart_upload(Bucket=bucket, Key="plain")["UploadId"]
    r = s3.upload_part(Bucket=bucket, Key="plain", UploadId=uid2, PartNumber=1, Body=b"x")
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="plain",
        UploadId=uid2,
        MultipartUpload={"Parts": [{"ETag": r["ETag"], "PartNumber": 1}]},
    )
    plain = s3.get_object_attributes(Bucket=bucket, Key="plain", ObjectAttributes=["ObjectParts", "ETag"])
    assert plain["ObjectParts"]["TotalPartsCount"] == 1 and "Parts" not in plain["ObjectParts"]
    assert plain["ETag"].endswith("-1")


# --- behaviours s3-tests checks that already matched (kept here so they stay matched) -------------


RANGES = [
    ("bytes=4-7", 206, b"cont", "bytes 4-7/11"),  # test_ranged_request_response_code
    ("bytes=4-", 206, b"content", "bytes 4-10/11"),  # test_ranged_request_skip_leading_bytes_response_code
    ("bytes=-7", 206, b"content", "bytes 4-10/11"),  # test_ranged_request_return_trailing_bytes_response_code
]


def test_ranged_requests(s3: Any, bucket: str) -> None:
    """test_ranged_request_*: 206 with Content-Range; past the end, or any range of an empty
    object, is 416 InvalidRange."""
    s3.put_object(Bucket=bucket, Key="r", Body=b"testcontent")
    for spec, status, body, content_range in RANGES:
        got = s3.get_object(Bucket=bucket, Key="r", Range=spec)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == status and got["Body"].read() == body
        assert got["ContentRange"] == content_range
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    for key in ("r", "empty"):  # test_ranged_request_invalid_range, test_ranged_request_empty_object
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket=bucket, Key=key, Range="bytes=40-50")
        assert _err(exc) == (416, "InvalidRange")


def test_error_request_id_matches_header(s3: Any, bucket: str) -> None:
    """test_object_requestid_matches_header_on_error: the XML RequestId is the x-amz-request-id."""
    seen: dict[str, bytes] = {}
    s3.meta.events.register(
        "after-call.s3.GetObject", lambda http_response, **_: seen.update(b=http_response.content)
    )
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=bucket, Key="bar")
    assert _err(exc) == (404, "NoSuchKey")
    header_id = exc.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    assert f"<RequestId>{header_id}</RequestId>".encode() in seen["b"]


@pytest.mark.parametrize("value", ["\x04mymeta", "\x04w", "h\x04", "h\x04w"])
def test_control_characters_in_metadata_are_refused(server: Server, bucket: str, value: str) -> None:
    """test_object_set_get_non_utf8_metadata, test_object_set_get_metadata_empty_to_unreadable_*: 400."""
    client = _with_headers(server.client(), "PutObject", {"x-amz-meta-meta1": value})
    with pytest.raises(ClientError) as exc:
        client.put_object(Bucket=bucket, Key="bar", Body=b"x")
    assert _err(exc)[0] == 400


def test_upload_part_copy_ranges(s3: Any, bucket: str) -> None:
    """test_multipart_copy_invalid_range (InvalidRange) and test_multipart_copy_improper_range
    (malformed x-amz-copy-source-range: 400 InvalidArgument)."""
    s3.put_object(Bucket=bucket, Key="source", Body=b"12345")
    uid = s3.create_multipart_upload(Bucket=bucket, Key="dest")["UploadId"]
    src = {"Bucket": bucket, "Key": "source"}
    with pytest.raises(ClientError) as exc:
        s3.upload_part_copy(
            Bucket=bucket,
            Key="dest",
            UploadId=uid,
            CopySource=src,
            CopySourceRange="bytes=0-21",
            PartNumber=1,
        )
    status, code = _err(exc)
    assert status in (400, 416) and code == "InvalidRange"
    for spec in ("0-2", "bytes=0", "bytes=hello-world", "bytes=0-bar", "bytes=hello-", "bytes=0-2,3-5"):
        with pytest.raises(ClientError) as exc:
            s3.upload_part_copy(
                Bucket=bucket, Key="dest", UploadId=uid, CopySource=src, CopySourceRange=spec, PartNumber=1
            )
        assert _err(exc) == (400, "InvalidArgument"), spec


def test_expect_header_variants_and_early_denial(server: Server, s3: Any, bucket: str) -> None:
    """test_object_create_bad_expect_{mismatch,empty}: odd Expect values are ignored; test_100_continue:
    an anonymous PUT with Expect: 100-continue is refused (403) before its body is sent."""
    for value in ("200", ""):
        _with_headers(server.client(), "PutObject", {"Expect": value}).put_object(
            Bucket=bucket, Key="e", Body=b"bar"
        )
    assert s3.get_object(Bucket=bucket, Key="e")["Body"].read() == b"bar"
    headers = {"Host": f"127.0.0.1:{server.port}", "Content-Length": "123", "Expect": "100-continue"}
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest("PUT", f"/{bucket}/testobj", skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()  # no body follows: only an early answer can arrive
        assert conn.getresponse().status == 403
    finally:
        conn.close()


def test_read_during_overwrite_sees_one_version(s3: Any, bucket: str) -> None:
    """test_atomic_read_1mb: a GET that started before an overwrite returns the old bytes only."""
    s3.put_object(Bucket=bucket, Key="testobj", Body=b"A" * MIB)
    got = s3.get_object(Bucket=bucket, Key="testobj")
    first = got["Body"].read(64 * 1024)
    s3.put_object(Bucket=bucket, Key="testobj", Body=b"B" * MIB)
    assert first + got["Body"].read() == b"A" * MIB
    assert s3.get_object(Bucket=bucket, Key="testobj")["Body"].read() == b"B" * MIB
