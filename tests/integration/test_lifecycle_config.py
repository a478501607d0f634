"""Put/Get/DeleteBucketLifecycleConfiguration with boto3 and raw signed XML: round trips and every
validation error S3 answers (MalformedXML, InvalidArgument, InvalidRequest, checksums)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import urllib.request
import zlib
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, SECRET_KEY, USER2, Server

MIN_SIZE = "x-amz-transition-default-minimum-object-size"


def _err(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def _raw_put(server: Server, bucket: str, xml: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """PUT ?lifecycle with a hand-written body (shapes boto3 refuses to build), SigV4-signed."""
    body = xml.encode()
    h = {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(), **(headers or {})}
    h = {k: v for k, v in h.items() if v}
    req = AWSRequest(method="PUT", url=f"{server.endpoint}/{bucket}?lifecycle", data=body, headers=h)
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


def _rule(**kw: Any) -> dict[str, Any]:
    return {"ID": "r", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 30}, **kw}


def test_round_trip_every_element(s3: Any, bucket: str) -> None:
    rules = [
        {
            "ID": "logs",
            "Status": "Enabled",
            "Filter": {"Prefix": "logs/"},
            "Transitions": [
                {"Days": 30, "StorageClass": "STANDARD_IA"},
                {"Days": 120, "StorageClass": "GLACIER"},
            ],
            "Expiration": {"Days": 365},
            "NoncurrentVersionTransitions": [
                {"NoncurrentDays": 30, "StorageClass": "STANDARD_IA", "NewerNoncurrentVersions": 2}
            ],
            "NoncurrentVersionExpiration": {"NoncurrentDays": 200, "NewerNoncurrentVersions": 1},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
        },
        {
            "ID": "tag",
            "Status": "Disabled",
            "Filter": {"Tag": {"Key": "k", "Value": "v"}},
            "Expiration": {"Days": 1},
        },
        {
            "ID": "and",
            "Status": "Enabled",
            "Filter": {
                "And": {
                    "Prefix": "p/",
                    "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": ""}],
                    "ObjectSizeGreaterThan": 10,
                    "ObjectSizeLessThan": 1000,
                }
            },
            "Transitions": [{"Days": 0, "StorageClass": "GLACIER"}],
        },
        {"ID": "gt", "Status": "Enabled", "Filter": {"ObjectSizeGreaterThan": 5}, "Expiration": {"Days": 3}},
        {"ID": "lt", "Status": "Enabled", "Filter": {"ObjectSizeLessThan": 5}, "Expiration": {"Days": 3}},
        {"ID": "empty", "Status": "Enabled", "Filter": {}, "Expiration": {"ExpiredObjectDeleteMarker": True}},
        {
            "ID": "legacy",
            "Status": "Enabled",
            "Prefix": "old/",
            "Expiration": {"Date": datetime.datetime(2030, 1, 1)},
        },
        {
            "ID": "dates",
            "Status": "Enabled",
            "Filter": {"Prefix": "d/"},
            "Transitions": [{"Date": datetime.datetime(2029, 1, 1), "StorageClass": "DEEP_ARCHIVE"}],
        },
    ]
    put = s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    assert put["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert got["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"
    by_id = {r["ID"]: r for r in got["Rules"]}
    assert list(by_id) == [r["ID"] for r in rules]
    for want in rules:
        have = by_id[want["ID"]]
        for field in want:
            assert have[field] == want[field] or field in ("Expiration", "Transitions"), (field, have)
    assert by_id["legacy"]["Expiration"]["Date"].date() == datetime.date(2030, 1, 1)
    assert by_id["dates"]["Transitions"][0]["Date"].date() == datetime.date(2029, 1, 1)
    assert by_id["logs"]["Expiration"] == {"Days": 365}
    assert by_id["empty"]["Expiration"] == {"ExpiredObjectDeleteMarker": True}
    assert "Filter" not in by_id["legacy"] and by_id["legacy"]["Prefix"] == "old/"

    s3.delete_bucket_lifecycle(Bucket=bucket)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert _err(e) == ("NoSuchLifecycleConfiguration", 404)
    s3.delete_bucket_lifecycle(Bucket=bucket)  # deleting what is not there is fine, as on S3


def test_missing_id_is_generated_and_min_size_mode_kept(s3: Any, bucket: str) -> None:
    rule = {"Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}
    put = s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={"Rules": [rule]},
        TransitionDefaultMinimumObjectSize="varies_by_storage_class",
    )
    assert put["TransitionDefaultMinimumObjectSize"] == "varies_by_storage_class"
    got = s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert got["TransitionDefaultMinimumObjectSize"] == "varies_by_storage_class"
    assert len(got["Rules"][0]["ID"]) > 10


def test_no_such_bucket(s3: Any) -> None:
    for call in (
        lambda: s3.get_bucket_lifecycle_configuration(Bucket="no-such-bucket-lc"),
        lambda: s3.put_bucket_lifecycle_configuration(
            Bucket="no-such-bucket-lc", LifecycleConfiguration={"Rules": [_rule()]}
        ),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert _err(e) == ("NoSuchBucket", 404)


@pytest.mark.parametrize(
    ("rules", "code"),
    [
        ([_rule(ID="x" * 256)], "InvalidArgument"),
        ([_rule(ID="same"), _rule(ID="same")], "InvalidArgument"),
        ([_rule(Expiration={"Days": 0})], "InvalidArgument"),
        ([_rule(Expiration={"Days": -3})], "InvalidArgument"),
        ([_rule(Expiration={"Date": datetime.datetime(2030, 1, 1, 12, 0)})], "InvalidArgument"),
        ([_rule(Transitions=[{"Days": 10, "StorageClass": "STANDARD_IA"}])], "InvalidArgument"),
        ([_rule(Transitions=[{"Days": -1, "StorageClass": "GLACIER"}])], "InvalidArgument"),
        ([_rule(Transitions=[{"Days": 40, "StorageClass": "GLACIER"}])], "InvalidArgument"),  # >= Expiration
        ([_rule(NoncurrentVersionExpiration={"NoncurrentDays": 0})], "InvalidArgument"),
        (
            [_rule(NoncurrentVersionExpiration={"NoncurrentDays": 5, "NewerNoncurrentVersions": 101})],
            "InvalidArgument",
        ),
        (
            [_rule(NoncurrentVersionTransitions=[{"NoncurrentDays": 5, "StorageClass": "ONEZONE_IA"}])],
            "InvalidArgument",
        ),
        ([_rule(AbortIncompleteMultipartUpload={"DaysAfterInitiation": 0})], "InvalidArgument"),
        (
            [_rule(Filter={"And": {"ObjectSizeGreaterThan": 100, "ObjectSizeLessThan": 50}})],
            "InvalidArgument",
        ),
        ([{"ID": "a", "Status": "Enabled", "Filter": {"Prefix": "x"}}], "InvalidRequest"),  # no action
        (
            [
                _rule(
                    Expiration={"Days": 300},
                    Transitions=[
                        {"Days": 30, "StorageClass": "GLACIER"},
                        {"Days": 60, "StorageClass": "GLACIER"},
                    ],
                )
            ],
            "InvalidRequest",
        ),
        (
            [
                _rule(
                    Expiration={"Days": 300},
                    Transitions=[
                        {"Days": 30, "StorageClass": "GLACIER"},
                        {"Date": datetime.datetime(2030, 1, 1), "StorageClass": "DEEP_ARCHIVE"},
                    ],
                )
            ],
            "InvalidRequest",
        ),
        (
            [
                _rule(
                    Filter={"Tag": {"Key": "k", "Value": "v"}},
                    AbortIncompleteMultipartUpload={"DaysAfterInitiation": 1},
                )
            ],
            "InvalidRequest",
        ),
        (
            [
                _rule(
                    Filter={"Tag": {"Key": "k", "Value": "v"}}, Expiration={"ExpiredObjectDeleteMarker": True}
                )
            ],
            "InvalidRequest",
        ),
        ([_rule(Filter={"Prefix": "p" * 1025})], "InvalidRequest"),
        ([_rule(Filter={"Tag": {"Key": "k" * 129, "Value": "v"}})], "InvalidRequest"),
        (
            [_rule(Filter={"And": {"Tags": [{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}]}})],
            "InvalidRequest",
        ),
        ([_rule(Expiration={})], "MalformedXML"),
        ([_rule(Expiration={"Days": 3, "Date": datetime.datetime(2030, 1, 1)})], "MalformedXML"),
        ([_rule(Expiration={"Days": 3, "ExpiredObjectDeleteMarker": True})], "MalformedXML"),
        ([_rule(Filter={"Prefix": "a", "Tag": {"Key": "k", "Value": "v"}})], "MalformedXML"),
        ([_rule(Filter={"And": {"Prefix": "a"}})], "MalformedXML"),
        ([_rule(Filter={"And": {"Tags": [{"Key": "k", "Value": "v"}]}})], "MalformedXML"),
        ([_rule(Prefix="a")], "MalformedXML"),  # both Prefix and Filter
        ([{"ID": "n", "Status": "Enabled", "Expiration": {"Days": 1}}], "MalformedXML"),  # neither
        ([_rule(Status="On")], "MalformedXML"),
        (
            [
                _rule(
                    Transitions=[
                        {"Days": 30, "Date": datetime.datetime(2030, 1, 1), "StorageClass": "GLACIER"}
                    ]
                )
            ],
            "MalformedXML",
        ),
        ([_rule(ID=str(i)) for i in range(1001)], "MalformedXML"),
        ([], "MalformedXML"),
    ],
)
def test_invalid_configurations(s3: Any, bucket: str, rules: list[dict[str, Any]], code: str) -> None:
    with pytest.raises(ClientError) as e:
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    assert _err(e) == (code, 501 if code == "NotImplemented" else 400)
    with pytest.raises(ClientError) as e2:  # nothing was stored
        s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    assert _err(e2)[0] == "NoSuchLifecycleConfiguration"


def test_invalid_min_size_header(s3: Any, bucket: str) -> None:
    def bad_header(request: Any, **_: Any) -> None:
        request.headers[MIN_SIZE] = "all_storage_classes_1K"

    s3.meta.events.register_first("before-sign.s3.PutBucketLifecycleConfiguration", bad_header)
    with pytest.raises(ClientError) as e:
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [_rule()]})
    assert _err(e) == ("InvalidArgument", 400)


GOOD = (
    "<LifecycleConfiguration><Rule><ID>r</ID><Filter><Prefix>a/</Prefix></Filter><Status>Enabled</Status>"
    "<Expiration><Days>5</Days></Expiration></Rule></LifecycleConfiguration>"
)


@pytest.mark.parametrize(
    ("xml", "code"),
    [
        ("<LifecycleConfiguration><Rule>", "MalformedXML"),
        ("<Other/>", "MalformedXML"),
        (GOOD.replace("<Status>Enabled</Status>", ""), "MalformedXML"),
        (GOOD.replace("<Days>5</Days>", "<Days>five</Days>"), "MalformedXML"),
        (GOOD.replace("<Days>5</Days>", "<Days>99999999999</Days>"), "MalformedXML"),
        (
            GOOD.replace("</Expiration>", "</Expiration><Expiration><Days>6</Days></Expiration>"),
            "MalformedXML",
        ),
        (GOOD.replace("<Days>5</Days>", "<Date>not-a-date</Date>"), "MalformedXML"),
        (
            GOOD.replace("</Expiration>", "</Expiration><Transition><Days>5</Days></Transition>"),
            "MalformedXML",
        ),
        (
            GOOD.replace(
                "</Expiration>",
                "</Expiration><Transition><Days>1</Days><StorageClass>STANDARD</StorageClass></Transition>",
            ),
            "MalformedXML",
        ),
        (
            GOOD.replace("</Expiration>", "</Expiration><NoncurrentVersionExpiration/>"),
            "MalformedXML",
        ),
        (
            GOOD.replace("</Expiration>", "</Expiration><AbortIncompleteMultipartUpload/>"),
            "MalformedXML",
        ),
        (
            GOOD.replace("<Days>5</Days>", "<ExpiredObjectDeleteMarker>maybe</ExpiredObjectDeleteMarker>"),
            "MalformedXML",
        ),
        (GOOD.replace("<Filter><Prefix>a/</Prefix></Filter>", "<Filter><Bogus/></Filter>"), "MalformedXML"),
    ],
)
def test_malformed_xml(server: Server, bucket: str, xml: str, code: str) -> None:
    status, text = _raw_put(server, bucket, xml)
    assert (status, _code(text)) == (400, code), text


def test_content_md5_required_and_checked(server: Server, bucket: str) -> None:
    status, text = _raw_put(server, bucket, GOOD, {"Content-MD5": ""})
    assert (status, _code(text)) == (400, "InvalidRequest"), text
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    status, text = _raw_put(server, bucket, GOOD, {"Content-MD5": wrong})
    assert (status, _code(text)) == (400, "BadDigest"), text
    # A flexible checksum instead of Content-MD5 is accepted, and checked.
    status, text = _raw_put(server, bucket, GOOD, {"Content-MD5": "", "x-amz-checksum-crc32": "AAAAAA=="})
    assert (status, _code(text)) == (400, "BadDigest"), text
    crc = base64.b64encode(zlib.crc32(GOOD.encode()).to_bytes(4, "big")).decode()
    status, text = _raw_put(server, bucket, GOOD, {"Content-MD5": "", "x-amz-checksum-crc32": crc})
    assert status == 200, text
    status, text = _raw_put(server, bucket, GOOD)
    assert status == 200, text


def test_other_account_cannot_touch(server: Server, s3: Any, bucket: str) -> None:
    other = server.client(USER2[1], USER2[2])
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [_rule()]})
    for call in (
        lambda: other.get_bucket_lifecycle_configuration(Bucket=bucket),
        lambda: other.delete_bucket_lifecycle(Bucket=bucket),
        lambda: other.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": [_rule(ID="x")]}
        ),
    ):
        with pytest.raises(ClientError) as e:
            call()
        assert _err(e) == ("AccessDenied", 403)
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]["ID"] == "r"
