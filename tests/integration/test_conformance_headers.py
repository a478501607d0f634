"""Authentication-header answers that ceph/s3-tests' test_headers.py checks and rs3gw once got wrong.

Each test names the s3-tests cases behind it. The suite's own code is not used: these are our
re-statements of what it checks, where the suite and RGW disagree following what AWS S3 answers.
Requests are signed by botocore and sent with http.client, so a header changed after signing
reaches a real ``rs3gw serve`` exactly as written (the suite's boto2 flavour did the same).
"""

from __future__ import annotations

import hashlib
import uuid
import xml.etree.ElementTree as ET

import pytest
from botocore.auth import HmacV1Auth, S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from test_conformance_objects import _raw  # one HTTP request exactly as given

from conftest import ACCESS_KEY, SECRET_KEY, Server

UNKNOWN_KEY = "AKIAIGR7ZNNBHC5BKSUB"  # the suite's made-up access key


def _send(server: Server, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
    """One request exactly as given; returns the status and the S3 error code ("" on success)."""
    status, data = _raw(server, method, path, headers, body)
    return status, "" if status < 300 else ET.fromstring(data).findtext("Code") or ""


def _put(
    server: Server,
    path: str,
    body: bytes = b"",
    *,
    v2: bool = False,
    after: dict[str, str] | None = None,
    remove: tuple[str, ...] = (),
) -> tuple[int, str]:
    """PUT ``path`` signed with SigV4 (or SigV2), then override or drop headers before sending."""
    headers = {} if v2 else {"x-amz-content-sha256": hashlib.sha256(body).hexdigest()}
    req = AWSRequest(method="PUT", url=f"{server.endpoint}{path}", data=body, headers=headers)
    creds = Credentials(ACCESS_KEY, SECRET_KEY)
    (HmacV1Auth(creds) if v2 else S3SigV4Auth(creds, "s3", "us-east-1")).add_auth(req)
    sent = {"Host": f"127.0.0.1:{server.port}", "Content-Length": str(len(body)), **dict(req.headers)}
    sent.update(after or {})
    for name in remove:
        sent.pop(name, None)
    return _send(server, "PUT", path, sent, body)


def _targets(bucket: str) -> list[tuple[str, bytes]]:
    """The suite runs each case as a PutObject into an existing bucket and as a CreateBucket."""
    return [(f"/{bucket}/foo", b"bar"), (f"/hdr-{uuid.uuid4().hex[:12]}", b"")]


def test_sigv2_header_without_key_and_signature_is_invalid_argument(server: Server, bucket: str) -> None:
    """test_object_create_bad_authorization_invalid_aws2, test_bucket_create_bad_authorization_invalid_aws2:
    ``Authorization: AWS HAHAHA`` (no ``key:signature``) is 400 InvalidArgument on S3."""
    for path, body in _targets(bucket):
        assert _put(server, path, body, v2=True, after={"Authorization": "AWS HAHAHA"}) == (
            400,
            "InvalidArgument",
        )


def test_unknown_authorization_scheme_is_invalid_argument(server: Server, bucket: str) -> None:
    """test_object_create_bad_authorization_invalid_aws4, test_bucket_create_bad_authorization_invalid_aws4
    (boto2 flavour): ``AWS4 HAHAHA`` is no scheme S3 knows: 400 InvalidArgument ("Unsupported
    Authorization Type"); a SigV4 header missing its fields stays AuthorizationHeaderMalformed."""
    for path, body in _targets(bucket):
        assert _put(server, path, body, after={"Authorization": "AWS4 HAHAHA"}) == (400, "InvalidArgument")
        assert _put(server, path, body, after={"Authorization": "AWS4-HMAC-SHA256 Credential=HAHAHA"}) == (
            400,
            "AuthorizationHeaderMalformed",
        )


@pytest.mark.parametrize("amz_date", ["20100707T215304Z", "20300707T215304Z", "99990707T215304Z"])
def test_far_x_amz_date_is_skewed_even_when_the_credential_date_differs(
    server: Server, bucket: str, amz_date: str
) -> None:
    """test_{object,bucket}_create_bad_amz_date_{before_today,after_today,after_end}_aws4: X-Amz-Date
    replaced after signing (the credential keeps today's date) is 403 RequestTimeTooSkewed, not a
    400 about the credential date: S3 checks the request time first."""
    for path, body in _targets(bucket):
        assert _put(server, path, body, after={"X-Amz-Date": amz_date}) == (403, "RequestTimeTooSkewed")


def test_unusable_x_amz_date_is_access_denied(server: Server, bucket: str) -> None:
    """test_{object,bucket}_create_bad_amz_date_{before_epoch,invalid,empty,none}_aws4: a date before
    1970 is no valid date (403 AccessDenied, as a garbage, empty or missing one), not a 400."""
    for path, body in _targets(bucket):
        for amz_date in ("19500707T215304Z", "Bad Date", ""):
            assert _put(server, path, body, after={"X-Amz-Date": amz_date}) == (403, "AccessDenied"), amz_date
        assert _put(server, path, body, remove=("X-Amz-Date",)) == (403, "AccessDenied")


def test_unknown_access_key_is_403_before_the_credential_date(server: Server, bucket: str) -> None:
    """test_object_create_bad_authorization_incorrect_aws4 (and _aws2): a made-up key with a stale
    credential date is 403 InvalidAccessKeyId; only a known key's date mismatch is malformed (400)."""
    stale = (
        f"AWS4-HMAC-SHA256 Credential={UNKNOWN_KEY}/20150930/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;user-agent,Signature=FWeDfwojDSdS2Ztmpfeubhd9isU="
    )
    v2_auth = f"AWS {UNKNOWN_KEY}:FWeDfwojDSdS2Ztmpfeubhd9isU="
    for path, body in _targets(bucket):
        assert _put(server, path, body, after={"Authorization": stale}) == (403, "InvalidAccessKeyId")
        assert _put(server, path, body, v2=True, after={"Authorization": v2_auth}) == (
            403,
            "InvalidAccessKeyId",
        )
        known = stale.replace(UNKNOWN_KEY, ACCESS_KEY)
        assert _put(server, path, body, after={"Authorization": known}) == (
            400,
            "AuthorizationHeaderMalformed",
        )
