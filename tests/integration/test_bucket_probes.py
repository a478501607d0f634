"""Bucket sub-resources real clients read when they inspect a bucket (Terraform's aws_s3_bucket,
s3cmd info, ceph/s3-tests): each answers rs3gw's real state over a real server with boto3, a
write that keeps that state is accepted, a write asking for the feature is 501 NotImplemented,
a missing bucket is NoSuchBucket and another user needs a policy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from access_helpers import outcome
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, SECRET_KEY, USER2, Server, cleanup_bucket

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
Call = Callable[[Any, str], Any]

LOGGING_ON = {"LoggingEnabled": {"TargetBucket": "logs", "TargetPrefix": "access/"}}
WEBSITE = {"IndexDocument": {"Suffix": "index.html"}}
REPLICATION = {
    "Role": "arn:aws:iam::123456789012:role/replication",
    "Rules": [{"Status": "Enabled", "Prefix": "", "Destination": {"Bucket": "arn:aws:s3:::elsewhere"}}],
}
QUEUE = {"QueueConfigurations": [{"QueueArn": "arn:aws:sqs:us-east-1:1:q", "Events": ["s3:ObjectCreated:*"]}]}
INVENTORY = {
    "Id": "inv",
    "IsEnabled": True,
    "Destination": {"S3BucketDestination": {"Bucket": "arn:aws:s3:::elsewhere", "Format": "CSV"}},
    "IncludedObjectVersions": "All",
    "Schedule": {"Frequency": "Daily"},
}
TIERING = {"Id": "tier", "Status": "Enabled", "Tierings": [{"Days": 90, "AccessTier": "ARCHIVE_ACCESS"}]}


def _ownership(value: str) -> dict[str, Any]:
    return {"Rules": [{"ObjectOwnership": value}]}


# Reads, and writes that keep the bucket's real state: (operation, call).
READS: list[tuple[str, Call]] = [
    ("GetBucketAccelerateConfiguration", lambda c, b: c.get_bucket_accelerate_configuration(Bucket=b)),
    ("GetBucketRequestPayment", lambda c, b: c.get_bucket_request_payment(Bucket=b)),
    ("GetBucketLogging", lambda c, b: c.get_bucket_logging(Bucket=b)),
    ("GetBucketWebsite", lambda c, b: c.get_bucket_website(Bucket=b)),
    ("GetBucketReplication", lambda c, b: c.get_bucket_replication(Bucket=b)),
    ("GetBucketNotificationConfiguration", lambda c, b: c.get_bucket_notification_configuration(Bucket=b)),
    ("GetBucketOwnershipControls", lambda c, b: c.get_bucket_ownership_controls(Bucket=b)),
    ("ListBucketAnalyticsConfigurations", lambda c, b: c.list_bucket_analytics_configurations(Bucket=b)),
    ("ListBucketMetricsConfigurations", lambda c, b: c.list_bucket_metrics_configurations(Bucket=b)),
    ("ListBucketInventoryConfigurations", lambda c, b: c.list_bucket_inventory_configurations(Bucket=b)),
    (
        "ListBucketIntelligentTieringConfigurations",
        lambda c, b: c.list_bucket_intelligent_tiering_configurations(Bucket=b),
    ),
]
MISSING_CONFIG_READS: list[tuple[str, Call]] = [
    ("GetBucketAnalyticsConfiguration", lambda c, b: c.get_bucket_analytics_configuration(Bucket=b, Id="a")),
    ("GetBucketMetricsConfiguration", lambda c, b: c.get_bucket_metrics_configuration(Bucket=b, Id="m")),
    ("GetBucketInventoryConfiguration", lambda c, b: c.get_bucket_inventory_configuration(Bucket=b, Id="i")),
    (
        "GetBucketIntelligentTieringConfiguration",
        lambda c, b: c.get_bucket_intelligent_tiering_configuration(Bucket=b, Id="t"),
    ),
]
ACCEPTED_WRITES: list[tuple[str, Call]] = [
    (
        "PutBucketAccelerateConfiguration",
        lambda c, b: c.put_bucket_accelerate_configuration(
            Bucket=b, AccelerateConfiguration={"Status": "Suspended"}
        ),
    ),
    (
        "PutBucketRequestPayment",
        lambda c, b: c.put_bucket_request_payment(
            Bucket=b, RequestPaymentConfiguration={"Payer": "BucketOwner"}
        ),
    ),
    ("PutBucketLogging", lambda c, b: c.put_bucket_logging(Bucket=b, BucketLoggingStatus={})),
    (
        "PutBucketNotificationConfiguration",
        lambda c, b: c.put_bucket_notification_configuration(Bucket=b, NotificationConfiguration={}),
    ),
    (
        "PutBucketOwnershipControls",
        lambda c, b: c.put_bucket_ownership_controls(Bucket=b, OwnershipControls=_ownership("ObjectWriter")),
    ),
    ("DeleteBucketWebsite", lambda c, b: c.delete_bucket_website(Bucket=b)),
    ("DeleteBucketReplication", lambda c, b: c.delete_bucket_replication(Bucket=b)),
    ("DeleteBucketOwnershipControls", lambda c, b: c.delete_bucket_ownership_controls(Bucket=b)),
]
REFUSED_WRITES: list[tuple[str, Call]] = [
    (
        "PutBucketAccelerateConfiguration",
        lambda c, b: c.put_bucket_accelerate_configuration(
            Bucket=b, AccelerateConfiguration={"Status": "Enabled"}
        ),
    ),
    (
        "PutBucketRequestPayment",
        lambda c, b: c.put_bucket_request_payment(
            Bucket=b, RequestPaymentConfiguration={"Payer": "Requester"}
        ),
    ),
    ("PutBucketLogging", lambda c, b: c.put_bucket_logging(Bucket=b, BucketLoggingStatus=LOGGING_ON)),
    ("PutBucketWebsite", lambda c, b: c.put_bucket_website(Bucket=b, WebsiteConfiguration=WEBSITE)),
    (
        "PutBucketReplication",
        lambda c, b: c.put_bucket_replication(Bucket=b, ReplicationConfiguration=REPLICATION),
    ),
    (
        "PutBucketNotificationConfiguration",
        lambda c, b: c.put_bucket_notification_configuration(Bucket=b, NotificationConfiguration=QUEUE),
    ),
    (
        "PutBucketOwnershipControls",
        lambda c, b: c.put_bucket_ownership_controls(
            Bucket=b, OwnershipControls=_ownership("BucketOwnerEnforced")
        ),
    ),
    (
        "PutBucketOwnershipControls",
        lambda c, b: c.put_bucket_ownership_controls(
            Bucket=b, OwnershipControls=_ownership("BucketOwnerPreferred")
        ),
    ),
    (
        "PutBucketAnalyticsConfiguration",
        lambda c, b: c.put_bucket_analytics_configuration(
            Bucket=b, Id="a", AnalyticsConfiguration={"Id": "a", "StorageClassAnalysis": {}}
        ),
    ),
    (
        "PutBucketMetricsConfiguration",
        lambda c, b: c.put_bucket_metrics_configuration(Bucket=b, Id="m", MetricsConfiguration={"Id": "m"}),
    ),
    (
        "PutBucketInventoryConfiguration",
        lambda c, b: c.put_bucket_inventory_configuration(
            Bucket=b, Id="inv", InventoryConfiguration=INVENTORY
        ),
    ),
    (
        "PutBucketIntelligentTieringConfiguration",
        lambda c, b: c.put_bucket_intelligent_tiering_configuration(
            Bucket=b, Id="tier", IntelligentTieringConfiguration=TIERING
        ),
    ),
]
MISSING_CONFIG_DELETES: list[tuple[str, Call]] = [
    (
        "DeleteBucketAnalyticsConfiguration",
        lambda c, b: c.delete_bucket_analytics_configuration(Bucket=b, Id="a"),
    ),
    (
        "DeleteBucketMetricsConfiguration",
        lambda c, b: c.delete_bucket_metrics_configuration(Bucket=b, Id="m"),
    ),
    (
        "DeleteBucketInventoryConfiguration",
        lambda c, b: c.delete_bucket_inventory_configuration(Bucket=b, Id="i"),
    ),
    (
        "DeleteBucketIntelligentTieringConfiguration",
        lambda c, b: c.delete_bucket_intelligent_tiering_configuration(Bucket=b, Id="t"),
    ),
]
EVERY_CALL = READS + MISSING_CONFIG_READS + ACCEPTED_WRITES + REFUSED_WRITES + MISSING_CONFIG_DELETES


def _err(e: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return e.value.response["Error"]["Code"], int(e.value.response["ResponseMetadata"]["HTTPStatusCode"])


def _status(resp: dict[str, Any]) -> int:
    return int(resp["ResponseMetadata"]["HTTPStatusCode"])


@pytest.fixture(scope="module")
def clients(server: Server) -> dict[str, Any]:
    return {"owner": server.client(), "user2": server.client(USER2[1], USER2[2])}


@pytest.fixture
def bkt(clients: dict[str, Any]) -> Iterator[str]:
    owner = clients["owner"]
    name = f"probe-{uuid.uuid4().hex[:12]}"
    owner.create_bucket(Bucket=name)
    yield name
    owner.delete_bucket_policy(Bucket=name)
    cleanup_bucket(owner, name)


def _raw_get(client: Any, method: str, bucket: str, **params: Any) -> tuple[int, ET.Element]:
    """A presigned GET fetched without boto3's parser, to see the root element and namespace."""
    url = client.generate_presigned_url(method, Params={"Bucket": bucket, **params})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, ET.fromstring(r.read())
    except urllib.error.HTTPError as e:
        return e.code, ET.fromstring(e.read())


