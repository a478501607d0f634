"""Bucket-policy Condition keys and operators over a real server, as S3 evaluates them.

Each test restates one ceph/s3-tests ``test_bucket_policy_*`` case (named in its docstring) with
the owner (``server.client()``), the second ``--user`` and, where the case needs it, an unsigned
client; extra tests pin the AWS rules the cases rely on (unknown keys are absent, not refused).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import botocore
import pytest
from access_helpers import ARN, outcome, policy

from conftest import USER2, Server, cleanup_bucket
from rs3gw.model import Owner

# In key order, as GetObjectTagging answers.
TAGS_PUBLIC = {"TagSet": [{"Key": "foo", "Value": "bar"}, {"Key": "security", "Value": "public"}]}
TAGS_PRIVATE = {"TagSet": [{"Key": "security", "Value": "private"}]}
TAGS_INVALID = {"TagSet": [{"Key": "security1", "Value": "public"}]}


@pytest.fixture(scope="module")
def owner(server: Server) -> Any:
    return server.client()


@pytest.fixture(scope="module")
def alt(server: Server) -> Any:
    return server.client(USER2[1], USER2[2])


@pytest.fixture
def buckets(owner: Any) -> Iterator[Callable[..., str]]:
    """A factory of fresh owner buckets (optionally with objects whose body is their key)."""
    made: list[str] = []

    def make(*keys: str) -> str:
        name = f"cond-{uuid.uuid4().hex[:12]}"
        owner.create_bucket(Bucket=name)
        made.append(name)
        for k in keys:
            owner.put_object(Bucket=name, Key=k, Body=k.encode())
        return name

    yield make
    for name in made:
        cleanup_bucket(owner, name)


def allow(
    action: str, resource: str | list[str], condition: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    st: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": action,
        "Resource": resource,
    }
    if condition is not None:
        st["Condition"] = condition
    st.update(extra)
    return st


def with_headers(server: Server, event: str, headers: dict[str, str], **cfg: Any) -> Any:
    """A second-user client (unsigned when ``cfg`` says so) that adds ``headers`` to every
    ``event`` call, as the s3-tests cases do with before-call hooks."""
    c = server.client(**cfg) if cfg else server.client(USER2[1], USER2[2])
    c.meta.events.register(event, lambda params, **_: params["headers"].update(headers))
    return c


def without_header(server: Server, event: str, header: str) -> Any:
    c = server.client(USER2[1], USER2[2])
    c.meta.events.register(event, lambda params, **_: params["headers"].pop(header, None))
    return c


def tagged_objects(owner: Any, make: Callable[..., str]) -> str:
    b = make("publictag", "privatetag", "invalidtag")
    owner.put_object_tagging(Bucket=b, Key="publictag", Tagging=TAGS_PUBLIC)
    owner.put_object_tagging(Bucket=b, Key="privatetag", Tagging=TAGS_PRIVATE)
    owner.put_object_tagging(Bucket=b, Key="invalidtag", Tagging=TAGS_INVALID)
    return b


EXISTING_PUBLIC = {"StringEquals": {"s3:ExistingObjectTag/security": "public"}}


def test_get_obj_existing_tag(owner: Any, alt: Any, buckets: Callable[..., str]) -> None:
    """s3-tests test_bucket_policy_get_obj_existing_tag: GetObject allowed only on objects whose
    stored tag security=public; a different value or a differently named tag is denied."""
    b = tagged_objects(owner, buckets)
    owner.put_bucket_policy(Bucket=b, Policy=policy(allow("s3:GetObject", f"{ARN}{b}/*", EXISTING_PUBLIC)))
    assert alt.get_object(Bucket=b, Key="publictag")["Body"].read() == b"publictag"
    assert outcome(lambda: alt.get_object(Bucket=b, Key="privatetag")) == "AccessDenied"
    assert outcome(lambda: alt.get_object(Bucket=b, Key="invalidtag")) == "AccessDenied"
    assert alt.head_object(Bucket=b, Key="publictag")["ContentLength"] == len("publictag")


def test_get_obj_tagging_existing_tag(owner: Any, alt: Any, buckets: Callable[..., str]) -> None:
    """s3-tests test_bucket_policy_get_obj_tagging_existing_tag: the tag condition on
    s3:GetObjectTagging; GetObject itself stays denied (only tagging reads were allowed)."""
    b = tagged_objects(owner, buckets)
    doc = policy(allow("s3:GetObjectTagging", f"{ARN}{b}/*", EXISTING_PUBLIC))
    owner.put_bucket_policy(Bucket=b, Policy=doc)
    assert alt.get_object_tagging(Bucket=b, Key="publictag")["TagSet"] == TAGS_PUBLIC["TagSet"]
    assert outcome(lambda: alt.get_object(Bucket=b, Key="publictag")) == "AccessDenied"
    assert outcome(lambda: alt.get_object_tagging(Bucket=b, Key="privatetag")) == "AccessDenied"
    assert outcome(lambda: alt.get_object_tagging(Bucket=b, Key="invalidtag")) == "AccessDenied"


def test_put_obj_tagging_existing_tag(owner: Any, alt: Any, buckets: Callable[..., str]) -> None:
    """s3-tests test_bucket_policy_put_obj_tagging_existing_tag: the condition reads the tags
    stored before the request, so retagging public -> private succeeds once and then is denied."""
    b = tagged_objects(owner, buckets)
    doc = policy(allow("s3:PutObjectTagging", f"{ARN}{b}/*", EXISTING_PUBLIC))
    owner.put_bucket_policy(Bucket=b, Policy=doc)
    assert outcome(lambda: alt.put_object_tagging(Bucket=b, Key="publictag", Tagging=TAGS_PUBLIC)) == "ok"
    assert (
        outcome(lambda: alt.put_object_tagging(Bucket=b, Key="privatetag", Tagging=TAGS_PUBLIC))
        == "AccessDenied"
    )
    assert outcome(lambda: alt.put_object_tagging(Bucket=b, Key="publictag", Tagging=TAGS_PRIVATE)) == "ok"
    assert (
        outcome(lambda: alt.put_object_tagging(Bucket=b, Key="publictag", Tagging=TAGS_PUBLIC))
        == "AccessDenied"
    )
    assert owner.get_object_tagging(Bucket=b, Key="publictag")["TagSet"] == TAGS_PRIVATE["TagSet"]


def test_get_obj_acl_existing_tag(owner: Any, alt: Any, buckets: Callable[..., str]) -> None:
    """s3-tests test_bucket_policy_get_obj_acl_existing_tag: the tag condition on s3:GetObjectAcl."""
    b = tagged_objects(owner, buckets)
    owner.put_bucket_policy(Bucket=b, Policy=policy(allow("s3:GetObjectAcl", f"{ARN}{b}/*", EXISTING_PUBLIC)))
    assert outcome(lambda: alt.get_object_acl(Bucket=b, Key="publictag")) == "ok"
    assert outcome(lambda: alt.get_object(Bucket=b, Key="publictag")) == "AccessDenied"
    assert outcome(lambda: alt.get_object_acl(Bucket=b, Key="privatetag")) == "AccessDenied"
    assert outcome(lambda: alt.get_object_acl(Bucket=b, Key="invalidtag")) == "AccessDenied"


def test_existing_tag_of_the_version_asked_for(owner: Any, alt: Any, buckets: Callable[..., str]) -> None:
    """ExistingObjectTag is the tags of the version the request names, not the latest one's."""
    b = buckets()
    owner.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    v1 = owner.put_object(Bucket=b, Key="k", Body=b"one", Tagging="security=public")["VersionId"]
    v2 = owner.put_object(Bucket=b, Key="k", Body=b"two", Tagging="security=private")["VersionId"]
    doc = policy(allow("s3:GetObjectVersion", f"{ARN}{b}/*", EXISTING_PUBLIC))
    owner.put_bucket_policy(Bucket=b, Policy=doc)
    assert alt.get_object(Bucket=b, Key="k", VersionId=v1)["Body"].read() == b"one"
    assert outcome(lambda: alt.get_object(Bucket=b, Key="k", VersionId=v2)) == "AccessDenied"


