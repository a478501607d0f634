"""Object Lock per version through boto3: lock headers on PUT and GET/HEAD, Put/GetObjectRetention,
Put/GetObjectLegalHold, GOVERNANCE with and without bypass, COMPLIANCE until expiry, legal hold,
delete markers over locked versions, DeleteObjects per-key errors, and every error code."""

from __future__ import annotations

import base64
import datetime
import hashlib
from typing import Any

import pytest
from botocore.exceptions import ClientError
from object_lock_helpers import ahead, err, error_code, hdrs, lock_bucket, signed, wait_until

from conftest import Server, fresh_bucket


def _put_locked(s3: Any, b: str, key: str, mode: str, until: datetime.datetime, body: bytes = b"v") -> str:
    vid: str = s3.put_object(
        Bucket=b, Key=key, Body=body, ObjectLockMode=mode, ObjectLockRetainUntilDate=until
    )["VersionId"]
    return vid


def _denied(fn: Any, **kw: Any) -> None:
    with pytest.raises(ClientError) as e:
        fn(**kw)
    assert err(e) == ("AccessDenied", 403)
    assert "object lock" in e.value.response["Error"]["Message"]


def test_lock_headers_on_put_are_returned_by_get_head_and_retention(s3: Any) -> None:
    with lock_bucket(s3) as b:
        until = ahead(3600).replace(microsecond=0)  # boto3 sends header dates in whole seconds
        vid = s3.put_object(
            Bucket=b,
            Key="k",
            Body=b"data",
            ObjectLockMode="GOVERNANCE",
            ObjectLockRetainUntilDate=until,
            ObjectLockLegalHoldStatus="ON",
        )["VersionId"]
        for resp in (s3.head_object(Bucket=b, Key="k"), s3.get_object(Bucket=b, Key="k", VersionId=vid)):
            assert resp["ObjectLockMode"] == "GOVERNANCE"
            assert resp["ObjectLockRetainUntilDate"] == until
            assert resp["ObjectLockLegalHoldStatus"] == "ON"
        assert s3.get_object_retention(Bucket=b, Key="k")["Retention"] == {
            "Mode": "GOVERNANCE",
            "RetainUntilDate": until,
        }
        assert s3.get_object_legal_hold(Bucket=b, Key="k", VersionId=vid)["LegalHold"] == {"Status": "ON"}
        s3.put_object_legal_hold(Bucket=b, Key="k", VersionId=vid, LegalHold={"Status": "OFF"})


def test_plain_object_has_no_lock_state(s3: Any) -> None:
    with lock_bucket(s3) as b:
        s3.put_object(Bucket=b, Key="k", Body=b"x")
        h = hdrs(s3.head_object(Bucket=b, Key="k"))
        assert not [k for k in h if k.startswith("x-amz-object-lock")]
        for fn in (s3.get_object_retention, s3.get_object_legal_hold):
            with pytest.raises(ClientError) as e:
                fn(Bucket=b, Key="k")
            assert err(e) == ("NoSuchObjectLockConfiguration", 400)
        s3.delete_object(Bucket=b, Key="k", VersionId=s3.head_object(Bucket=b, Key="k")["VersionId"])


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"ObjectLockMode": "GOVERNANCE"}, "InvalidRequest"),
        ({"ObjectLockRetainUntilDate": ahead(3600)}, "InvalidRequest"),
        ({"ObjectLockMode": "FOREVER", "ObjectLockRetainUntilDate": ahead(3600)}, "InvalidArgument"),
        ({"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": ahead(-60)}, "InvalidRequest"),
        ({"ObjectLockLegalHoldStatus": "MAYBE"}, "InvalidArgument"),
    ],
)
def test_bad_lock_headers(s3: Any, extra: dict[str, Any], expected: str) -> None:
    with lock_bucket(s3) as b:
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=b, Key="k", Body=b"x", **extra)
        assert err(e) == (expected, 400)
        assert "Versions" not in s3.list_object_versions(Bucket=b)


def test_bad_retain_until_header_format(server: Server, s3: Any) -> None:
    with lock_bucket(s3) as b:
        md5 = base64.b64encode(hashlib.md5(b"x").digest()).decode()
        h = {
            "Content-MD5": md5,
            "x-amz-object-lock-mode": "GOVERNANCE",
            "x-amz-object-lock-retain-until-date": "soon",
        }
        status, data = signed(server, "PUT", f"/{b}/k", b"x", h)
        assert (status, error_code(data)) == (400, "InvalidArgument")