def test_reads_report_what_rs3gw_does(clients: dict[str, Any], bkt: str) -> None:
    s3 = clients["owner"]
    accel = s3.get_bucket_accelerate_configuration(Bucket=bkt)
    assert _status(accel) == 200 and "Status" not in accel
    assert s3.get_bucket_request_payment(Bucket=bkt)["Payer"] == "BucketOwner"
    logging = s3.get_bucket_logging(Bucket=bkt)
    assert _status(logging) == 200 and "LoggingEnabled" not in logging
    notes = s3.get_bucket_notification_configuration(Bucket=bkt)
    assert _status(notes) == 200
    assert not {"TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations"} & set(notes)
    assert "EventBridgeConfiguration" not in notes
    with pytest.raises(ClientError) as e:
        s3.get_bucket_website(Bucket=bkt)
    assert _err(e) == ("NoSuchWebsiteConfiguration", 404)
    assert e.value.response["Error"]["BucketName"] == bkt
    with pytest.raises(ClientError) as e:
        s3.get_bucket_replication(Bucket=bkt)
    assert _err(e) == ("ReplicationConfigurationNotFoundError", 404)
    with pytest.raises(ClientError) as e:
        s3.get_bucket_ownership_controls(Bucket=bkt)
    assert _err(e) == ("OwnershipControlsNotFoundError", 404)