def test_put_obj_copy_source(owner: Any, alt: Any, buckets: Callable[..., str]) -> None:
    """s3-tests test_bucket_policy_put_obj_copy_source: s3:x-amz-copy-source StringLike
    "<src>/public/*" lets the second user copy public/* objects in, not private/*."""
    src = buckets("public/foo", "public/bar", "private/foo")
    owner.put_bucket_policy(Bucket=src, Policy=policy(allow("s3:GetObject", f"{ARN}{src}/*")))
    dst = buckets()
    cond = {"StringLike": {"s3:x-amz-copy-source": f"{src}/public/*"}}
    owner.put_bucket_policy(Bucket=dst, Policy=policy(allow("s3:PutObject", f"{ARN}{dst}/*", cond)))
    alt.copy_object(Bucket=dst, CopySource={"Bucket": src, "Key": "public/foo"}, Key="new_foo")
    assert alt.get_object(Bucket=dst, Key="new_foo")["Body"].read() == b"public/foo"
    alt.copy_object(Bucket=dst, CopySource={"Bucket": src, "Key": "public/bar"}, Key="new_foo2")
    assert alt.get_object(Bucket=dst, Key="new_foo2")["Body"].read() == b"public/bar"
    denied = outcome(
        lambda: alt.copy_object(Bucket=dst, CopySource={"Bucket": src, "Key": "private/foo"}, Key="new_foo2")
    )
    assert denied == "AccessDenied"
    assert outcome(lambda: alt.put_object(Bucket=dst, Key="plain", Body=b"x")) == "AccessDenied"


