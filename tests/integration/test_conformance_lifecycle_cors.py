"""Lifecycle and CORS conformance cases from ceph/s3-tests (s3tests_boto3/functional/test_s3.py)
where rs3gw differed from S3, reproduced with raw signed requests against a real server.

Every other test_lifecycle_* configuration case and every test_cors_* case checked in that pass
already behaved as S3 does (see tests/integration/test_lifecycle_config.py and test_cors.py).
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from test_lifecycle_config import _code, _raw_put  # SigV4-signed PUT ?lifecycle of hand-written XML

from conftest import Server


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
    status, text = _raw_put(server, bucket, xml)
    assert (status, _code(text)) == (400, "MalformedXML"), text
    with pytest.raises(ClientError) as e:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert e.value.response["Error"]["Code"] == "NoSuchLifecycleConfiguration"
    status, text = _raw_put(server, bucket, good)
    assert status == 200, text
    rule = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]
    dates = [rule["Expiration"]["Date"], *(t["Date"] for t in rule.get("Transitions", []))]
    assert all((d.hour, d.minute, d.second, d.utcoffset()) == (0, 0, 0, datetime.timedelta(0)) for d in dates)
