"""Object Lock bucket configuration through boto3: CreateBucket with lock, Put/GetObjectLockConfiguration
and their errors, the versioning it pins, and default retention applied to new versions."""

from __future__ import annotations

import base64
import datetime
import hashlib
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from object_lock_helpers import delete_all_versions, err, error_code, hdrs, lock_bucket, signed

from conftest import Server, fresh_bucket


def test_create_bucket_with_lock_enables_versioning_and_config(s3: Any) -> None:
    with lock_bucket(s3) as b:
        assert s3.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"
        cfg = s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"]
        assert cfg == {"ObjectLockEnabled": "Enabled"}


def test_versioning_cannot_be_suspended_on_lock_bucket(s3: Any) -> None:
    with lock_bucket(s3) as b:
        with pytest.raises(ClientError) as e:
            s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})
        assert err(e) == ("InvalidBucketState", 409)
        s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})  # a no-op is fine
        assert s3.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"


def test_config_not_found_on_plain_bucket(s3: Any) -> None:
    with fresh_bucket(s3) as b:
        with pytest.raises(ClientError) as e:
            s3.get_object_lock_configuration(Bucket=b)
        assert err(e) == ("ObjectLockConfigurationNotFoundError", 404)


def test_missing_bucket(s3: Any) -> None:
    with pytest.raises(ClientError) as e:
        s3.get_object_lock_configuration(Bucket=f"nope-{uuid.uuid4().hex[:8]}")
    assert err(e) == ("NoSuchBucket", 404)


def test_enable_lock_on_existing_bucket_needs_versioning(s3: Any) -> None:
    conf = {"ObjectLockEnabled": "Enabled"}
    with fresh_bucket(s3) as b:
        with pytest.raises(ClientError) as e:
            s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration=conf)
        assert err(e) == ("InvalidBucketState", 409)
        s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})
        with pytest.raises(ClientError) as e:
            s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration=conf)
        assert err(e) == ("InvalidBucketState", 409)
        s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration=conf)
        assert s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"] == conf
        with pytest.raises(ClientError) as e:
            s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})
        assert err(e) == ("InvalidBucketState", 409)
        s3.put_object(Bucket=b, Key="k", Body=b"x", ObjectLockLegalHoldStatus="ON")
        delete_all_versions(s3, b)
        s3.create_bucket(Bucket=b)  # so that fresh_bucket's cleanup finds it


def test_default_rule_round_trip_and_replace(s3: Any) -> None:
    with lock_bucket(s3) as b:
        for rule in ({"Mode": "GOVERNANCE", "Days": 3}, {"Mode": "COMPLIANCE", "Years": 2}):
            conf = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": rule}}
            s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration=conf)
            assert s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"] == conf
        # Putting the configuration without a Rule removes the default retention.
        s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
        got = s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"]
        assert got == {"ObjectLockEnabled": "Enabled"}


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        ({"Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}}, "MalformedXML"),
        ({"ObjectLockEnabled": "Disabled"}, "MalformedXML"),
        (
            {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE"}}},
            "MalformedXML",
        ),
        (
            {
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1, "Years": 1}},
            },
            "MalformedXML",
        ),
        ({"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Days": 1}}}, "MalformedXML"),
        (
            {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "FOREVER", "Days": 1}}},
            "MalformedXML",
        ),
        ({"ObjectLockEnabled": "Enabled", "Rule": {}}, "MalformedXML"),
        (
            {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 0}}},
            "InvalidArgument",
        ),
        (
            {
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Years": -1}},
            },
            "InvalidArgument",
        ),
    ],
)
def test_bad_configurations(s3: Any, conf: dict[str, Any], expected: str) -> None:
    with lock_bucket(s3) as b:
        with pytest.raises(ClientError) as e:
            s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration=conf)
        assert err(e) == (expected, 400)
        assert s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"] == {
            "ObjectLockEnabled": "Enabled"
        }


def test_not_xml_is_malformed(server: Server, s3: Any) -> None:
    with lock_bucket(s3) as b:
        body = b"not xml"
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        status, data = signed(server, "PUT", f"/{b}?object-lock", body, {"Content-MD5": md5})
        assert (status, error_code(data)) == (400, "MalformedXML")


def test_lock_configuration_requires_a_digest(server: Server, s3: Any) -> None:
    body = (
        b'<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>"
    )
    with lock_bucket(s3) as b:
        status, data = signed(server, "PUT", f"/{b}?object-lock", body)
        assert (status, error_code(data)) == (400, "InvalidRequest")
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        assert signed(server, "PUT", f"/{b}?object-lock", body, {"Content-MD5": md5})[0] == 200
        status, data = signed(
            server, "PUT", f"/{b}?object-lock", body, {"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="}
        )
        assert (status, error_code(data)) == (400, "BadDigest")


def _until(resp: dict[str, Any]) -> datetime.datetime:
    value = resp["ObjectLockRetainUntilDate"]
    assert isinstance(value, datetime.datetime)
    return value


def test_default_retention_applies_to_new_versions(s3: Any) -> None:
    with lock_bucket(s3) as b:
        s3.put_object(Bucket=b, Key="before", Body=b"x")
        conf = {
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        }
        s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration=conf)
        now = datetime.datetime.now(datetime.UTC)
        put = s3.put_object(Bucket=b, Key="after", Body=b"y")
        head = s3.head_object(Bucket=b, Key="after")
        assert head["ObjectLockMode"] == "GOVERNANCE"
        assert abs((_until(head) - now - datetime.timedelta(days=1)).total_seconds()) < 60
        r = s3.get_object_retention(Bucket=b, Key="after", VersionId=put["VersionId"])["Retention"]
        assert r["Mode"] == "GOVERNANCE" and r["RetainUntilDate"] == _until(head)
        # Versions written before the rule keep having none.
        assert "ObjectLockMode" not in s3.head_object(Bucket=b, Key="before")
        with pytest.raises(ClientError) as e:
            s3.delete_object(Bucket=b, Key="after", VersionId=put["VersionId"])
        assert err(e) == ("AccessDenied", 403)
        # Explicit headers win over the default.
        later = now + datetime.timedelta(days=9)
        s3.put_object(
            Bucket=b, Key="explicit", Body=b"z", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=later
        )
        assert abs((_until(s3.head_object(Bucket=b, Key="explicit")) - later).total_seconds()) < 1
        years = {
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Years": 1}},
        }
        s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration=years)
        s3.put_object(Bucket=b, Key="year", Body=b"y")
        span = _until(s3.head_object(Bucket=b, Key="year")) - now
        assert datetime.timedelta(days=365) <= span <= datetime.timedelta(days=366, minutes=1)


def test_default_retention_requires_a_digest_on_put(server: Server, s3: Any) -> None:
    with lock_bucket(s3) as b:
        assert signed(server, "PUT", f"/{b}/plain", b"data")[0] == 200  # no default: no digest needed
        conf = {
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        }
        s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration=conf)
        status, data = signed(server, "PUT", f"/{b}/k", b"data")
        assert (status, error_code(data)) == (400, "InvalidRequest")
        md5 = base64.b64encode(hashlib.md5(b"data").digest()).decode()
        assert signed(server, "PUT", f"/{b}/k", b"data", {"Content-MD5": md5})[0] == 200
        assert hdrs(s3.head_object(Bucket=b, Key="k"))["x-amz-object-lock-mode"] == "GOVERNANCE"