def test_put_obj_copy_source_meta(server: Server, owner: Any, alt: Any, buckets: Callable[..., str]) -> None:
    """s3-tests test_bucket_policy_put_obj_copy_source_meta: StringEquals
    s3:x-amz-metadata-directive COPY; a copy without the header (key absent) is denied."""
    src = buckets("public/foo", "public/bar")
    owner.put_bucket_policy(Bucket=src, Policy=policy(allow("s3:GetObject", f"{ARN}{src}/*")))
    dst = buckets()
    cond = {"StringEquals": {"s3:x-amz-metadata-directive": "COPY"}}
    owner.put_bucket_policy(Bucket=dst, Policy=policy(allow("s3:PutObject", f"{ARN}{dst}/*", cond)))
    copying = with_headers(server, "before-call.s3.CopyObject", {"x-amz-metadata-directive": "COPY"})
    copying.copy_object(Bucket=dst, CopySource={"Bucket": src, "Key": "public/foo"}, Key="new_foo")
    assert alt.get_object(Bucket=dst, Key="new_foo")["Body"].read() == b"public/foo"
    bare = without_header(server, "before-call.s3.CopyObject", "x-amz-metadata-directive")
    denied = outcome(
        lambda: bare.copy_object(
            Bucket=dst,
            CopySource={"Bucket": src, "Key": "public/bar"},
            Key="new_foo2",
            Metadata={"foo": "bar"},
        )
    )
    assert denied == "AccessDenied"
    replacing = outcome(
        lambda: alt.copy_object(
            Bucket=dst,
            CopySource={"Bucket": src, "Key": "public/bar"},
            Key="new_foo3",
            Metadata={"foo": "bar"},
            MetadataDirective="REPLACE",
        )
    )
    assert replacing == "AccessDenied"


def test_put_obj_acl(server: Server, owner: Any, alt: Any, buckets: Callable[..., str]) -> None:
    """s3-tests test_bucket_policy_put_obj_acl: Allow PutObject plus Deny when s3:x-amz-acl is
    StringLike "public*": a plain upload works, one declaring public-read is denied."""
    b = buckets()
    deny = {
        **allow("s3:PutObject", f"{ARN}{b}/*", {"StringLike": {"s3:x-amz-acl": "public*"}}),
        "Effect": "Deny",
    }
    owner.put_bucket_policy(Bucket=b, Policy=policy(allow("s3:PutObject", f"{ARN}{b}/*"), deny))
    assert outcome(lambda: alt.put_object(Bucket=b, Key="private-key", Body=b"private-key")) == "ok"
    public = with_headers(server, "before-call.s3.PutObject", {"x-amz-acl": "public-read"})
    assert (
        outcome(lambda: public.put_object(Bucket=b, Key="public-key", Body=b"public-key")) == "AccessDenied"
    )
    assert outcome(lambda: alt.put_object(Bucket=b, Key="k2", Body=b"x", ACL="private")) == "ok"


