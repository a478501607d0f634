"""The policy evaluator, ACL grants and the operation → action table, without a server."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest

from rs3gw import errors
from rs3gw.access import acl as acls
from rs3gw.access.actions import ACTIONS, KNOWN_ACTIONS, action_name
from rs3gw.access.conditions import Condition
from rs3gw.access.decide import BucketAccess, Verdict, bucket_verdict
from rs3gw.access.policy import Facts, Requester, load

B = "bkt"
OWNER = Requester("a" * 64, "owner", "OWNERKEY", False)
USER = Requester("b" * 64, "second", "SECONDKEY", False)
ANON = Requester("65a011a29cdf8ec533ec3d1ccaae921c", "anonymous", "", True)


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def facts(who: Requester, action: str, key: str | None = "k", **ctx: str) -> Facts:
    return Facts(who, action, f"arn:aws:s3:::{B}" + (f"/{key}" if key is not None else ""), ctx)


def test_wildcards_in_actions_and_resources() -> None:
    p = load(
        doc(
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:get*",
                "Resource": f"arn:aws:s3:::{B}/pub/?.txt",
            }
        ),
        B,
    )
    assert p.evaluate(facts(ANON, "s3:GetObject", "pub/a.txt")) == "Allow"
    assert p.evaluate(facts(ANON, "s3:GetObject", "pub/ab.txt")) is None
    assert p.evaluate(facts(ANON, "s3:PutObject", "pub/a.txt")) is None


def test_principals_match_their_user_only() -> None:
    for principal in (
        {"AWS": "arn:aws:iam::123456789012:user/second"},
        {"AWS": "b" * 64},
        {"CanonicalUser": "b" * 64},
        {"AWS": ["SECONDKEY"]},
    ):
        p = load(
            doc(
                {
                    "Effect": "Allow",
                    "Principal": principal,
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{B}/*",
                }
            ),
            B,
        )
        assert p.evaluate(facts(USER, "s3:GetObject")) == "Allow", principal
        assert p.evaluate(facts(OWNER, "s3:GetObject")) is None
        assert p.evaluate(facts(ANON, "s3:GetObject")) is None


def test_missing_condition_keys() -> None:
    """IAM: a missing key fails a positive operator, satisfies a negated one and any ...IfExists."""
    assert not Condition("StringEquals", "s3:prefix", ("a",)).holds({})
    assert Condition("StringNotEquals", "s3:prefix", ("a",)).holds({})
    assert Condition("StringEquals", "s3:prefix", ("a",), if_exists=True).holds({})
    assert Condition("NotIpAddress", "aws:sourceip", ("10.0.0.0/8",)).holds({})
    assert Condition("Null", "s3:prefix", ("true",)).holds({})
    assert not Condition("Null", "s3:prefix", ("false",)).holds({})
    assert Condition("StringNotLike", "s3:prefix", ("a*", "b*")).holds({"s3:prefix": "c"})
    assert not Condition("StringNotLike", "s3:prefix", ("a*", "b*")).holds({"s3:prefix": "b1"})
    assert Condition("IpAddress", "aws:sourceip", ("::1/128",)).holds({"aws:sourceip": "::1"})


def test_deny_wins_and_owner_is_implicit() -> None:
    p = load(
        doc(
            {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": f"arn:aws:s3:::{B}/*"},
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:DeleteObject",
                "Resource": f"arn:aws:s3:::{B}/keep/*",
            },
        ),
        B,
    )
    b = BucketAccess(OWNER.canonical_id, p)
    get, delete = ACTIONS["GetObject"], ACTIONS["DeleteObject"]
    assert bucket_verdict("GetObject", get, facts(ANON, "s3:GetObject"), b) is Verdict.ALLOW
    assert (
        bucket_verdict("DeleteObject", delete, facts(OWNER, "s3:DeleteObject", "keep/x"), b) is Verdict.DENY
    )
    assert (
        bucket_verdict("DeleteObject", delete, facts(OWNER, "s3:DeleteObject", "other"), b) is Verdict.ALLOW
    )
    nothing = BucketAccess(OWNER.canonical_id, None)
    assert bucket_verdict("GetObject", get, facts(USER, "s3:GetObject"), nothing) is Verdict.OBJECT_ACL
    assert (
        bucket_verdict("PutObject", ACTIONS["PutObject"], facts(USER, "s3:PutObject"), nothing)
        is Verdict.DENY
    )


def test_public_means_aws_definition() -> None:
    stmt = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{B}/*"}
    assert load(doc(stmt), B).public
    pinned = {**stmt, "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}}}
    assert not load(doc(pinned), B).public
    wide = {**stmt, "Condition": {"IpAddress": {"aws:SourceIp": ["0.0.0.0/0"]}}}
    assert load(doc(wide), B).public
    assert not load(doc({**stmt, "Effect": "Deny"}), B).public
    assert load(doc({**stmt, "Principal": {"AWS": ["b" * 64, "*"]}}), B).public


@pytest.mark.parametrize(
    "bad",
    [
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "NotAction": "s3:PutObject",
            "Resource": "arn:aws:s3:::bkt/*",
        },
        {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::bkt/*"},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"},
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::1:root"},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::bkt/*",
        },
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::bkt/*",
            "Condition": {"ForAnyValue:StringEquals": {"s3:prefix": "a"}},
        },
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::bkt/*",
            "Condition": {"StringEquals": {"aws:SourceIp": "1.2.3.4"}},
        },
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::bkt/*",
            "Condition": {"StringEquals": {"s3:prefix": []}},
        },
    ],
)
def test_malformed(bad: dict[str, Any]) -> None:
    with pytest.raises(errors.S3Error) as exc:
        load(doc(bad), B)
    assert exc.value.code == "MalformedPolicy"


def test_every_s3_operation_is_mapped_or_owner_only() -> None:
    ops = set(botocore.session.get_session().get_service_model("s3").operation_names)
    unmapped = ops - set(ACTIONS)
    # New or non-S3-proper operations (directory buckets, metadata tables, ABAC, annotations):
    # reachable by the bucket owner only, which is what dispatch does for an unmapped name.
    assert all(
        any(
            w in op
            for w in (
                "Metadata",
                "Abac",
                "Annotation",
                "Session",
                "Directory",
                "Rename",
                "WriteGetObject",
                "UpdateObjectEncryption",
            )
        )
        for op in unmapped
    ), sorted(unmapped)
    assert set(ACTIONS) <= ops
    for a in ACTIONS.values():
        assert a.name.lower() in KNOWN_ACTIONS
    assert action_name(ACTIONS["GetObject"], "v1") == "s3:GetObjectVersion"
    assert action_name(ACTIONS["GetObject"], None) == "s3:GetObject"


def test_acl_grants() -> None:
    pub = acls.CANNED["public-read"]
    assert pub.public and not acls.CANNED["bucket-owner-full-control"].public
    assert pub.allows("READ", ANON, OWNER.canonical_id, OWNER.canonical_id, ignore_public=False)
    assert not pub.allows("READ", ANON, OWNER.canonical_id, OWNER.canonical_id, ignore_public=True)
    assert not pub.allows("WRITE", USER, OWNER.canonical_id, OWNER.canonical_id, ignore_public=False)
    auth = acls.CANNED["authenticated-read"]
    assert auth.allows("READ", USER, OWNER.canonical_id, OWNER.canonical_id, False)
    assert not auth.allows("READ", ANON, OWNER.canonical_id, OWNER.canonical_id, False)
    bofc = acls.CANNED["bucket-owner-full-control"]
    assert bofc.allows("READ_ACP", OWNER, USER.canonical_id, OWNER.canonical_id, False)
    assert acls.loads(bofc.dumps()) == bofc
    grants = acls.from_headers({"x-amz-grant-read": f'id="{USER.canonical_id}", uri="{acls.ALL_USERS}"'})
    assert grants is not None and {g.grantee for g in grants.grants} == {USER.canonical_id, acls.ALL_USERS}
    with pytest.raises(errors.S3Error):
        acls.from_headers({"x-amz-acl": "private", "x-amz-grant-read": 'uri="x"'})