def test_lock_on_bucket_without_object_lock(s3: Any) -> None:
    with fresh_bucket(s3) as b:
        with pytest.raises(ClientError) as e:
            s3.put_object(Bucket=b, Key="k", Body=b"x", ObjectLockLegalHoldStatus="ON")
        assert err(e) == ("InvalidRequest", 400)
        s3.put_object(Bucket=b, Key="k", Body=b"x")
        calls = [
            (s3.put_object_retention, {"Retention": {"Mode": "GOVERNANCE", "RetainUntilDate": ahead(60)}}),
            (s3.get_object_retention, {}),
            (s3.put_object_legal_hold, {"LegalHold": {"Status": "ON"}}),
            (s3.get_object_legal_hold, {}),
        ]
        for fn, kw in calls:
            with pytest.raises(ClientError) as e:
                fn(Bucket=b, Key="k", **kw)
            assert err(e) == ("InvalidRequest", 400), fn
            assert "Object Lock" in e.value.response["Error"]["Message"]


def test_put_with_lock_headers_requires_a_digest(server: Server, s3: Any) -> None:
    with lock_bucket(s3) as b:
        h = {"x-amz-object-lock-legal-hold": "ON"}
        status, data = signed(server, "PUT", f"/{b}/k", b"data", h)
        assert (status, error_code(data)) == (400, "InvalidRequest")
        md5 = base64.b64encode(hashlib.md5(b"data").digest()).decode()
        assert signed(server, "PUT", f"/{b}/k", b"data", {**h, "Content-MD5": md5})[0] == 200
        crc = s3.put_object(
            Bucket=b, Key="k2", Body=b"data", ChecksumAlgorithm="CRC32", ObjectLockLegalHoldStatus="ON"
        )
        assert crc["ChecksumCRC32"]
        assert s3.get_object_legal_hold(Bucket=b, Key="k")["LegalHold"]["Status"] == "ON"


def test_lock_operations_require_a_digest(server: Server, s3: Any) -> None:
    with lock_bucket(s3) as b:
        s3.put_object(Bucket=b, Key="k", Body=b"x")
        legal = b'<LegalHold xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>ON</Status></LegalHold>'
        status, data = signed(server, "PUT", f"/{b}/k?legal-hold", legal)
        assert (status, error_code(data)) == (400, "InvalidRequest")
        until = ahead(60).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
        ret = (
            b"<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>" + until + b"</RetainUntilDate></Retention>"
        )
        status, data = signed(server, "PUT", f"/{b}/k?retention", ret)
        assert (status, error_code(data)) == (400, "InvalidRequest")
        with pytest.raises(ClientError):
            s3.get_object_retention(Bucket=b, Key="k")


def test_governance_needs_bypass_to_delete_or_shorten(s3: Any) -> None:
    with lock_bucket(s3) as b:
        until = ahead(3600)
        vid = _put_locked(s3, b, "g", "GOVERNANCE", until)
        _denied(s3.delete_object, Bucket=b, Key="g", VersionId=vid)
        shorter = {"Mode": "GOVERNANCE", "RetainUntilDate": ahead(1800)}
        _denied(s3.put_object_retention, Bucket=b, Key="g", VersionId=vid, Retention=shorter)
        _denied(s3.put_object_retention, Bucket=b, Key="g", VersionId=vid, Retention={})
        # Extending needs no bypass; so does strengthening to COMPLIANCE... tested below.
        longer = ahead(7200)
        s3.put_object_retention(
            Bucket=b, Key="g", VersionId=vid, Retention={"Mode": "GOVERNANCE", "RetainUntilDate": longer}
        )
        assert s3.head_object(Bucket=b, Key="g")["ObjectLockRetainUntilDate"] == longer.replace(
            microsecond=longer.microsecond // 1000 * 1000
        )
        s3.put_object_retention(
            Bucket=b, Key="g", VersionId=vid, Retention=shorter, BypassGovernanceRetention=True
        )
        r = s3.get_object_retention(Bucket=b, Key="g", VersionId=vid)["Retention"]
        assert abs((r["RetainUntilDate"] - shorter["RetainUntilDate"]).total_seconds()) < 0.01
        # Removing it with the bypass leaves no retention at all.
        s3.put_object_retention(
            Bucket=b, Key="g", VersionId=vid, Retention={}, BypassGovernanceRetention=True
        )
        with pytest.raises(ClientError) as e:
            s3.get_object_retention(Bucket=b, Key="g", VersionId=vid)
        assert err(e) == ("NoSuchObjectLockConfiguration", 400)
        s3.put_object_retention(
            Bucket=b, Key="g", VersionId=vid, Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until}
        )
        _denied(s3.delete_object, Bucket=b, Key="g", VersionId=vid)
        s3.delete_object(Bucket=b, Key="g", VersionId=vid, BypassGovernanceRetention=True)
        assert "Versions" not in s3.list_object_versions(Bucket=b)