@pytest.mark.parametrize(
    "method, root, list_key",
    [
        (
            "list_bucket_analytics_configurations",
            "ListBucketAnalyticsConfigurationsResult",
            "AnalyticsConfigurationList",
        ),
        ("list_bucket_metrics_configurations", "ListMetricsConfigurationsResult", "MetricsConfigurationList"),
        (
            "list_bucket_inventory_configurations",
            "ListInventoryConfigurationsResult",
            "InventoryConfigurationList",
        ),
        (
            "list_bucket_intelligent_tiering_configurations",
            "ListIntelligentTieringConfigurationsResult",
            "IntelligentTieringConfigurationList",
        ),
    ],
)
def test_configuration_lists_are_empty(
    clients: dict[str, Any], bkt: str, method: str, root: str, list_key: str
) -> None:
    s3 = clients["owner"]
    listed = getattr(s3, method)(Bucket=bkt)
    assert _status(listed) == 200
    assert listed["IsTruncated"] is False and list_key not in listed
    assert "NextContinuationToken" not in listed
    status, doc = _raw_get(s3, method, bkt)
    assert status == 200 and doc.tag == NS + root
    assert [c.tag for c in doc] == [NS + "IsTruncated"] and doc[0].text == "false"


@pytest.mark.parametrize(
    "method, root, children",
    [
        ("get_bucket_accelerate_configuration", "AccelerateConfiguration", []),
        ("get_bucket_request_payment", "RequestPaymentConfiguration", ["Payer"]),
        ("get_bucket_logging", "BucketLoggingStatus", []),
        ("get_bucket_notification_configuration", "NotificationConfiguration", []),
    ],
)
def test_wire_documents(
    clients: dict[str, Any], bkt: str, method: str, root: str, children: list[str]
) -> None:
    """The XML itself: AWS's root element in the S3 namespace, with nothing the bucket does not do."""
    status, doc = _raw_get(clients["owner"], method, bkt)
    assert status == 200 and doc.tag == NS + root
    assert [c.tag for c in doc] == [NS + c for c in children]


NAMED = MISSING_CONFIG_READS + MISSING_CONFIG_DELETES


