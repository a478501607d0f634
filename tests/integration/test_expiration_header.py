"""x-amz-expiration on PutObject, CopyObject, CompleteMultipartUpload, HeadObject and GetObject.

AWS: when an enabled lifecycle Expiration (Days or Date) rule applies to the current version, the
response carries ``expiry-date="<HTTP-date>", rule-id="<URL-encoded id>"`` (boto3: ``Expiration``);
Days-based expiry is rounded up to the next midnight UTC. Cases after s3-tests
test_lifecycle_expiration_header_put / _head / _tags_head / _and_tags_head, plus the rs3gw promise
that the date is when its lifecycle worker really expires the object (accelerated days).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import Server, fresh_bucket, start_server

DAY = 86400
HEADER = re.compile(r'^expiry-date="([^"]+)", rule-id="([^"]+)"$')


def _expiration(resp: dict[str, Any]) -> tuple[float, str] | None:
    """(expiry epoch, rule id) from the raw header, after checking boto3 parsed the same value."""
    raw = resp["ResponseMetadata"]["HTTPHeaders"].get("x-amz-expiration")
    assert resp.get("Expiration") == raw
    if raw is None:
        return None
    m = HEADER.match(raw)
    assert m is not None, raw
    assert m.group(1).endswith(" GMT")
    return parsedate_to_datetime(m.group(1)).timestamp(), m.group(2)


def _due(last_modified: float, days: int, day: float = DAY) -> float:
    """The lifecycle worker's due time (lifecycle_rules.due_time), computed independently."""
    return math.ceil((last_modified + days * day) / day) * day


def _lm(s3: Any, bucket: str, key: str, **kw: Any) -> float:
    return float(s3.head_object(Bucket=bucket, Key=key, **kw)["LastModified"].timestamp())


def _lifecycle(s3: Any, bucket: str, *rules: dict[str, Any]) -> None:
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": list(rules)})


@pytest.fixture
def bkt(s3: Any) -> Iterator[str]:
    with fresh_bucket(s3, "exph") as name:
        yield name


def test_put_head_get_days_rule(s3: Any, bkt: str) -> None:
    """s3-tests _put / _head: Days=1 on a prefix; objects outside it carry no header."""
    _lifecycle(
        s3,
        bkt,
        {"ID": "rule1", "Status": "Enabled", "Filter": {"Prefix": "days1/"}, "Expiration": {"Days": 1}},
    )
    start = time.time()
    put = s3.put_object(Bucket=bkt, Key="days1/foo", Body=b"bar")
    got = _expiration(put)
    assert got is not None
    when, rule = got
    assert rule == "rule1"
    lm = _lm(s3, bkt, "days1/foo")
    assert when == _due(lm, 1) and when % DAY == 0  # next midnight UTC after one day
    assert DAY <= when - start < 2 * DAY  # s3-tests: (expiry - now).days == 1
    assert _expiration(s3.head_object(Bucket=bkt, Key="days1/foo")) == got
    get = s3.get_object(Bucket=bkt, Key="days1/foo")
    assert get["Body"].read() == b"bar"
    assert _expiration(get) == got
    other = s3.put_object(Bucket=bkt, Key="keep/foo", Body=b"x")
    assert _expiration(other) is None
    assert _expiration(s3.head_object(Bucket=bkt, Key="keep/foo")) is None


def test_no_lifecycle_and_removed_lifecycle(s3: Any, bkt: str) -> None:
    s3.put_object(Bucket=bkt, Key="k", Body=b"x")
    assert _expiration(s3.head_object(Bucket=bkt, Key="k")) is None
    _lifecycle(s3, bkt, {"ID": "r", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 3}})
    assert _expiration(s3.head_object(Bucket=bkt, Key="k")) == (_due(_lm(s3, bkt, "k"), 3), "r")
    # A replaced configuration is answered at once (the rule cache is keyed by document text).
    _lifecycle(s3, bkt, {"ID": "r2", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 5}})
    assert _expiration(s3.head_object(Bucket=bkt, Key="k")) == (_due(_lm(s3, bkt, "k"), 5), "r2")
    s3.delete_bucket_lifecycle(Bucket=bkt)
    assert _expiration(s3.head_object(Bucket=bkt, Key="k")) is None


def test_tags_head(s3: Any, bkt: str) -> None:
    """s3-tests _tags_head: a Tag filter applies once the object has the tag (PutObjectTagging)."""
    _lifecycle(
        s3,
        bkt,
        {
            "ID": "rule1",
            "Status": "Enabled",
            "Filter": {"Tag": {"Key": "key1", "Value": "tag1"}},
            "Expiration": {"Days": 1},
        },
    )
    put = s3.put_object(Bucket=bkt, Key="obj_key1", Body=b"obj_key1_body")
    assert _expiration(put) is None
    assert _expiration(s3.head_object(Bucket=bkt, Key="obj_key1")) is None
    tags = {"TagSet": [{"Key": "key1", "Value": "tag1"}, {"Key": "key5", "Value": "tag5"}]}
    s3.put_object_tagging(Bucket=bkt, Key="obj_key1", Tagging=tags)
    lm = _lm(s3, bkt, "obj_key1")
    assert _expiration(s3.head_object(Bucket=bkt, Key="obj_key1")) == (_due(lm, 1), "rule1")
    # Tags given with the PUT itself count too.
    put = s3.put_object(Bucket=bkt, Key="tagged", Body=b"x", Tagging="key1=tag1")
    assert _expiration(put) == (_due(_lm(s3, bkt, "tagged"), 1), "rule1")
    # ... and the header is not sent when no rule applies.
    _lifecycle(
        s3,
        bkt,
        {
            "ID": "rule1",
            "Status": "Enabled",
            "Filter": {"Tag": {"Key": "key2", "Value": "tag1"}},
            "Expiration": {"Days": 1},
        },
    )
    assert _expiration(s3.head_object(Bucket=bkt, Key="obj_key1")) is None