def test_put_obj_grant(server: Server, owner: Any, alt: Any, buckets: Callable[..., str]) -> None:
    """s3-tests test_bucket_policy_put_obj_grant: PutObject allowed only when the upload grants
    the bucket owner full control (s3:x-amz-grant-full-control = "id=<owner id>"); the object's
    ACL then names the owner. A second bucket without the condition takes plain uploads."""
    owner_id = owner.list_buckets()["Owner"]["ID"]
    b1, b2 = buckets(), buckets()
    grant = f"id={owner_id}"
    cond = {"StringEquals": {"s3:x-amz-grant-full-control": grant}}
    owner.put_bucket_policy(Bucket=b1, Policy=policy(allow("s3:PutObject", f"{ARN}{b1}/*", cond)))
    owner.put_bucket_policy(Bucket=b2, Policy=policy(allow("s3:PutObject", f"{ARN}{b2}/*")))
    granting = with_headers(server, "before-call.s3.PutObject", {"x-amz-grant-full-control": grant})
    assert outcome(lambda: granting.put_object(Bucket=b1, Key="key1", Body=b"key1")) == "ok"
    assert outcome(lambda: alt.put_object(Bucket=b1, Key="key1b", Body=b"key1")) == "AccessDenied"
    assert outcome(lambda: alt.put_object(Bucket=b2, Key="key2", Body=b"key2")) == "ok"
    grants = owner.get_object_acl(Bucket=b1, Key="key1")["Grants"]
    assert {"Grantee": {"ID": owner_id, "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"} in [
        {"Grantee": {k: g["Grantee"][k] for k in ("ID", "Type")}, "Permission": g["Permission"]}
        for g in grants
    ]
    alt_id = alt.list_buckets()["Owner"]["ID"]
    assert alt.get_object_acl(Bucket=b2, Key="key2")["Grants"][0]["Grantee"]["ID"] == alt_id


def test_put_obj_request_obj_tag(server: Server, owner: Any, alt: Any, buckets: Callable[..., str]) -> None:
    """s3-tests test_bucket_policy_put_obj_request_obj_tag: PutObject allowed only when the
    x-amz-tagging header sets security=public (s3:RequestObjectTag/security); s3:RequestObjectTagKeys
    with ForAllValues limits which tag keys an upload may set."""
    b = buckets()
    cond = {"StringEquals": {"s3:RequestObjectTag/security": "public"}}
    owner.put_bucket_policy(Bucket=b, Policy=policy(allow("s3:PutObject", f"{ARN}{b}/*", cond)))
    assert outcome(lambda: alt.put_object(Bucket=b, Key="testobj", Body=b"testobj")) == "AccessDenied"
    tagged = with_headers(server, "before-call.s3.PutObject", {"x-amz-tagging": "security=public"})
    assert outcome(lambda: tagged.put_object(Bucket=b, Key="testobj", Body=b"testobj")) == "ok"
    assert owner.get_object_tagging(Bucket=b, Key="testobj")["TagSet"] == [
        {"Key": "security", "Value": "public"}
    ]
    assert outcome(lambda: alt.put_object(Bucket=b, Key="t2", Body=b"x", Tagging="security=private")) == (
        "AccessDenied"
    )
    keys_only = {
        "ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["security", "team"]},
        "Null": {"s3:RequestObjectTagKeys": "false"},
    }
    owner.put_bucket_policy(Bucket=b, Policy=policy(allow("s3:PutObject", f"{ARN}{b}/*", keys_only)))
    assert outcome(lambda: alt.put_object(Bucket=b, Key="t3", Body=b"x", Tagging="team=a&security=b")) == "ok"
    assert outcome(lambda: alt.put_object(Bucket=b, Key="t4", Body=b"x", Tagging="team=a&other=b")) == (
        "AccessDenied"
    )
    assert outcome(lambda: alt.put_object(Bucket=b, Key="t5", Body=b"x")) == "AccessDenied"


def test_list_bucket_with_maxkeys(owner: Any, alt: Any, buckets: Callable[..., str]) -> None:
    """s3-tests test_bucket_policy_list_bucket_with_maxkeys: NumericLessThanEquals s3:max-keys 1:
    a listing asking for one key is allowed, asking for more (or not saying) is denied."""
    b = buckets("key1", "key2")
    cond = {"NumericLessThanEquals": {"s3:max-keys": "1"}}
    owner.put_bucket_policy(
        Bucket=b, Policy=policy(allow("s3:ListBucket", [f"{ARN}{b}", f"{ARN}{b}/*"], cond))
    )
    assert len(alt.list_objects(Bucket=b, MaxKeys=1)["Contents"]) == 1
    assert len(alt.list_objects_v2(Bucket=b, MaxKeys=1)["Contents"]) == 1
    assert outcome(lambda: alt.list_objects(Bucket=b, MaxKeys=2)) == "AccessDenied"
    assert outcome(lambda: alt.list_objects(Bucket=b)) == "AccessDenied"


def test_list_bucket_with_delimiter_and_prefix(owner: Any, alt: Any, buckets: Callable[..., str]) -> None:
    """s3-tests test_bucket_policy_list_bucket_with_delimiter / _with_prefix: s3:delimiter and
    s3:prefix StringEquals, AND-ed when both are named."""
    b = buckets("a/1", "a/2", "b/1")
    cond = {"StringEquals": {"s3:delimiter": "/", "s3:prefix": "a/"}}
    owner.put_bucket_policy(Bucket=b, Policy=policy(allow("s3:ListBucket", f"{ARN}{b}", cond)))
    listed = alt.list_objects_v2(Bucket=b, Delimiter="/", Prefix="a/")
    assert [o["Key"] for o in listed["Contents"]] == ["a/1", "a/2"]
    assert outcome(lambda: alt.list_objects_v2(Bucket=b, Prefix="a/")) == "AccessDenied"
    assert outcome(lambda: alt.list_objects_v2(Bucket=b, Delimiter="/")) == "AccessDenied"
    assert outcome(lambda: alt.list_objects_v2(Bucket=b, Delimiter="/", Prefix="b/")) == "AccessDenied"


def test_set_condition_operator_end_with_ifexists(
    server: Server, owner: Any, buckets: Callable[..., str]
) -> None:
    """s3-tests test_bucket_policy_set_condition_operator_end_with_IfExists: StringLikeIfExists on
    aws:Referer: matching referers and no referer at all are allowed, another referer is denied
    (asked by an anonymous caller, whom only the policy can allow)."""
    b = buckets("foo")
    statement = allow(
        "s3:GetObject", f"{ARN}{b}/*", {"StringLikeIfExists": {"aws:Referer": "http://www.example.com/*"}}
    )
    statement["Principal"] = "*"
    owner.put_bucket_policy(Bucket=b, Policy=policy(statement))
    unsigned = {"signature_version": botocore.UNSIGNED}
    for referer, expected in (
        ("http://www.example.com/", "ok"),
        ("http://www.example.com/index.html", "ok"),
        ("http://example.com", "AccessDenied"),
    ):
        c: Any = with_headers(server, "before-call.s3.GetObject", {"referer": referer}, **unsigned)
        assert outcome(functools.partial(c.get_object, Bucket=b, Key="foo")) == expected, referer
    anon = server.client(**unsigned)
    assert anon.get_object(Bucket=b, Key="foo")["Body"].read() == b"foo"


def test_block_public_policy_with_principal(owner: Any, buckets: Callable[..., str]) -> None:
    """s3-tests test_block_public_policy_with_principal: with BlockPublicPolicy on, a policy naming
    a tenant-style principal (arn:aws:iam::s3tenant1:root) is not public and is accepted."""
    b = buckets()
    owner.put_public_access_block(
        Bucket=b,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": False,
            "IgnorePublicAcls": False,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": False,
        },
    )
    statement = allow("s3:GetObject", f"{ARN}{b}/*", Principal={"AWS": "arn:aws:iam::s3tenant1:root"})
    owner.put_bucket_policy(Bucket=b, Policy=policy(statement))
    assert json.loads(owner.get_bucket_policy(Bucket=b)["Policy"])["Statement"][0]["Principal"] == {
        "AWS": "arn:aws:iam::s3tenant1:root"
    }
    public = allow("s3:GetObject", f"{ARN}{b}/*")
    assert outcome(lambda: owner.put_bucket_policy(Bucket=b, Policy=policy(public))) == "AccessDenied"