@pytest.mark.parametrize("name, call", NAMED, ids=[n for n, _ in NAMED])
def test_named_configurations_do_not_exist(clients: dict[str, Any], bkt: str, name: str, call: Call) -> None:
    with pytest.raises(ClientError) as e:
        call(clients["owner"], bkt)
    assert _err(e) == ("NoSuchConfiguration", 404), name


def test_accepted_writes_round_trip(clients: dict[str, Any], bkt: str) -> None:
    """Each accepted write states what the bucket already is, so the read after it agrees."""
    s3 = clients["owner"]
    for name, call in ACCEPTED_WRITES:
        assert _status(call(s3, bkt)) in (200, 204), name
    assert s3.get_bucket_accelerate_configuration(Bucket=bkt)["Status"] == "Suspended"
    s3.put_bucket_request_payment(Bucket=bkt, RequestPaymentConfiguration={"Payer": "BucketOwner"})
    assert s3.get_bucket_request_payment(Bucket=bkt)["Payer"] == "BucketOwner"
    s3.put_bucket_logging(Bucket=bkt, BucketLoggingStatus={})
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=bkt)
    s3.put_bucket_notification_configuration(Bucket=bkt, NotificationConfiguration={})
    assert "QueueConfigurations" not in s3.get_bucket_notification_configuration(Bucket=bkt)
    assert _status(s3.delete_bucket_website(Bucket=bkt)) == 204
    assert outcome(lambda: s3.get_bucket_website(Bucket=bkt)) == "NoSuchWebsiteConfiguration"
    assert _status(s3.delete_bucket_replication(Bucket=bkt)) == 204
    assert outcome(lambda: s3.get_bucket_replication(Bucket=bkt)) == "ReplicationConfigurationNotFoundError"


def test_acceleration_is_never_enabled(clients: dict[str, Any], bkt: str) -> None:
    """No Status until Suspended is put (as on AWS), then Suspended; Enabled is refused either way."""
    s3 = clients["owner"]
    get = lambda: s3.get_bucket_accelerate_configuration(Bucket=bkt)  # noqa: E731
    enable = lambda: s3.put_bucket_accelerate_configuration(  # noqa: E731
        Bucket=bkt, AccelerateConfiguration={"Status": "Enabled"}
    )
    assert "Status" not in get()
    assert outcome(enable) == "NotImplemented"
    assert "Status" not in get()
    s3.put_bucket_accelerate_configuration(Bucket=bkt, AccelerateConfiguration={"Status": "Suspended"})
    assert get()["Status"] == "Suspended"
    assert outcome(enable) == "NotImplemented"
    assert get()["Status"] == "Suspended"
    status, doc = _raw_get(s3, "get_bucket_accelerate_configuration", bkt)
    assert status == 200 and [(c.tag, c.text) for c in doc] == [(NS + "Status", "Suspended")]


def test_ownership_controls_object_writer(clients: dict[str, Any], bkt: str) -> None:
    """ObjectWriter (rs3gw's behaviour) is declared, read back and deleted like on AWS; the other
    settings are refused and leave the declaration as it was."""
    s3 = clients["owner"]
    get = lambda: s3.get_bucket_ownership_controls(Bucket=bkt)  # noqa: E731
    assert outcome(get) == "OwnershipControlsNotFoundError"
    s3.put_bucket_ownership_controls(Bucket=bkt, OwnershipControls=_ownership("ObjectWriter"))
    assert get()["OwnershipControls"] == _ownership("ObjectWriter")
    with pytest.raises(ClientError) as e:
        s3.put_bucket_ownership_controls(Bucket=bkt, OwnershipControls=_ownership("BucketOwnerEnforced"))
    assert _err(e) == ("NotImplemented", 501)
    assert get()["OwnershipControls"] == _ownership("ObjectWriter")
    assert _status(s3.delete_bucket_ownership_controls(Bucket=bkt)) == 204
    assert outcome(get) == "OwnershipControlsNotFoundError"
    assert _status(s3.delete_bucket_ownership_controls(Bucket=bkt)) == 204  # idempotent, as on AWS
    # The declaration is true: another user's object (written through a policy) stays theirs.
    user2 = clients["user2"]
    user2_id = user2.list_buckets()["Owner"]["ID"]
    s3.put_bucket_ownership_controls(Bucket=bkt, OwnershipControls=_ownership("ObjectWriter"))
    s3.put_bucket_policy(Bucket=bkt, Policy=_allow(user2_id, "s3:PutObject", f"arn:aws:s3:::{bkt}/*"))
    user2.put_object(Bucket=bkt, Key="theirs", Body=b"x", ACL="bucket-owner-full-control")
    assert s3.get_object_acl(Bucket=bkt, Key="theirs")["Owner"]["ID"] == user2_id


