"""Lifecycle and CORS conformance cases from ceph/s3-tests (s3tests_boto3/functional/test_s3.py)
where rs3gw differed from S3, reproduced with raw signed requests against a real server.

Every other test_lifecycle_* configuration case and every test_cors_* case checked in that pass
already behaved as S3 does (see tests/integration/test_lifecycle_config.py and test_cors.py).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, SECRET_KEY, Server


def _put_lifecycle(server: Server, bucket: str, xml: str) -> tuple[int, str]:
    """PUT ?lifecycle with a hand-written body: boto3 rewrites any Date it is given into the
    extended ISO 8601 form, so the server never sees the raw spelling s3-tests means to send."""
    body = xml.encode()
    headers = {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}
    req = AWSRequest(method="PUT", url=f"{server.endpoint}/{bucket}?lifecycle", data=body, headers=headers)
    req.headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
    prepared = urllib.request.Request(req.url, data=body, headers=dict(req.headers.items()), method="PUT")
    try:
        with urllib.request.urlopen(prepared, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _code(text: str) -> str:
    return text.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in text else ""


def _rule_xml(action: str) -> str:
    return (
        "<LifecycleConfiguration><Rule><ID>rule1</ID><Prefix>test1/</Prefix><Status>Enabled</Status>"
        f"{action}</Rule></LifecycleConfiguration>"
    )


def _expiration(date: str) -> str:
    return _rule_xml(f"<Expiration><Date>{date}</Date></Expiration>")


def _transition(date: str) -> str:
    # s3-tests: test_lifecycle_transition_set_invalid_date (valid Expiration date, bad Transition date)
    return _rule_xml(
        "<Expiration><Date>2030-09-27T00:00:00.000Z</Date></Expiration>"
        f"<Transition><Date>{date}</Date><StorageClass>GLACIER</StorageClass></Transition>"
    )


@pytest.mark.parametrize(
    ("xml", "good"),
    [
        # s3-tests: test_lifecycle_set_invalid_date sends Date '20200101' (ISO 8601 basic form)
        (_expiration("20200101"), _expiration("2020-01-01")),  # good: test_lifecycle_set_date's form
        (_expiration("20200101T000000Z"), _expiration("2020-01-01T00:00:00.000Z")),
        # ISO week date: Python's fromisoformat takes it, S3's timestamp type does not
        (_expiration("2020-W01-3"), _expiration("2020-01-01T00:00:00+00:00")),
        (_expiration("2020-01-01 00:00:00"), _expiration("2020-01-01T00:00:00Z")),  # space for 'T'
        # s3-tests: test_lifecycle_transition_set_invalid_date sends Transition Date '20220927'
        (_transition("20220927"), _transition("2022-09-27")),
    ],
)
def test_lifecycle_date_not_extended_iso8601_is_refused(
    s3: Any, server: Server, bucket: str, xml: str, good: str
) -> None:
    """A Date outside ISO 8601's extended calendar form is a schema error and nothing is stored
    (before, ``20200101`` was read as 2020-01-01 and the rule accepted); the same date spelled in
    the extended form is still accepted and reads back as midnight UTC."""
    status, text = _put_lifecycle(server, bucket, xml)
    assert (status, _code(text)) == (400, "MalformedXML"), text
    with pytest.raises(ClientError) as e:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert e.value.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"
    status, text = _put_lifecycle(server, bucket, good)
    assert status == 200, text
    rule = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]
    dates = [rule["Expiration"]["Date"], *(t["Date"] for t in rule.get("Transitions", []))]
    assert all((d.hour, d.minute, d.second, d.utcoffset()) == (0, 0, 0, datetime.timedelta(0)) for d in dates)
