"""Bucket policies on the request path: owner / second user / anonymous x get, put, list, delete.

Every cell of every matrix is checked against what S3 answers ("ok" or the error code), with real
boto3 clients (the anonymous one sends no auth material at all: botocore.UNSIGNED).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import botocore
import pytest
from access_helpers import ARN, DENY4, OK4, READ_ONLY, matrix, outcome, policy
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, USER2, Server, cleanup_bucket

USER2_ARN = f"arn:aws:iam::000000000000:user/{USER2[0]}"


@pytest.fixture(scope="module")
def clients(server: Server) -> dict[str, Any]:
    return {
        "owner": server.client(),
        "user2": server.client(USER2[1], USER2[2]),
        "anon": server.client(signature_version=botocore.UNSIGNED),
    }


@pytest.fixture
def bkt(clients: dict[str, Any]) -> Iterator[str]:
    owner = clients["owner"]
    name = f"pol-{uuid.uuid4().hex[:12]}"
    owner.create_bucket(Bucket=name)
    owner.put_object(Bucket=name, Key="data/obj.txt", Body=b"hello")
    owner.put_object(Bucket=name, Key="secret/s.txt", Body=b"classified")
    yield name
    owner.delete_bucket_policy(Bucket=name)
    cleanup_bucket(owner, name)


def test_no_policy_only_the_owner(clients: dict[str, Any], bkt: str) -> None:
    assert matrix(clients, bkt) == {"owner": OK4, "user2": DENY4, "anon": DENY4}


def test_public_read_policy(clients: dict[str, Any], bkt: str) -> None:
    doc = policy(
        {
            "Sid": "read",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"{ARN}{bkt}/*",
        },
        {
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": ["s3:ListBucket"],
            "Resource": f"{ARN}{bkt}",
        },
    )
    clients["owner"].put_bucket_policy(Bucket=bkt, Policy=doc)
    assert matrix(clients, bkt) == {"owner": OK4, "user2": READ_ONLY, "anon": READ_ONLY}
    assert clients["owner"].get_bucket_policy_status(Bucket=bkt)["PolicyStatus"]["IsPublic"] is True
    assert json.loads(clients["owner"].get_bucket_policy(Bucket=bkt)["Policy"]) == json.loads(doc)


def test_deny_a_prefix_beats_public_read_even_for_the_owner(clients: dict[str, Any], bkt: str) -> None:
    doc = policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:Get*", "Resource": f"{ARN}{bkt}/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{ARN}{bkt}/secret/*"},
    )
    clients["owner"].put_bucket_policy(Bucket=bkt, Policy=doc)
    readable = matrix(clients, bkt)
    hidden = matrix(clients, bkt, get_key="secret/s.txt")
    assert {who: r["get"] for who, r in readable.items()} == {"owner": "ok", "user2": "ok", "anon": "ok"}
    assert {who: r["get"] for who, r in hidden.items()} == {
        "owner": "AccessDenied",
        "user2": "AccessDenied",
        "anon": "AccessDenied",
    }
    assert hidden["owner"]["put"] == "ok" and hidden["anon"]["list"] == "AccessDenied"


def test_allow_second_user_write(clients: dict[str, Any], bkt: str) -> None:
    doc = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": [USER2_ARN]},
            "Action": ["s3:PutObject", "s3:DeleteObject"],
            "Resource": [f"{ARN}{bkt}/data/*"],
        },
    )
    clients["owner"].put_bucket_policy(Bucket=bkt, Policy=doc)
    put_delete = {"get": "AccessDenied", "put": "ok", "list": "AccessDenied", "delete": "ok"}
    assert matrix(clients, bkt) == {"owner": OK4, "user2": put_delete, "anon": DENY4}
    user2 = clients["user2"]
    # The writer owns what it wrote (its object ACL grants it), not the owner's objects.
    assert user2.get_object(Bucket=bkt, Key="data/new-user2")["Body"].read() == b"n"
    assert outcome(lambda: user2.put_object(Bucket=bkt, Key="elsewhere", Body=b"x")) == "AccessDenied"
    assert clients["owner"].get_bucket_policy_status(Bucket=bkt)["PolicyStatus"]["IsPublic"] is False


@pytest.mark.parametrize("form", ["user-arn", "aws-canonical", "canonical-user", "access-key"])
def test_ways_to_name_the_second_user(clients: dict[str, Any], bkt: str, form: str) -> None:
    user2_id = clients["user2"].list_buckets()["Owner"]["ID"]
    principal = {
        "user-arn": {"AWS": f"arn:aws:iam::123456789012:user/{USER2[0]}"},
        "aws-canonical": {"AWS": user2_id},
        "canonical-user": {"CanonicalUser": user2_id},
        "access-key": {"AWS": USER2[1]},
    }[form]
    statement = {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "s3:GetObject",
        "Resource": f"{ARN}{bkt}/*",
    }
    clients["owner"].put_bucket_policy(Bucket=bkt, Policy=policy(statement))
    got = matrix(clients, bkt)
    assert (got["user2"]["get"], got["anon"]["get"]) == ("ok", "AccessDenied")


def test_source_ip_deny_locks_out_everyone_but_policy_admin(clients: dict[str, Any], bkt: str) -> None:
    doc = policy(
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [f"{ARN}{bkt}", f"{ARN}{bkt}/*"],
            "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}},
        },
    )
    owner = clients["owner"]
    owner.put_bucket_policy(Bucket=bkt, Policy=doc)
    assert matrix(clients, bkt) == {"owner": DENY4, "user2": DENY4, "anon": DENY4}
    # AWS lets the bucket owner manage the policy whatever it says, so nobody is locked out forever.
    assert json.loads(owner.get_bucket_policy(Bucket=bkt)["Policy"]) == json.loads(doc)
    owner.delete_bucket_policy(Bucket=bkt)
    assert matrix(clients, bkt)["owner"] == OK4


def test_source_ip_allow_for_anonymous_is_not_public(clients: dict[str, Any], bkt: str) -> None:
    doc = policy(
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"{ARN}{bkt}/*",
            "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}},
        },
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:ListBucket",
            "Resource": f"{ARN}{bkt}",
            "Condition": {"IpAddress": {"aws:SourceIp": "10.1.2.3/32"}},
        },
    )
    clients["owner"].put_bucket_policy(Bucket=bkt, Policy=doc)
    got = matrix(clients, bkt)
    assert got["anon"] == {
        "get": "ok",
        "put": "AccessDenied",
        "list": "AccessDenied",
        "delete": "AccessDenied",
    }
    assert clients["owner"].get_bucket_policy_status(Bucket=bkt)["PolicyStatus"]["IsPublic"] is False


def test_secure_transport(clients: dict[str, Any], bkt: str, tls_server: Server) -> None:
    """Deny plain HTTP; the same policy on a TLS server lets the owner through."""
    deny_http = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"{ARN}{bkt}", f"{ARN}{bkt}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    allow_tls_read = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"{ARN}{bkt}/*",
        "Condition": {"Bool": {"aws:SecureTransport": True}},
    }
    clients["owner"].put_bucket_policy(Bucket=bkt, Policy=policy(deny_http, allow_tls_read))
    assert matrix(clients, bkt) == {"owner": DENY4, "user2": DENY4, "anon": DENY4}

    tls_owner = tls_server.client()
    name = f"tls-{uuid.uuid4().hex[:12]}"
    tls_owner.create_bucket(Bucket=name)
    try:
        tls_owner.put_object(Bucket=name, Key="data/obj.txt", Body=b"hello")
        doc = policy(
            {**deny_http, "Resource": [f"{ARN}{name}", f"{ARN}{name}/*"]},
            {
                **allow_tls_read,
                "Resource": f"{ARN}{name}/*",
            },
        )
        tls_owner.put_bucket_policy(Bucket=name, Policy=doc)
        tls_clients = {
            "owner": tls_owner,
            "user2": tls_server.client(USER2[1], USER2[2]),
            "anon": tls_server.client(signature_version=botocore.UNSIGNED),
        }
        read_only = {"get": "ok", "put": "AccessDenied", "list": "AccessDenied", "delete": "AccessDenied"}
        assert matrix(tls_clients, name) == {"owner": OK4, "user2": read_only, "anon": read_only}
        tls_owner.delete_bucket_policy(Bucket=name)
    finally:
        cleanup_bucket(tls_owner, name)


def test_prefix_condition_on_listing(clients: dict[str, Any], bkt: str) -> None:
    doc = policy(
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:ListBucket",
            "Resource": f"{ARN}{bkt}",
            "Condition": {"StringLike": {"s3:prefix": ["data/*"]}},
        },
    )
    clients["owner"].put_bucket_policy(Bucket=bkt, Policy=doc)
    anon = clients["anon"]
    keys = [o["Key"] for o in anon.list_objects_v2(Bucket=bkt, Prefix="data/")["Contents"]]
    assert keys == ["data/obj.txt"]
    assert outcome(lambda: anon.list_objects_v2(Bucket=bkt)) == "AccessDenied"
    assert outcome(lambda: anon.list_objects_v2(Bucket=bkt, Prefix="secret/")) == "AccessDenied"


def test_sse_header_condition(clients: dict[str, Any], bkt: str) -> None:
    doc = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": USER2_ARN},
            "Action": "s3:PutObject",
            "Resource": f"{ARN}{bkt}/*",
            "Condition": {"StringEquals": {"s3:x-amz-server-side-encryption": "AES256"}},
        },
    )
    clients["owner"].put_bucket_policy(Bucket=bkt, Policy=doc)
    user2 = clients["user2"]
    assert outcome(lambda: user2.put_object(Bucket=bkt, Key="plain", Body=b"x")) == "AccessDenied"
    res = outcome(lambda: user2.put_object(Bucket=bkt, Key="enc", Body=b"x", ServerSideEncryption="AES256"))
    assert res in ("ok", "NotImplemented")  # allowed by the policy; SSE itself is another feature's


def test_explicit_deny_beats_allow(clients: dict[str, Any], bkt: str) -> None:
    allow = {
        "Effect": "Allow",
        "Principal": {"AWS": USER2_ARN},
        "Action": "s3:*",
        "Resource": f"{ARN}{bkt}/*",
    }
    deny = {
        "Effect": "Deny",
        "Principal": {"AWS": USER2_ARN},
        "Action": "s3:GetObject",
        "Resource": f"{ARN}{bkt}/*",
    }
    clients["owner"].put_bucket_policy(Bucket=bkt, Policy=policy(allow, deny))
    got = matrix(clients, bkt)["user2"]
    assert got == {"get": "AccessDenied", "put": "ok", "list": "AccessDenied", "delete": "ok"}
    # NotPrincipal: deny everyone except the owner... here: everyone but user2 is denied puts.
    not_user2 = {
        "Effect": "Deny",
        "NotPrincipal": {"AWS": USER2_ARN},
        "Action": "s3:PutObject",
        "Resource": f"{ARN}{bkt}/*",
    }
    clients["owner"].put_bucket_policy(Bucket=bkt, Policy=policy(allow, not_user2))
    got_all = matrix(clients, bkt)
    assert got_all["owner"]["put"] == "AccessDenied" and got_all["user2"]["put"] == "ok"


def test_signature_failures_stay_403_on_a_public_bucket(
    clients: dict[str, Any], bkt: str, server: Server
) -> None:
    doc = policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": [f"{ARN}{bkt}", f"{ARN}{bkt}/*"]},
    )
    clients["owner"].put_bucket_policy(Bucket=bkt, Policy=doc)
    assert matrix(clients, bkt)["anon"] == OK4
    bad_secret = server.client(ACCESS_KEY, "not-the-secret-key-at-all-000000")
    with pytest.raises(ClientError) as exc:
        bad_secret.get_object(Bucket=bkt, Key="data/obj.txt")
    assert exc.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    unknown = server.client("NOSUCHKEY0000000", "whatever-secret-0000000000000000")
    with pytest.raises(ClientError) as exc:
        unknown.list_objects_v2(Bucket=bkt)
    assert exc.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_anonymous_outside_buckets(clients: dict[str, Any]) -> None:
    anon = clients["anon"]
    assert outcome(anon.list_buckets) == "AccessDenied"
    assert outcome(lambda: anon.create_bucket(Bucket=f"anon-{uuid.uuid4().hex[:8]}")) == "AccessDenied"
    assert outcome(lambda: anon.get_object(Bucket=f"none-{uuid.uuid4().hex[:8]}", Key="k")) == "NoSuchBucket"


def test_policy_management_is_owner_only(clients: dict[str, Any], bkt: str) -> None:
    doc = policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": [f"{ARN}{bkt}", f"{ARN}{bkt}/*"]},
    )
    owner = clients["owner"]
    assert outcome(lambda: owner.get_bucket_policy(Bucket=bkt)) == "NoSuchBucketPolicy"
    assert outcome(lambda: owner.get_bucket_policy_status(Bucket=bkt)) == "NoSuchBucketPolicy"
    owner.put_bucket_policy(Bucket=bkt, Policy=doc)
    for who in ("user2", "anon"):
        c = clients[who]
        assert outcome(lambda c=c: c.get_bucket_policy(Bucket=bkt)) == "AccessDenied"
        assert outcome(lambda c=c: c.delete_bucket_policy(Bucket=bkt)) == "AccessDenied"
        assert outcome(lambda c=c: c.put_bucket_policy(Bucket=bkt, Policy=doc)) == "AccessDenied"
    owner.delete_bucket_policy(Bucket=bkt)
    assert outcome(lambda: owner.get_bucket_policy(Bucket=bkt)) == "NoSuchBucketPolicy"


def test_multi_delete_and_copy_follow_the_policy(clients: dict[str, Any], bkt: str) -> None:
    doc = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": USER2_ARN},
            "Action": ["s3:DeleteObject", "s3:PutObject", "s3:GetObject"],
            "Resource": f"{ARN}{bkt}/data/*",
        },
    )
    owner, user2 = clients["owner"], clients["user2"]
    owner.put_bucket_policy(Bucket=bkt, Policy=doc)
    res = user2.delete_objects(
        Bucket=bkt, Delete={"Objects": [{"Key": "data/obj.txt"}, {"Key": "secret/s.txt"}]}
    )
    assert [d["Key"] for d in res.get("Deleted", [])] == ["data/obj.txt"]
    assert [(e["Key"], e["Code"]) for e in res["Errors"]] == [("secret/s.txt", "AccessDenied")]
    src = {"Bucket": bkt, "Key": "secret/s.txt"}
    assert outcome(lambda: user2.copy_object(Bucket=bkt, Key="data/copy", CopySource=src)) == "AccessDenied"
    owner.put_object(Bucket=bkt, Key="data/src", Body=b"copyme")
    user2.copy_object(Bucket=bkt, Key="data/copy", CopySource={"Bucket": bkt, "Key": "data/src"})
    assert user2.get_object(Bucket=bkt, Key="data/copy")["Body"].read() == b"copyme"


def test_missing_key_is_404_only_for_callers_who_may_list(clients: dict[str, Any], bkt: str) -> None:
    get_only = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{ARN}{bkt}/*"}
    owner, anon = clients["owner"], clients["anon"]
    owner.put_bucket_policy(Bucket=bkt, Policy=policy(get_only))
    assert (
        outcome(lambda: anon.get_object(Bucket=bkt, Key="nope")) == "NoSuchKey"
    )  # the policy allows the GET
    owner.put_bucket_acl(Bucket=bkt, ACL="public-read")
    owner.delete_bucket_policy(Bucket=bkt)
    assert outcome(lambda: anon.get_object(Bucket=bkt, Key="nope")) == "NoSuchKey"  # bucket READ: may list
    owner.put_bucket_acl(Bucket=bkt, ACL="private")
    assert outcome(lambda: anon.get_object(Bucket=bkt, Key="nope")) == "AccessDenied"


MALFORMED = [
    ("not json", "{"),
    ("bad effect", {"Effect": "Maybe", "Principal": "*", "Action": "s3:GetObject", "Resource": "{b}/*"}),
    ("no principal", {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "{b}/*"}),
    (
        "service principal",
        {
            "Effect": "Allow",
            "Principal": {"Service": "x.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": "{b}/*",
        },
    ),
    ("unknown action", {"Effect": "Allow", "Principal": "*", "Action": "s3:GetThing", "Resource": "{b}/*"}),
    (
        "non-s3 action",
        {"Effect": "Allow", "Principal": "*", "Action": "ec2:RunInstances", "Resource": "{b}/*"},
    ),
    (
        "bad arn",
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:ec2:::x"},
    ),
    (
        "other bucket",
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::other-bucket/*",
        },
    ),
    (
        "action vs resource",
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "{b}"},
    ),
    (
        "numeric condition on a non-number",
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:ListBucket",
            "Resource": "{b}",
            "Condition": {"NumericLessThan": {"s3:max-keys": "ten"}},
        },
    ),
    (
        "unknown operator",
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "{b}/*",
            "Condition": {"DateGreaterThan": {"aws:SourceIp": "x"}},
        },
    ),
    (
        "bad cidr",
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "{b}/*",
            "Condition": {"IpAddress": {"aws:SourceIp": "300.1.1.1/8"}},
        },
    ),
    (
        "bad bool",
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "{b}/*",
            "Condition": {"Bool": {"aws:SecureTransport": "maybe"}},
        },
    ),
    (
        "unknown field",
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "{b}/*", "Extra": 1},
    ),
    ("empty statement", []),
    ("bad version", "version"),
]


@pytest.mark.parametrize("name,statement", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_policies_are_refused_at_put(
    clients: dict[str, Any], bkt: str, name: str, statement: Any
) -> None:
    b = f"{ARN}{bkt}"
    if statement == "{":
        doc = "{"
    elif statement == "version":
        doc = json.dumps(
            {
                "Version": "2020-01-01",
                "Statement": [
                    {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{b}/*"}
                ],
            }
        )
    else:
        doc = json.dumps({"Version": "2012-10-17", "Statement": statement}).replace("{b}", b)
    with pytest.raises(ClientError) as exc:
        clients["owner"].put_bucket_policy(Bucket=bkt, Policy=doc)
    assert exc.value.response["Error"]["Code"] == "MalformedPolicy", name
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert outcome(lambda: clients["owner"].get_bucket_policy(Bucket=bkt)) == "NoSuchBucketPolicy"