def test_and_tags_head(s3: Any, bkt: str) -> None:
    """s3-tests _and_tags_head: an And filter needs every tag (key5=tag6 is not key5=tag5)."""
    flt = {"And": {"Tags": [{"Key": "key1", "Value": "tag1"}, {"Key": "key5", "Value": "tag6"}]}}
    _lifecycle(s3, bkt, {"ID": "rule1", "Status": "Enabled", "Filter": flt, "Expiration": {"Days": 1}})
    s3.put_object(Bucket=bkt, Key="obj_key1", Body=b"obj_key1_body")
    s3.put_object_tagging(
        Bucket=bkt,
        Key="obj_key1",
        Tagging={"TagSet": [{"Key": "key1", "Value": "tag1"}, {"Key": "key5", "Value": "tag5"}]},
    )
    assert _expiration(s3.head_object(Bucket=bkt, Key="obj_key1")) is None
    s3.put_object_tagging(
        Bucket=bkt,
        Key="obj_key1",
        Tagging={"TagSet": [{"Key": "key1", "Value": "tag1"}, {"Key": "key5", "Value": "tag6"}]},
    )
    lm = _lm(s3, bkt, "obj_key1")
    assert _expiration(s3.head_object(Bucket=bkt, Key="obj_key1")) == (_due(lm, 1), "rule1")


def test_earliest_rule_size_date_disabled_and_encoded_id(s3: Any, bkt: str) -> None:
    date = (int(time.time()) // DAY + 10) * DAY
    date_iso = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(date))
    _lifecycle(
        s3,
        bkt,
        {"ID": "late", "Status": "Enabled", "Filter": {"Prefix": "a/"}, "Expiration": {"Days": 30}},
        {"ID": "my rule/1", "Status": "Enabled", "Filter": {"Prefix": "a/b"}, "Expiration": {"Days": 7}},
        {"ID": "off", "Status": "Disabled", "Filter": {}, "Expiration": {"Days": 1}},
        {"ID": "dated", "Status": "Enabled", "Filter": {"Prefix": "d/"}, "Expiration": {"Date": date_iso}},
        {
            "ID": "sized",
            "Status": "Enabled",
            "Filter": {"And": {"Prefix": "s/", "ObjectSizeGreaterThan": 5, "ObjectSizeLessThan": 100}},
            "Expiration": {"Days": 2},
        },
        {
            "ID": "nc",
            "Status": "Enabled",
            "Filter": {"Prefix": "n/"},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        },
        {
            "ID": "dm",
            "Status": "Enabled",
            "Filter": {"Prefix": "m/"},
            "Expiration": {"ExpiredObjectDeleteMarker": True},
        },
    )
    raw = s3.put_object(Bucket=bkt, Key="a/b/c", Body=b"x")["ResponseMetadata"]["HTTPHeaders"][
        "x-amz-expiration"
    ]
    assert raw.endswith('rule-id="my%20rule%2F1"')  # the id is URL-encoded, as AWS documents
    assert _expiration(s3.head_object(Bucket=bkt, Key="a/b/c")) == (
        _due(_lm(s3, bkt, "a/b/c"), 7),
        "my%20rule%2F1",
    )
    assert _expiration(s3.put_object(Bucket=bkt, Key="a/z", Body=b"x")) == (
        _due(_lm(s3, bkt, "a/z"), 30),
        "late",
    )
    assert _expiration(s3.put_object(Bucket=bkt, Key="d/x", Body=b"x")) == (float(date), "dated")
    assert _expiration(s3.put_object(Bucket=bkt, Key="s/small", Body=b"x" * 5)) is None
    assert _expiration(s3.put_object(Bucket=bkt, Key="s/mid", Body=b"x" * 6)) == (
        _due(_lm(s3, bkt, "s/mid"), 2),
        "sized",
    )
    assert _expiration(s3.put_object(Bucket=bkt, Key="s/big", Body=b"x" * 100)) is None
    assert _expiration(s3.put_object(Bucket=bkt, Key="n/x", Body=b"x")) is None
    assert _expiration(s3.put_object(Bucket=bkt, Key="m/x", Body=b"x")) is None
    assert _expiration(s3.get_object(Bucket=bkt, Key="n/x")) is None