def test_compliance_is_never_weakened_and_expires(s3: Any) -> None:
    with lock_bucket(s3) as b:
        until = ahead(5)  # seconds of slack: a loaded machine must not see "weaker" dates pass
        vid = _put_locked(s3, b, "c", "COMPLIANCE", until)
        _denied(s3.delete_object, Bucket=b, Key="c", VersionId=vid, BypassGovernanceRetention=True)
        weaker = [
            {"Mode": "COMPLIANCE", "RetainUntilDate": ahead(3)},
            {"Mode": "GOVERNANCE", "RetainUntilDate": ahead(60)},
            {},
        ]
        for r in weaker:
            _denied(
                s3.put_object_retention,
                Bucket=b,
                Key="c",
                VersionId=vid,
                Retention=r,
                BypassGovernanceRetention=True,
            )
        longer = ahead(7)
        s3.put_object_retention(
            Bucket=b, Key="c", VersionId=vid, Retention={"Mode": "COMPLIANCE", "RetainUntilDate": longer}
        )
        wait_until(longer)
        # Expired: the version can be deleted (and its retention could be changed freely).
        s3.delete_object(Bucket=b, Key="c", VersionId=vid)
        assert "Versions" not in s3.list_object_versions(Bucket=b)


def test_governance_can_become_compliance_but_not_back(s3: Any) -> None:
    with lock_bucket(s3) as b:
        vid = _put_locked(s3, b, "k", "GOVERNANCE", ahead(4))  # still ahead when a loaded run gets there
        until = ahead(5)
        s3.put_object_retention(
            Bucket=b,
            Key="k",
            VersionId=vid,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until},
            BypassGovernanceRetention=True,  # changing GOVERNANCE's mode is an override, as on S3
        )
        assert s3.head_object(Bucket=b, Key="k")["ObjectLockMode"] == "COMPLIANCE"
        _denied(
            s3.put_object_retention,
            Bucket=b,
            Key="k",
            VersionId=vid,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": ahead(60)},
            BypassGovernanceRetention=True,
        )
        wait_until(until)


def test_delete_marker_over_locked_version(s3: Any) -> None:
    with lock_bucket(s3) as b:
        vid = _put_locked(s3, b, "k", "GOVERNANCE", ahead(3600), body=b"kept")
        d = s3.delete_object(Bucket=b, Key="k")
        assert d["DeleteMarker"] is True and d["VersionId"] != vid
        with pytest.raises(ClientError) as e:
            s3.get_object(Bucket=b, Key="k")
        assert err(e) == ("NoSuchKey", 404)
        assert s3.get_object(Bucket=b, Key="k", VersionId=vid)["Body"].read() == b"kept"
        # Delete markers are never protected: removing this one brings the version back.
        s3.delete_object(Bucket=b, Key="k", VersionId=d["VersionId"])
        assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"kept"
        with pytest.raises(ClientError) as e:
            s3.put_object_retention(
                Bucket=b, Key="k", VersionId=s3.delete_object(Bucket=b, Key="k")["VersionId"], Retention={}
            )
        assert err(e) == ("MethodNotAllowed", 405)


def test_overwrite_keeps_the_locked_version(s3: Any) -> None:
    with lock_bucket(s3) as b:
        old = _put_locked(s3, b, "k", "GOVERNANCE", ahead(3600), body=b"old")
        new = s3.put_object(Bucket=b, Key="k", Body=b"new")["VersionId"]
        assert new != old
        assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"new"
        assert s3.get_object(Bucket=b, Key="k", VersionId=old)["Body"].read() == b"old"
        assert "ObjectLockMode" not in s3.head_object(Bucket=b, Key="k")
        _denied(s3.delete_object, Bucket=b, Key="k", VersionId=old)


def test_legal_hold_blocks_until_removed(s3: Any) -> None:
    with lock_bucket(s3) as b:
        vid = s3.put_object(Bucket=b, Key="k", Body=b"x")["VersionId"]
        s3.put_object_legal_hold(Bucket=b, Key="k", VersionId=vid, LegalHold={"Status": "ON"})
        assert hdrs(s3.head_object(Bucket=b, Key="k"))["x-amz-object-lock-legal-hold"] == "ON"
        _denied(s3.delete_object, Bucket=b, Key="k", VersionId=vid, BypassGovernanceRetention=True)
        # Tagging the held version is allowed and does not disturb the hold.
        s3.put_object_tagging(
            Bucket=b, Key="k", VersionId=vid, Tagging={"TagSet": [{"Key": "a", "Value": "b"}]}
        )
        assert s3.get_object_legal_hold(Bucket=b, Key="k")["LegalHold"]["Status"] == "ON"
        s3.put_object_legal_hold(Bucket=b, Key="k", LegalHold={"Status": "OFF"})
        assert s3.get_object_legal_hold(Bucket=b, Key="k", VersionId=vid)["LegalHold"]["Status"] == "OFF"
        s3.delete_object(Bucket=b, Key="k", VersionId=vid)


