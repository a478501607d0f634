"""SigV4 over real sockets: header auth, presigned URLs and every way a signature can be wrong.

Requests are signed with botocore's own signer and sent with http.client/urllib, so what reaches the
server is exactly what a client would put on the wire, including deliberately broken variants.
"""

from __future__ import annotations

import datetime
import hashlib
import http.client
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import botocore.auth
import botocore.crt.auth
import botocore.exceptions
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCESS_KEY, SECRET_KEY, Server


@pytest.fixture
def wire_bucket(server: Server, bucket: str) -> str:
    return bucket


@pytest.fixture
def v4(server: Server) -> Any:
    """boto3 presigns with SigV2 unless told otherwise; these tests are about SigV4 URLs."""
    return server.client(signature_version="s3v4")


def sign(
    method: str,
    url: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    region: str = "us-east-1",
) -> dict[str, str]:
    req = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    S3SigV4Auth(Credentials(access_key, secret_key), "s3", region).add_auth(req)
    return dict(req.headers.items())


def send(
    server: Server, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(
            method, path, body=body if body or method in ("PUT", "POST") else None, headers=headers or {}
        )
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def signed_send(
    server: Server,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> tuple[int, dict[str, str], bytes]:
    return send(server, method, path, body, sign(method, server.endpoint + path, body, headers, **kw))


def error_code(status_headers_body: tuple[int, dict[str, str], bytes]) -> str:
    """Checks the S3 error shape every failure must have and returns its Code."""
    status, headers, body = status_headers_body
    assert 400 <= status < 500, (status, body)
    assert "x-amz-request-id" in headers
    assert b"Traceback" not in body
    root = ET.fromstring(body)
    assert root.tag == "Error"
    code = root.findtext("Code")
    assert code
    assert root.findtext("Message")
    assert root.findtext("RequestId") == headers["x-amz-request-id"]
    return code


@pytest.fixture
def skewed_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """botocore stamps x-amz-date from this function; moving it 20 minutes makes a stale request.

    Clients built by boto3 sign through awscrt when it is installed, which imports its own copy.
    """
    real = botocore.auth.get_current_datetime

    def twenty_minutes_ago(**kwargs: Any) -> datetime.datetime:
        return real(**kwargs) - datetime.timedelta(minutes=20)

    monkeypatch.setattr(botocore.auth, "get_current_datetime", twenty_minutes_ago)
    monkeypatch.setattr(botocore.crt.auth, "get_current_datetime", twenty_minutes_ago)
    yield


# --- header auth -----------------------------------------------------------------------------


def test_signed_put_and_get_roundtrip(server: Server, wire_bucket: str) -> None:
    status, headers, _ = signed_send(server, "PUT", f"/{wire_bucket}/k", b"hello")
    assert status == 200 and "x-amz-request-id" in headers
    status, headers, body = signed_send(server, "GET", f"/{wire_bucket}/k")
    assert (status, body) == (200, b"hello")
    assert headers["x-amz-request-id"]


def test_unauthenticated_request_is_denied(server: Server, wire_bucket: str) -> None:
    out = send(server, "GET", f"/{wire_bucket}?list-type=2")
    assert out[0] == 403
    assert error_code(out) == "AccessDenied"
    out = send(server, "PUT", f"/{wire_bucket}/anon", b"x")
    assert out[0] == 403 and error_code(out) == "AccessDenied"


def test_unknown_access_key(server: Server, wire_bucket: str) -> None:
    out = signed_send(server, "GET", f"/{wire_bucket}", access_key="NOSUCHKEY")
    assert out[0] == 403 and error_code(out) == "InvalidAccessKeyId"


def test_wrong_secret(server: Server, wire_bucket: str) -> None:
    out = signed_send(server, "GET", f"/{wire_bucket}", secret_key="not-the-secret-at-all")
    assert out[0] == 403 and error_code(out) == "SignatureDoesNotMatch"


def test_wrong_region_in_scope(server: Server, wire_bucket: str) -> None:
    out = signed_send(server, "GET", f"/{wire_bucket}", region="eu-west-1")
    assert out[0] == 400 and error_code(out) == "AuthorizationHeaderMalformed"
    assert ET.fromstring(out[2]).findtext("Region") == "us-east-1"


def test_request_time_too_skewed(server: Server, wire_bucket: str, skewed_clock: None) -> None:
    out = signed_send(server, "GET", f"/{wire_bucket}")
    assert out[0] == 403 and error_code(out) == "RequestTimeTooSkewed"
    root = ET.fromstring(out[2])
    assert root.findtext("RequestTime") and root.findtext("ServerTime")


def test_tampered_signed_header(server: Server, wire_bucket: str) -> None:
    path = f"/{wire_bucket}/tamper"
    headers = sign("PUT", server.endpoint + path, b"data", {"x-amz-meta-color": "blue"})
    headers["x-amz-meta-color"] = "blux"
    out = send(server, "PUT", path, b"data", headers)
    assert out[0] == 403 and error_code(out) == "SignatureDoesNotMatch"
    assert signed_send(server, "HEAD", path)[0] == 404


def test_tampered_query_parameter(server: Server, wire_bucket: str) -> None:
    path = f"/{wire_bucket}?list-type=2&prefix=a"
    headers = sign("GET", server.endpoint + path)
    out = send(server, "GET", f"/{wire_bucket}?list-type=2&prefix=b", headers=headers)
    assert out[0] == 403 and error_code(out) == "SignatureDoesNotMatch"


def test_content_sha256_mismatch_stores_nothing(server: Server, wire_bucket: str) -> None:
    path = f"/{wire_bucket}/sha-mismatch"
    headers = sign("PUT", server.endpoint + path, b"what was signed")
    assert headers["X-Amz-Content-SHA256"] == hashlib.sha256(b"what was signed").hexdigest()
    out = send(server, "PUT", path, b"what was sent!!", headers)
    assert out[0] == 400 and error_code(out) == "XAmzContentSHA256Mismatch"
    assert signed_send(server, "HEAD", path)[0] == 404


def test_malformed_content_sha256(server: Server, wire_bucket: str) -> None:
    path = f"/{wire_bucket}/bad-sha"
    headers = sign("PUT", server.endpoint + path, b"x")
    headers["X-Amz-Content-SHA256"] = "nothex"
    out = send(server, "PUT", path, b"x", headers)
    assert out[0] == 400 and error_code(out) == "InvalidArgument"


def test_head_error_has_no_body(server: Server, wire_bucket: str) -> None:
    status, headers, body = signed_send(server, "HEAD", f"/{wire_bucket}/missing")
    assert status == 404 and body == b"" and headers["x-amz-request-id"]
    status, headers, body = send(server, "HEAD", f"/{wire_bucket}/missing")
    assert status == 403 and body == b"" and headers["x-amz-request-id"]


def test_garbage_authorization_headers(server: Server, wire_bucket: str) -> None:
    for value in (
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 Credential=x",
        "AWS4-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=00",
        "AWS AKIA:abc",
        "Bearer token",
        "AWS4-HMAC-SHA512 Credential=a/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
    ):
        out = send(
            server,
            "GET",
            f"/{wire_bucket}",
            headers={
                "Authorization": value,
                "x-amz-date": "20250101T000000Z",
                "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
            },
        )
        assert 400 <= out[0] < 500, (value, out)
        error_code(out)


# --- presigned URLs --------------------------------------------------------------------------


def urlopen(url: str, data: bytes | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_presigned_get_and_put(server: Server, v4: Any, wire_bucket: str) -> None:
    put_url = v4.generate_presigned_url(
        "put_object", Params={"Bucket": wire_bucket, "Key": "p/q r"}, ExpiresIn=60
    )
    status, _, _ = urlopen(put_url, b"presigned body", "PUT")
    assert status == 200
    get_url = v4.generate_presigned_url(
        "get_object", Params={"Bucket": wire_bucket, "Key": "p/q r"}, ExpiresIn=60
    )
    status, headers, body = urlopen(get_url)
    assert (status, body) == (200, b"presigned body")
    assert headers["x-amz-request-id"]


def test_presigned_url_is_bound_to_its_key(server: Server, v4: Any, wire_bucket: str) -> None:
    v4.put_object(Bucket=wire_bucket, Key="a", Body=b"a")
    v4.put_object(Bucket=wire_bucket, Key="b", Body=b"b")
    url = v4.generate_presigned_url("get_object", Params={"Bucket": wire_bucket, "Key": "a"}, ExpiresIn=60)
    out = urlopen(url.replace(f"/{wire_bucket}/a?", f"/{wire_bucket}/b?"))
    assert out[0] == 403 and error_code(out) == "SignatureDoesNotMatch"


def test_presigned_expired(server: Server, v4: Any, wire_bucket: str, request: pytest.FixtureRequest) -> None:
    v4.put_object(Bucket=wire_bucket, Key="old", Body=b"x")
    request.getfixturevalue("skewed_clock")
    url = v4.generate_presigned_url("get_object", Params={"Bucket": wire_bucket, "Key": "old"}, ExpiresIn=60)
    out = urlopen(url)
    assert out[0] == 403 and error_code(out) == "AccessDenied"
    assert b"expired" in out[2]


def _presign(server: Server, path: str, expires: int) -> str:
    req = AWSRequest(method="GET", url=server.endpoint + path)
    S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1", expires=expires).add_auth(req)
    return str(req.url)


@pytest.mark.parametrize("expires", [0, 604801])
def test_presigned_expires_out_of_range(server: Server, wire_bucket: str, expires: int) -> None:
    url = _presign(server, f"/{wire_bucket}/k", expires)
    assert f"X-Amz-Expires={expires}" in url
    out = urlopen(url)
    assert out[0] == 400 and error_code(out) == "AuthorizationQueryParametersError"


def test_presigned_max_expiry_accepted(server: Server, s3: Any, wire_bucket: str) -> None:
    s3.put_object(Bucket=wire_bucket, Key="k", Body=b"week")
    assert urlopen(_presign(server, f"/{wire_bucket}/k", 604800))[2] == b"week"


def test_presigned_tampered_signature(server: Server, v4: Any, wire_bucket: str) -> None:
    v4.put_object(Bucket=wire_bucket, Key="k", Body=b"x")
    url = v4.generate_presigned_url("get_object", Params={"Bucket": wire_bucket, "Key": "k"}, ExpiresIn=60)
    parts = urlsplit(url)
    query = parts.query.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    out = urlopen(f"{parts.scheme}://{parts.netloc}{parts.path}?{query}")
    assert out[0] == 403 and error_code(out) == "SignatureDoesNotMatch"


def test_presigned_and_header_together_rejected(server: Server, v4: Any, wire_bucket: str) -> None:
    url = v4.generate_presigned_url("get_object", Params={"Bucket": wire_bucket, "Key": "k"}, ExpiresIn=60)
    parts = urlsplit(url)
    path = f"{parts.path}?{parts.query}"
    out = send(server, "GET", path, headers=sign("GET", server.endpoint + f"/{wire_bucket}/k"))
    assert out[0] == 400 and error_code(out) == "InvalidArgument"


@pytest.mark.parametrize(
    "headers",
    [
        {"x-amz-date": "20209999T990000Z", "cred": "20209999"},
        {"x-amz-date": "20200230T000000Z", "cred": "20200230"},
        {"date": "Fri, 31 Dec 9999 23:59:59 -1200", "cred": "99991231"},
        {"date": "Mon, 01 Jan 0001 00:00:00 GMT", "cred": "00010101"},
    ],
)
def test_impossible_dates_are_client_errors(
    server: Server, wire_bucket: str, headers: dict[str, str]
) -> None:
    cred = headers.pop("cred")
    date_header = next(iter(headers))
    auth = (
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{cred}/us-east-1/s3/aws4_request, "
        f"SignedHeaders=host;x-amz-content-sha256;{date_header}, Signature={'0' * 64}"
    )
    out = send(
        server,
        "GET",
        f"/{wire_bucket}",
        headers={**headers, "Authorization": auth, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
    )
    assert error_code(out) in ("AccessDenied", "AuthorizationHeaderMalformed")


def test_impossible_presigned_date(server: Server, wire_bucket: str) -> None:
    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={ACCESS_KEY}%2F20209901%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20209901T000000Z&X-Amz-Expires=100&X-Amz-SignedHeaders=host"
        f"&X-Amz-Signature={'0' * 64}"
    )
    out = send(server, "GET", f"/{wire_bucket}/k?{query}")
    assert error_code(out) == "AuthorizationQueryParametersError"


def test_sigv2_presigned_url_works(server: Server, s3: Any, wire_bucket: str) -> None:
    """boto3 presigns S3 with SigV2 unless configured with signature_version="s3v4"."""
    s3.put_object(Bucket=wire_bucket, Key="k", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": wire_bucket, "Key": "k"}, ExpiresIn=60)
    assert "AWSAccessKeyId=" in url
    out = urlopen(url)
    assert out[0] == 200 and out[2] == b"x"
    forged = url.replace("Signature=", "Signature=A")
    assert error_code(urlopen(forged)) == "SignatureDoesNotMatch"
    expired = s3.generate_presigned_url(
        "get_object", Params={"Bucket": wire_bucket, "Key": "k"}, ExpiresIn=-10
    )
    out = urlopen(expired)
    assert out[0] == 403 and error_code(out) == "AccessDenied"


def test_sigv2_header_auth_client(server: Server, wire_bucket: str) -> None:
    """A client configured for SigV2 (signature_version="s3") works end to end, sub-resources included."""
    import boto3
    from botocore.config import Config

    v2 = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        config=Config(signature_version="s3", s3={"addressing_style": "path"}),
    )
    v2.put_object(Bucket=wire_bucket, Key="dir/a b+c", Body=b"hello", ContentType="text/plain")
    got = v2.get_object(Bucket=wire_bucket, Key="dir/a b+c", ResponseContentType="x/y")
    assert got["Body"].read() == b"hello" and got["ContentType"] == "x/y"
    assert v2.get_bucket_location(Bucket=wire_bucket)["LocationConstraint"] in (None, "us-east-1")
    up = v2.create_multipart_upload(Bucket=wire_bucket, Key="mp")["UploadId"]
    etag = v2.upload_part(Bucket=wire_bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"z")["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": etag}]}
    v2.complete_multipart_upload(Bucket=wire_bucket, Key="mp", UploadId=up, MultipartUpload=parts)
    assert v2.get_object(Bucket=wire_bucket, Key="mp")["Body"].read() == b"z"
    bad = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key="wrong-secret",
        region_name="us-east-1",
        config=Config(signature_version="s3", retries={"max_attempts": 1}),
    )
    with pytest.raises(botocore.exceptions.ClientError) as err:
        bad.put_object(Bucket=wire_bucket, Key="nope", Body=b"x")
    assert err.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