def test_root_principal_names_the_account(owner: Any, alt: Any, buckets: Callable[..., str]) -> None:
    """arn:aws:iam::<account>:root is the user whose canonical id is <account>; a tenant name that
    is no user's id matches nobody."""
    b = buckets("obj")
    alt_id = Owner.for_account(USER2[0]).id
    assert alt.list_buckets()["Owner"]["ID"] == alt_id
    nobody = allow("s3:GetObject", f"{ARN}{b}/*", Principal={"AWS": "arn:aws:iam::s3tenant1:root"})
    owner.put_bucket_policy(Bucket=b, Policy=policy(nobody))
    assert outcome(lambda: alt.get_object(Bucket=b, Key="obj")) == "AccessDenied"
    named = allow("s3:GetObject", f"{ARN}{b}/*", Principal={"AWS": f"arn:aws:iam::{alt_id}:root"})
    owner.put_bucket_policy(Bucket=b, Policy=policy(named))
    assert alt.get_object(Bucket=b, Key="obj")["Body"].read() == b"obj"


def test_unknown_keys_are_absent_not_malformed(owner: Any, alt: Any, buckets: Callable[..., str]) -> None:
    """AWS accepts condition keys it does not fill in for the request: the key is then absent, so
    StringEquals is false, StringEqualsIfExists and Null=true are true."""
    b = buckets("obj")
    key = "aws:PrincipalOrgID"
    for cond, expected in (
        ({"StringEquals": {key: "o-123"}}, "AccessDenied"),
        ({"StringEqualsIfExists": {key: "o-123"}}, "ok"),
        ({"Null": {key: "true"}}, "ok"),
        ({"Null": {key: "false"}}, "AccessDenied"),
    ):
        owner.put_bucket_policy(Bucket=b, Policy=policy(allow("s3:GetObject", f"{ARN}{b}/*", cond)))
        assert outcome(lambda: alt.get_object(Bucket=b, Key="obj")) == expected, cond