def test_legal_hold_and_retention_together(s3: Any) -> None:
    with lock_bucket(s3) as b:
        vid = _put_locked(s3, b, "k", "GOVERNANCE", ahead(3600))
        s3.put_object_legal_hold(Bucket=b, Key="k", VersionId=vid, LegalHold={"Status": "ON"})
        _denied(s3.delete_object, Bucket=b, Key="k", VersionId=vid, BypassGovernanceRetention=True)
        s3.put_object_legal_hold(Bucket=b, Key="k", VersionId=vid, LegalHold={"Status": "OFF"})
        _denied(s3.delete_object, Bucket=b, Key="k", VersionId=vid)
        s3.delete_object(Bucket=b, Key="k", VersionId=vid, BypassGovernanceRetention=True)


def test_delete_objects_reports_locked_versions_per_key(s3: Any) -> None:
    with lock_bucket(s3) as b:
        gov = _put_locked(s3, b, "gov", "GOVERNANCE", ahead(3600))
        comp_until = ahead(3)
        comp = _put_locked(s3, b, "comp", "COMPLIANCE", comp_until)
        held = s3.put_object(Bucket=b, Key="held", Body=b"x", ObjectLockLegalHoldStatus="ON")["VersionId"]
        free = s3.put_object(Bucket=b, Key="free", Body=b"x")["VersionId"]
        objects = [
            {"Key": "gov", "VersionId": gov},
            {"Key": "comp", "VersionId": comp},
            {"Key": "held", "VersionId": held},
            {"Key": "free", "VersionId": free},
            {"Key": "marker-only"},
        ]
        out = s3.delete_objects(Bucket=b, Delete={"Objects": objects})
        errors = {e["Key"]: (e["Code"], e["VersionId"]) for e in out["Errors"]}
        assert errors == {
            "gov": ("AccessDenied", gov),
            "comp": ("AccessDenied", comp),
            "held": ("AccessDenied", held),
        }
        assert {d["Key"] for d in out["Deleted"]} == {"free", "marker-only"}
        out = s3.delete_objects(Bucket=b, Delete={"Objects": objects[:3]}, BypassGovernanceRetention=True)
        assert {e["Key"] for e in out.get("Errors", [])} == {"comp", "held"}
        assert [d["Key"] for d in out["Deleted"]] == ["gov"]
        versions = s3.list_object_versions(Bucket=b)
        assert sorted(v["Key"] for v in versions["Versions"]) == ["comp", "held"]
        wait_until(comp_until)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<Retention><Mode>GOVERNANCE</Mode></Retention>", "MalformedXML"),
        (b"<Retention><RetainUntilDate>2099-01-01T00:00:00Z</RetainUntilDate></Retention>", "MalformedXML"),
        (
            b"<Retention><Mode>FOREVER</Mode><RetainUntilDate>2099-01-01T00:00:00Z</RetainUntilDate></Retention>",
            "MalformedXML",
        ),
        (
            b"<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>someday</RetainUntilDate></Retention>",
            "MalformedXML",
        ),
        (
            b"<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2001-01-01T00:00:00Z</RetainUntilDate></Retention>",
            "InvalidRequest",
        ),
        (b"<Nope/>", "MalformedXML"),
        (b"", "MalformedXML"),
    ],
)
def test_bad_retention_bodies(server: Server, s3: Any, body: bytes, expected: str) -> None:
    with lock_bucket(s3) as b:
        s3.put_object(Bucket=b, Key="k", Body=b"x")
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        status, data = signed(server, "PUT", f"/{b}/k?retention", body, {"Content-MD5": md5})
        assert (status, error_code(data)) == (400, expected)


@pytest.mark.parametrize("body", [b"<LegalHold><Status>on</Status></LegalHold>", b"<LegalHold/>", b"<Hold/>"])
def test_bad_legal_hold_bodies(server: Server, s3: Any, body: bytes) -> None:
    with lock_bucket(s3) as b:
        s3.put_object(Bucket=b, Key="k", Body=b"x")
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        status, data = signed(server, "PUT", f"/{b}/k?legal-hold", body, {"Content-MD5": md5})
        assert (status, error_code(data)) == (400, "MalformedXML")


def test_missing_key_and_version(s3: Any) -> None:
    with lock_bucket(s3) as b:
        with pytest.raises(ClientError) as e:
            s3.get_object_retention(Bucket=b, Key="missing")
        assert err(e) == ("NoSuchKey", 404)
        s3.put_object(Bucket=b, Key="k", Body=b"x")
        with pytest.raises(ClientError) as e:
            s3.put_object_legal_hold(Bucket=b, Key="k", VersionId="0" * 32, LegalHold={"Status": "ON"})
        assert err(e) == ("NoSuchVersion", 404)