def test_versioned_bucket_current_version_only(s3: Any, bkt: str) -> None:
    s3.put_bucket_versioning(Bucket=bkt, VersioningConfiguration={"Status": "Enabled"})
    _lifecycle(
        s3,
        bkt,
        {
            "ID": "cur",
            "Status": "Enabled",
            "Filter": {},
            "Expiration": {"Days": 4},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        },
    )
    v1 = s3.put_object(Bucket=bkt, Key="k", Body=b"1")
    v2 = s3.put_object(Bucket=bkt, Key="k", Body=b"2")
    lm2 = _lm(s3, bkt, "k")
    assert _expiration(v2) == (_due(lm2, 4), "cur")
    assert _expiration(s3.head_object(Bucket=bkt, Key="k", VersionId=v2["VersionId"])) == (
        _due(lm2, 4),
        "cur",
    )
    # The older version is noncurrent: Expiration does not apply to it.
    assert _expiration(s3.head_object(Bucket=bkt, Key="k", VersionId=v1["VersionId"])) is None
    assert _expiration(s3.get_object(Bucket=bkt, Key="k", VersionId=v1["VersionId"])) is None


def test_copy_and_complete_multipart(s3: Any, bkt: str) -> None:
    _lifecycle(
        s3,
        bkt,
        {
            "ID": "t",
            "Status": "Enabled",
            "Filter": {"Tag": {"Key": "gone", "Value": "yes"}},
            "Expiration": {"Days": 2},
        },
        {"ID": "p", "Status": "Enabled", "Filter": {"Prefix": "copies/"}, "Expiration": {"Days": 9}},
    )
    s3.put_object(Bucket=bkt, Key="src", Body=b"data", Tagging="gone=yes")
    # Tags copied (default directive): the tag rule applies to the copy.
    c1 = s3.copy_object(Bucket=bkt, Key="c1", CopySource={"Bucket": bkt, "Key": "src"})
    assert _expiration(c1) == (_due(_lm(s3, bkt, "c1"), 2), "t")
    # Tags replaced: only what the new tags and key select.
    c2 = s3.copy_object(
        Bucket=bkt,
        Key="copies/c2",
        CopySource={"Bucket": bkt, "Key": "src"},
        TaggingDirective="REPLACE",
        Tagging="a=b",
    )
    assert _expiration(c2) == (_due(_lm(s3, bkt, "copies/c2"), 9), "p")
    c3 = s3.copy_object(
        Bucket=bkt, Key="c3", CopySource={"Bucket": bkt, "Key": "src"}, TaggingDirective="REPLACE"
    )
    assert _expiration(c3) is None
    # CompleteMultipartUpload: the tags come from CreateMultipartUpload.
    for key, tagging, expected in (("mp1", "gone=yes", "t"), ("mp2", "", None)):
        up = s3.create_multipart_upload(Bucket=bkt, Key=key, Tagging=tagging)
        part = s3.upload_part(Bucket=bkt, Key=key, UploadId=up["UploadId"], PartNumber=1, Body=b"p" * 10)
        done = s3.complete_multipart_upload(
            Bucket=bkt,
            Key=key,
            UploadId=up["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )
        if expected is None:
            assert _expiration(done) is None
        else:
            assert _expiration(done) == (_due(_lm(s3, bkt, key), 2), expected)
        assert _expiration(s3.head_object(Bucket=bkt, Key=key)) == _expiration(done)


ACCEL_DAY = 2  # seconds per lifecycle day (whole seconds, so the header's second is exact)


@pytest.fixture(scope="module")
def accelerated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data: Path = tmp_path_factory.mktemp("exph-accel") / "data"
    srv = start_server(data, "--lifecycle-day-seconds", str(ACCEL_DAY), "--lifecycle-interval", "0.1")
    yield srv
    srv.stop()


def test_header_agrees_with_when_the_worker_expires(accelerated: Server) -> None:
    """With --lifecycle-day-seconds the header reports the worker's (accelerated) due time, and the
    object disappears at that time: not before it, and soon after."""
    s3 = accelerated.client()
    with fresh_bucket(s3, "exph-accel") as b:
        _lifecycle(s3, b, {"ID": "fast", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 3}})
        put = s3.put_object(Bucket=b, Key="k", Body=b"x")
        got = _expiration(put)
        assert got is not None
        when, rule = got
        lm = _lm(s3, b, "k")
        # LastModified shows whole seconds; the worker counts from the exact time, within [lm, lm + 1).
        assert rule == "fast" and when in (_due(lm, 3, ACCEL_DAY), _due(lm + 0.999, 3, ACCEL_DAY))
        assert lm + 3 * ACCEL_DAY <= when < lm + 4 * ACCEL_DAY + 1
        assert _expiration(s3.head_object(Bucket=b, Key="k")) == got
        gone_at = None
        while time.time() < when + 10:
            try:
                s3.head_object(Bucket=b, Key="k")
            except ClientError as e:
                assert e.response["Error"]["Code"] == "404"
                gone_at = time.time()
                break
            time.sleep(0.05)
        assert gone_at is not None, "the worker did not expire the object"
        assert gone_at >= when  # never before the date the header announced
        assert gone_at < when + 5  # and at it (worker interval 0.1 s, plus load on a shared box)