@pytest.mark.parametrize("name, call", REFUSED_WRITES, ids=[n for n, _ in REFUSED_WRITES])
def test_feature_writes_are_not_implemented(clients: dict[str, Any], bkt: str, name: str, call: Call) -> None:
    s3 = clients["owner"]
    with pytest.raises(ClientError) as e:
        call(s3, bkt)
    assert _err(e) == ("NotImplemented", 501), name
    assert "not implemented by rs3gw" in e.value.response["Error"]["Message"]
    # Nothing was stored: the reads still answer the bucket's real state.
    assert "Status" not in s3.get_bucket_accelerate_configuration(Bucket=bkt)
    assert s3.get_bucket_request_payment(Bucket=bkt)["Payer"] == "BucketOwner"
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=bkt)
    assert outcome(lambda: s3.get_bucket_website(Bucket=bkt)) == "NoSuchWebsiteConfiguration"
    assert not s3.list_bucket_inventory_configurations(Bucket=bkt).get("InventoryConfigurationList")


def test_malformed_values_are_refused(clients: dict[str, Any], bkt: str) -> None:
    """A value outside AWS's enumeration is MalformedXML, never accepted as a no-op."""
    s3 = clients["owner"]
    bad = [
        lambda: s3.put_bucket_accelerate_configuration(Bucket=bkt, AccelerateConfiguration={"Status": "On"}),
        lambda: s3.put_bucket_accelerate_configuration(Bucket=bkt, AccelerateConfiguration={}),
        lambda: s3.put_bucket_request_payment(Bucket=bkt, RequestPaymentConfiguration={"Payer": "Nobody"}),
        lambda: s3.put_bucket_ownership_controls(Bucket=bkt, OwnershipControls=_ownership("Writer")),
        lambda: s3.put_bucket_ownership_controls(
            Bucket=bkt, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}] * 2}
        ),
    ]
    for call in bad:
        with pytest.raises(ClientError) as e:
            call()
        assert _err(e) == ("MalformedXML", 400)
    assert outcome(lambda: s3.get_bucket_ownership_controls(Bucket=bkt)) == "OwnershipControlsNotFoundError"


@pytest.mark.parametrize("name, call", EVERY_CALL, ids=[n for n, _ in EVERY_CALL])
def test_missing_bucket(clients: dict[str, Any], name: str, call: Call) -> None:
    with pytest.raises(ClientError) as e:
        call(clients["owner"], f"nobucket-{uuid.uuid4().hex[:12]}")
    assert _err(e) == ("NoSuchBucket", 404), name


def _allow(principal: str, action: str | list[str], resource: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": action, "Resource": resource}
            ],
        }
    )


def test_other_user_needs_a_policy(clients: dict[str, Any], bkt: str) -> None:
    owner, user2 = clients["owner"], clients["user2"]
    denied = {name: outcome(lambda call=call: call(user2, bkt)) for name, call in EVERY_CALL}
    assert set(denied.values()) == {"AccessDenied"}, denied
    # Not even a FULL_CONTROL bucket ACL grant opens the configuration (it opens the listing).
    user2_id = user2.list_buckets()["Owner"]["ID"]
    owner.put_bucket_acl(Bucket=bkt, GrantFullControl=f"id={user2_id}")
    assert outcome(lambda: user2.list_objects_v2(Bucket=bkt)) == "ok"
    assert outcome(lambda: user2.get_bucket_request_payment(Bucket=bkt)) == "AccessDenied"
    assert outcome(lambda: user2.put_bucket_logging(Bucket=bkt, BucketLoggingStatus={})) == "AccessDenied"
    owner.put_bucket_acl(Bucket=bkt, ACL="private")
    # A policy allow opens exactly the actions it names.
    owner.put_bucket_policy(
        Bucket=bkt,
        Policy=_allow(
            user2_id,
            ["s3:GetBucketRequestPayment", "s3:GetBucketWebsite", "s3:PutBucketOwnershipControls"],
            f"arn:aws:s3:::{bkt}",
        ),
    )
    assert user2.get_bucket_request_payment(Bucket=bkt)["Payer"] == "BucketOwner"
    assert outcome(lambda: user2.get_bucket_website(Bucket=bkt)) == "NoSuchWebsiteConfiguration"
    user2.put_bucket_ownership_controls(Bucket=bkt, OwnershipControls=_ownership("ObjectWriter"))
    assert owner.get_bucket_ownership_controls(Bucket=bkt)["OwnershipControls"] == _ownership("ObjectWriter")
    assert outcome(lambda: user2.delete_bucket_ownership_controls(Bucket=bkt)) == "ok"  # same s3: action
    assert outcome(lambda: user2.get_bucket_ownership_controls(Bucket=bkt)) == "AccessDenied"
    assert outcome(lambda: user2.get_bucket_logging(Bucket=bkt)) == "AccessDenied"
    assert (
        outcome(
            lambda: user2.put_bucket_request_payment(
                Bucket=bkt, RequestPaymentConfiguration={"Payer": "BucketOwner"}
            )
        )
        == "AccessDenied"
    )


