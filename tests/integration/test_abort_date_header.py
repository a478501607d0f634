"""x-amz-abort-date and x-amz-abort-rule-id on CreateMultipartUpload and ListParts.

AWS: when an enabled lifecycle rule with AbortIncompleteMultipartUpload (DaysAfterInitiation)
applies to the upload's key by prefix, both responses carry the date the upload becomes eligible
for abort (an HTTP-date, boto3 ``AbortDate``) and the rule's ID (``AbortRuleId``); UploadPart and
CompleteMultipartUpload do not. rs3gw's promise: the date is when its lifecycle worker really
aborts the upload (same due time and day length; checked with accelerated days).
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from test_expiration_header import ACCEL_DAY, accelerated  # noqa: F401 - its accelerated-lifecycle server fixture

from conftest import Server, fresh_bucket

DAY = 86400
HEADERS = ("x-amz-abort-date", "x-amz-abort-rule-id")


def _abort(resp: dict[str, Any]) -> tuple[float, str] | None:
    """(abort epoch, rule id) from the raw headers, after checking boto3 parsed the same values."""
    raw = resp["ResponseMetadata"]["HTTPHeaders"]
    date, rule = raw.get("x-amz-abort-date"), raw.get("x-amz-abort-rule-id")
    assert (date is None) == (rule is None), raw
    if date is None or rule is None:
        assert "AbortDate" not in resp and "AbortRuleId" not in resp
        return None
    assert date.endswith(" GMT"), date
    when = parsedate_to_datetime(date).timestamp()
    assert isinstance(resp["AbortDate"], datetime) and resp["AbortDate"].timestamp() == when
    assert resp["AbortRuleId"] == rule
    return when, rule


def _due(initiated: float, days: int, day: float = DAY) -> float:
    """The lifecycle worker's due time (lifecycle_rules.due_time), computed independently."""
    return math.ceil((initiated + days * day) / day) * day


def _initiated(s3: Any, bucket: str, upload_id: str) -> float:
    for up in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        if up["UploadId"] == upload_id:
            return float(up["Initiated"].timestamp())
    raise AssertionError(f"upload {upload_id} not listed")


def _lifecycle(s3: Any, bucket: str, *rules: dict[str, Any]) -> None:
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": list(rules)})


def _abort_rule(rid: str, days: int, flt: dict[str, Any], status: str = "Enabled") -> dict[str, Any]:
    return {
        "ID": rid,
        "Status": status,
        "Filter": flt,
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days},
    }


@pytest.fixture
def bkt(s3: Any) -> Iterator[str]:
    with fresh_bucket(s3, "abrt") as name:
        yield name