def test_requester_keys(owner: Any, alt: Any, buckets: Callable[..., str]) -> None:
    """aws:username is the requester's user name; s3:signatureversion says how it signed; Numeric
    and Date operators compare aws:EpochTime / aws:CurrentTime."""
    b = buckets("obj")
    for cond, expected in (
        ({"StringEquals": {"aws:username": USER2[0]}}, "ok"),
        ({"StringEquals": {"aws:username": "someone-else"}}, "AccessDenied"),
        ({"StringEquals": {"s3:signatureversion": "AWS4-HMAC-SHA256"}}, "ok"),
        ({"StringEquals": {"s3:authType": "REST-HEADER"}}, "ok"),
        ({"NumericGreaterThan": {"aws:EpochTime": "1000"}}, "ok"),
        ({"DateLessThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}}, "AccessDenied"),
        ({"DateGreaterThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}}, "ok"),
    ):
        owner.put_bucket_policy(Bucket=b, Policy=policy(allow("s3:GetObject", f"{ARN}{b}/*", cond)))
        assert outcome(lambda: alt.get_object(Bucket=b, Key="obj")) == expected, cond


@pytest.mark.parametrize(
    "condition",
    [
        {"NumericLessThan": {"s3:max-keys": "ten"}},
        {"DateGreaterThan": {"aws:CurrentTime": "yesterday"}},
        {"StringEqualsMaybe": {"s3:prefix": "a"}},
        {"ForSomeValues:StringEquals": {"s3:RequestObjectTagKeys": "a"}},
        {"NullIfExists": {"s3:prefix": "true"}},
    ],
)
def test_malformed_conditions_are_refused(
    owner: Any, buckets: Callable[..., str], condition: dict[str, Any]
) -> None:
    """Unknown operators and values an operator cannot compare stay MalformedPolicy."""
    b = buckets()
    doc = policy(allow("s3:GetObject", f"{ARN}{b}/*", condition))
    assert outcome(lambda: owner.put_bucket_policy(Bucket=b, Policy=doc)) == "MalformedPolicy"