# --- Terraform's aws provider, when it is installed locally (never downloaded by the test) --------

_AWS_PROVIDER = Path("registry.terraform.io/hashicorp/aws")
_MIRRORS = (
    Path("/opt/tf-plugins"),
    Path.home() / ".terraform.d/plugins",
    Path.home() / ".local/share/terraform/plugins",
)

TERRAFORM_MAIN = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}
provider "aws" {
  region                      = "us-east-1"
  access_key                  = "%(access)s"
  secret_key                  = "%(secret)s"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_requesting_account_id  = true
  skip_region_validation      = true
  s3_use_path_style           = true
  endpoints { s3 = "%(endpoint)s" }
}
resource "aws_s3_bucket" "b" {
  bucket        = "%(bucket)s"
  force_destroy = true
}
resource "aws_s3_bucket_ownership_controls" "o" {
  bucket = aws_s3_bucket.b.id
  rule { object_ownership = "ObjectWriter" }
}
resource "aws_s3_bucket_request_payment_configuration" "p" {
  bucket = aws_s3_bucket.b.id
  payer  = "BucketOwner"
}
resource "aws_s3_bucket_accelerate_configuration" "a" {
  bucket = aws_s3_bucket.b.id
  status = "Suspended"
}
"""


def _terraform_env(workdir: Path) -> dict[str, str]:
    """An environment whose CLI config installs hashicorp/aws from a local mirror only."""
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    configured = os.environ.get("TF_CLI_CONFIG_FILE")
    if configured and Path(configured).is_file():
        return env
    mirror = next((m for m in _MIRRORS if (m / _AWS_PROVIDER).is_dir()), None)
    if mirror is None:
        pytest.skip("the hashicorp/aws Terraform provider is not installed locally")
    cli = workdir / "cli.tfrc"
    cli.write_text(
        f'provider_installation {{\n  filesystem_mirror {{\n    path = "{mirror}"\n'
        f'    include = ["{_AWS_PROVIDER}"]\n  }}\n}}\n'
    )
    env["TF_CLI_CONFIG_FILE"] = str(cli)
    return env


def _terraform(workdir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["terraform", *args, "-input=false", "-no-color"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


@pytest.mark.timeout(1500)
@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_reads_and_manages_the_bucket(server: Server, tmp_path: Path) -> None:
    """Terraform reading an aws_s3_bucket calls every probe above; its sub-resources for ownership,
    request payment and (suspended) acceleration apply, then plan clean (no drift), then destroy."""
    env = _terraform_env(tmp_path)
    bucket = f"tf-{uuid.uuid4().hex[:12]}"
    values = {"access": ACCESS_KEY, "secret": SECRET_KEY, "endpoint": server.endpoint, "bucket": bucket}
    (tmp_path / "main.tf").write_text(TERRAFORM_MAIN % values)
    s3 = server.client()
    try:
        init = _terraform(tmp_path, env, "init")
        assert init.returncode == 0, init.stdout + init.stderr
        applied = _terraform(tmp_path, env, "apply", "-auto-approve")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"] == _ownership(
            "ObjectWriter"
        )
        assert s3.get_bucket_accelerate_configuration(Bucket=bucket)["Status"] == "Suspended"
        plan = _terraform(tmp_path, env, "plan", "-detailed-exitcode")
        assert plan.returncode == 0, plan.stdout + plan.stderr  # 2 would be drift
        destroyed = _terraform(tmp_path, env, "destroy", "-auto-approve")
        assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
        assert outcome(lambda: s3.head_bucket(Bucket=bucket)) == "404"
    finally:
        cleanup_bucket(s3, bucket)