def test_create_and_list_parts_prefix_rule(s3: Any, bkt: str) -> None:
    _lifecycle(s3, bkt, _abort_rule("rule1", 2, {"Prefix": "up/"}))
    start = time.time()
    up = s3.create_multipart_upload(Bucket=bkt, Key="up/obj")
    got = _abort(up)
    assert got is not None
    when, rule = got
    assert rule == "rule1"
    assert when == _due(_initiated(s3, bkt, up["UploadId"]), 2) and when % DAY == 0
    assert 2 * DAY <= when - start < 3 * DAY + 5
    # ListParts reports the same, with and without parts.
    assert _abort(s3.list_parts(Bucket=bkt, Key="up/obj", UploadId=up["UploadId"])) == got
    part = s3.upload_part(Bucket=bkt, Key="up/obj", UploadId=up["UploadId"], PartNumber=1, Body=b"p" * 10)
    # UploadPart does not carry the headers (not in its AWS response).
    assert not set(HEADERS) & set(part["ResponseMetadata"]["HTTPHeaders"])
    assert _abort(s3.list_parts(Bucket=bkt, Key="up/obj", UploadId=up["UploadId"])) == got
    done = s3.complete_multipart_upload(
        Bucket=bkt,
        Key="up/obj",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert not set(HEADERS) & set(done["ResponseMetadata"]["HTTPHeaders"])
    # A key outside the prefix: no headers.
    other = s3.create_multipart_upload(Bucket=bkt, Key="keep/obj")
    assert _abort(other) is None
    assert _abort(s3.list_parts(Bucket=bkt, Key="keep/obj", UploadId=other["UploadId"])) is None


def test_no_lifecycle_then_changed_then_removed(s3: Any, bkt: str) -> None:
    up = s3.create_multipart_upload(Bucket=bkt, Key="k")
    uid = up["UploadId"]
    assert _abort(up) is None
    assert _abort(s3.list_parts(Bucket=bkt, Key="k", UploadId=uid)) is None
    init = _initiated(s3, bkt, uid)
    # ListParts answers from the current rules, as the worker does.
    _lifecycle(s3, bkt, _abort_rule("r", 3, {}))
    assert _abort(s3.list_parts(Bucket=bkt, Key="k", UploadId=uid)) == (_due(init, 3), "r")
    _lifecycle(s3, bkt, _abort_rule("r2", 5, {"Prefix": ""}))
    assert _abort(s3.list_parts(Bucket=bkt, Key="k", UploadId=uid)) == (_due(init, 5), "r2")
    s3.delete_bucket_lifecycle(Bucket=bkt)
    assert _abort(s3.list_parts(Bucket=bkt, Key="k", UploadId=uid)) is None


def test_earliest_rule_and_prefix_disabled_and_other_actions(s3: Any, bkt: str) -> None:
    _lifecycle(
        s3,
        bkt,
        _abort_rule("late", 30, {"Prefix": "a/"}),
        _abort_rule("my rule.1", 7, {"And": {"Prefix": "a/b", "ObjectSizeGreaterThan": 1}}),
        _abort_rule("off", 1, {}, status="Disabled"),
        {"ID": "expire", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}},
        {
            "ID": "tagged-expire",
            "Status": "Enabled",
            "Filter": {"Tag": {"Key": "t", "Value": "v"}},
            "Expiration": {"Days": 1},
        },
    )
    ab = s3.create_multipart_upload(Bucket=bkt, Key="a/b/c", Tagging="t=v")
    assert _abort(ab) == (_due(_initiated(s3, bkt, ab["UploadId"]), 7), "my rule.1")
    az = s3.create_multipart_upload(Bucket=bkt, Key="a/z")
    assert _abort(az) == (_due(_initiated(s3, bkt, az["UploadId"]), 30), "late")
    # Expiration-only rules (with or without tags) and disabled rules never abort an upload.
    none = s3.create_multipart_upload(Bucket=bkt, Key="z", Tagging="t=v")
    assert _abort(none) is None
    assert _abort(s3.list_parts(Bucket=bkt, Key="z", UploadId=none["UploadId"])) is None


def test_non_ascii_rule_id_travels_mail_safe(s3: Any, bkt: str) -> None:
    _lifecycle(s3, bkt, _abort_rule("règle", 1, {}))
    up = s3.create_multipart_upload(Bucket=bkt, Key="k")
    got = _abort(up)
    assert got is not None
    encoded = got[1]
    assert encoded.startswith("=?UTF-8?B?") and encoded.endswith("?=")
    assert base64.b64decode(encoded[10:-2]).decode() == "règle"


def test_header_agrees_with_when_the_worker_aborts(accelerated: Server) -> None:  # noqa: F811
    """With --lifecycle-day-seconds the headers report the worker's (accelerated) due time, and the
    upload disappears at that time: not before it, and soon after."""
    s3 = accelerated.client()
    with fresh_bucket(s3, "abrt-accel") as b:
        _lifecycle(s3, b, _abort_rule("fast", 2, {"Prefix": "x/"}))
        before = time.time()
        up = s3.create_multipart_upload(Bucket=b, Key="x/k")
        after = time.time()
        keep = s3.create_multipart_upload(Bucket=b, Key="y/k")
        got = _abort(up)
        assert got is not None
        when, rule = got
        assert rule == "fast"
        # The worker's due time from the initiation the server recorded (between before and after).
        assert _due(before, 2, ACCEL_DAY) <= when <= _due(after, 2, ACCEL_DAY)
        assert before + 2 * ACCEL_DAY <= when < after + 3 * ACCEL_DAY + 1
        s3.upload_part(Bucket=b, Key="x/k", UploadId=up["UploadId"], PartNumber=1, Body=b"p")
        gone_at = None
        while time.time() < when + 10:
            try:
                listed = s3.list_parts(Bucket=b, Key="x/k", UploadId=up["UploadId"])
            except ClientError as e:
                assert e.response["Error"]["Code"] == "NoSuchUpload"
                gone_at = time.time()
                break
            assert _abort(listed) == got
            time.sleep(0.05)
        assert gone_at is not None, "the worker did not abort the upload"
        assert gone_at >= when  # never before the date the header announced
        assert gone_at < when + 5  # and at it (worker interval 0.1 s, plus load on a shared box)
        # The upload outside the rule's prefix is left alone.
        assert _abort(s3.list_parts(Bucket=b, Key="y/k", UploadId=keep["UploadId"])) is None
