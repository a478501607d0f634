"""Canned ACLs, ACL documents and Block Public Access, enforced for owner / second user / anonymous."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import botocore
import pytest
from access_helpers import ARN, OK4, matrix, outcome

from conftest import USER2, Server, cleanup_bucket

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTH_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
DENY = "AccessDenied"


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
    name = f"acl-{uuid.uuid4().hex[:12]}"
    owner.create_bucket(Bucket=name)
    owner.put_object(Bucket=name, Key="data/obj.txt", Body=b"hello")
    yield name
    owner.delete_public_access_block(Bucket=name)
    owner.delete_bucket_policy(Bucket=name)
    cleanup_bucket(owner, name)


def grants(acl: dict[str, Any]) -> set[tuple[str, str]]:
    return {(g["Grantee"].get("URI") or g["Grantee"]["ID"], g["Permission"]) for g in acl["Grants"]}


def test_private_by_default_and_acl_document(clients: dict[str, Any], bkt: str) -> None:
    owner = clients["owner"]
    me = owner.list_buckets()["Owner"]
    acl = owner.get_bucket_acl(Bucket=bkt)
    assert acl["Owner"] == me
    assert grants(acl) == {(me["ID"], "FULL_CONTROL")}
    assert acl["Grants"][0]["Grantee"]["Type"] == "CanonicalUser"
    obj_acl = owner.get_object_acl(Bucket=bkt, Key="data/obj.txt")
    assert obj_acl["Owner"] == me and grants(obj_acl) == {(me["ID"], "FULL_CONTROL")}
    assert outcome(lambda: owner.get_object_acl(Bucket=bkt, Key="nope")) == "NoSuchKey"


def test_canned_bucket_acls(clients: dict[str, Any], bkt: str) -> None:
    owner = clients["owner"]
    me = owner.list_buckets()["Owner"]["ID"]
    owner.put_bucket_acl(Bucket=bkt, ACL="public-read")
    assert grants(owner.get_bucket_acl(Bucket=bkt)) == {(me, "FULL_CONTROL"), (ALL_USERS, "READ")}
    # Bucket READ lists; reading an object needs the object's own ACL.
    listing = {"get": DENY, "put": DENY, "list": "ok", "delete": DENY}
    assert matrix(clients, bkt) == {"owner": OK4, "user2": listing, "anon": listing}

    owner.put_bucket_acl(Bucket=bkt, ACL="public-read-write")
    write = {"get": DENY, "put": "ok", "list": "ok", "delete": "ok"}
    assert matrix(clients, bkt) == {"owner": OK4, "user2": write, "anon": write}

    owner.put_bucket_acl(Bucket=bkt, ACL="authenticated-read")
    assert grants(owner.get_bucket_acl(Bucket=bkt)) == {(me, "FULL_CONTROL"), (AUTH_USERS, "READ")}
    got = matrix(clients, bkt)
    assert (got["user2"]["list"], got["anon"]["list"]) == ("ok", DENY)

    owner.put_bucket_acl(Bucket=bkt, ACL="private")
    got = matrix(clients, bkt)
    assert (got["user2"]["list"], got["anon"]["list"]) == (DENY, DENY)
    # Only the owner (or a WRITE_ACP grantee) may change or read the ACL.
    assert outcome(lambda: clients["user2"].put_bucket_acl(Bucket=bkt, ACL="public-read")) == DENY
    assert outcome(lambda: clients["anon"].get_bucket_acl(Bucket=bkt)) == DENY


def test_canned_acl_on_create_bucket(clients: dict[str, Any]) -> None:
    owner, anon = clients["owner"], clients["anon"]
    name = f"acl-{uuid.uuid4().hex[:12]}"
    owner.create_bucket(Bucket=name, ACL="public-read")
    try:
        owner.put_object(Bucket=name, Key="k", Body=b"x", ACL="public-read")
        assert [o["Key"] for o in anon.list_objects_v2(Bucket=name)["Contents"]] == ["k"]
        assert anon.get_object(Bucket=name, Key="k")["Body"].read() == b"x"
    finally:
        cleanup_bucket(owner, name)
    bad = f"acl-{uuid.uuid4().hex[:12]}"
    assert outcome(lambda: owner.create_bucket(Bucket=bad, ACL="everyone-please")) == "InvalidArgument"
    assert outcome(lambda: owner.head_bucket(Bucket=bad)) == "404"


def test_canned_object_acls(clients: dict[str, Any], bkt: str) -> None:
    owner, user2, anon = clients["owner"], clients["user2"], clients["anon"]
    owner.put_object(Bucket=bkt, Key="pub", Body=b"p", ACL="public-read")
    owner.put_object(Bucket=bkt, Key="auth", Body=b"a", ACL="authenticated-read")
    owner.put_object(Bucket=bkt, Key="priv", Body=b"s")
    seen = {
        k: (
            outcome(lambda k=k: user2.get_object(Bucket=bkt, Key=k)),
            outcome(lambda k=k: anon.get_object(Bucket=bkt, Key=k)),
        )
        for k in ("pub", "auth", "priv")
    }
    assert seen == {"pub": ("ok", "ok"), "auth": ("ok", DENY), "priv": (DENY, DENY)}
    assert outcome(lambda: anon.head_object(Bucket=bkt, Key="pub")) == "ok"
    # Object READ grants no write, and no ACL access (READ_ACP).
    assert outcome(lambda: anon.put_object(Bucket=bkt, Key="pub", Body=b"z")) == DENY
    assert outcome(lambda: anon.get_object_acl(Bucket=bkt, Key="pub")) == DENY
    # PutObjectAcl flips an object, copy does not carry the ACL, multipart create records one.
    owner.put_object_acl(Bucket=bkt, Key="pub", ACL="private")
    assert outcome(lambda: anon.get_object(Bucket=bkt, Key="pub")) == DENY
    owner.put_object_acl(Bucket=bkt, Key="priv", ACL="public-read")
    owner.copy_object(Bucket=bkt, Key="priv-copy", CopySource={"Bucket": bkt, "Key": "priv"})
    owner.copy_object(Bucket=bkt, Key="pub-copy", CopySource={"Bucket": bkt, "Key": "pub"}, ACL="public-read")
    assert outcome(lambda: anon.get_object(Bucket=bkt, Key="priv")) == "ok"
    assert outcome(lambda: anon.get_object(Bucket=bkt, Key="priv-copy")) == DENY
    assert outcome(lambda: anon.get_object(Bucket=bkt, Key="pub-copy")) == "ok"
    up = owner.create_multipart_upload(Bucket=bkt, Key="mp", ACL="public-read")
    part = owner.upload_part(Bucket=bkt, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"m")
    owner.complete_multipart_upload(
        Bucket=bkt,
        Key="mp",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert anon.get_object(Bucket=bkt, Key="mp")["Body"].read() == b"m"


def test_bucket_owner_full_control_and_writer_ownership(clients: dict[str, Any], bkt: str) -> None:
    owner, user2 = clients["owner"], clients["user2"]
    owner.put_bucket_acl(Bucket=bkt, ACL="public-read-write")
    user2.put_object(Bucket=bkt, Key="theirs", Body=b"t", ACL="bucket-owner-full-control")
    me = owner.list_buckets()["Owner"]["ID"]
    them = user2.list_buckets()["Owner"]["ID"]
    acl = user2.get_object_acl(Bucket=bkt, Key="theirs")
    assert acl["Owner"]["ID"] == them
    assert grants(acl) == {(them, "FULL_CONTROL"), (me, "FULL_CONTROL")}
    assert owner.get_object(Bucket=bkt, Key="theirs")["Body"].read() == b"t"


def test_acl_xml_body_and_errors(clients: dict[str, Any], bkt: str) -> None:
    owner, anon = clients["owner"], clients["anon"]
    me = owner.list_buckets()["Owner"]
    them = clients["user2"].list_buckets()["Owner"]["ID"]
    policy = {
        "Owner": me,
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": me["ID"]}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"},
            {"Grantee": {"Type": "CanonicalUser", "ID": them}, "Permission": "WRITE"},
        ],
    }
    owner.put_bucket_acl(Bucket=bkt, AccessControlPolicy=policy)
    assert grants(owner.get_bucket_acl(Bucket=bkt)) == {
        (me["ID"], "FULL_CONTROL"),
        (ALL_USERS, "READ"),
        (them, "WRITE"),
    }
    got = matrix(clients, bkt)
    assert got["user2"] == {"get": DENY, "put": "ok", "list": "ok", "delete": "ok"}
    assert got["anon"] == {"get": DENY, "put": DENY, "list": "ok", "delete": DENY}
    owner.put_object_acl(
        Bucket=bkt, Key="data/obj.txt", AccessControlPolicy={"Owner": me, "Grants": policy["Grants"][:2]}
    )
    assert anon.get_object(Bucket=bkt, Key="data/obj.txt")["Body"].read() == b"hello"

    def put(grant: dict[str, Any]) -> str:
        return outcome(
            lambda: owner.put_bucket_acl(Bucket=bkt, AccessControlPolicy={"Owner": me, "Grants": [grant]})
        )

    assert (
        put(
            {
                "Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/s3/LogDelivery"},
                "Permission": "WRITE",
            }
        )
        == "NotImplemented"
    )
    assert (
        put(
            {
                "Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": "a@example.com"},
                "Permission": "READ",
            }
        )
        == "UnresolvableGrantByEmailAddress"
    )
    assert (
        put({"Grantee": {"Type": "CanonicalUser", "ID": "ab" * 32}, "Permission": "READ"})
        == "InvalidArgument"
    )
    assert (
        put({"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "EVERYTHING"})
        == "MalformedACLError"
    )
    assert outcome(lambda: owner.put_bucket_acl(Bucket=bkt, ACL="log-delivery-write")) == "NotImplemented"
    assert outcome(lambda: owner.put_object(Bucket=bkt, Key="x", Body=b"x", ACL="bogus")) == "InvalidArgument"
    assert (
        outcome(lambda: owner.put_bucket_acl(Bucket=bkt, GrantRead=f'uri="{ALL_USERS}"', ACL="private"))
        == "InvalidRequest"
    )
    owner.put_bucket_acl(Bucket=bkt, GrantRead=f'uri="{ALL_USERS}"', GrantFullControl=f'id="{me["ID"]}"')
    assert grants(owner.get_bucket_acl(Bucket=bkt)) == {(me["ID"], "FULL_CONTROL"), (ALL_USERS, "READ")}


def test_public_access_block_config(clients: dict[str, Any], bkt: str) -> None:
    owner = clients["owner"]
    assert (
        outcome(lambda: owner.get_public_access_block(Bucket=bkt)) == "NoSuchPublicAccessBlockConfiguration"
    )
    cfg = {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": False,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": False,
    }
    owner.put_public_access_block(Bucket=bkt, PublicAccessBlockConfiguration=cfg)
    assert owner.get_public_access_block(Bucket=bkt)["PublicAccessBlockConfiguration"] == cfg
    for who in ("user2", "anon"):
        c = clients[who]
        assert outcome(lambda c=c: c.get_public_access_block(Bucket=bkt)) == DENY
        assert outcome(lambda c=c: c.delete_public_access_block(Bucket=bkt)) == DENY
    owner.delete_public_access_block(Bucket=bkt)
    assert (
        outcome(lambda: owner.get_public_access_block(Bucket=bkt)) == "NoSuchPublicAccessBlockConfiguration"
    )


def _pab(owner: Any, bkt: str, **flags: bool) -> None:
    names = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    owner.put_public_access_block(
        Bucket=bkt, PublicAccessBlockConfiguration={n: flags.get(n, False) for n in names}
    )


def test_block_public_acls(clients: dict[str, Any], bkt: str) -> None:
    owner, anon = clients["owner"], clients["anon"]
    _pab(owner, bkt, BlockPublicAcls=True)
    assert outcome(lambda: owner.put_bucket_acl(Bucket=bkt, ACL="public-read")) == DENY
    assert outcome(lambda: owner.put_object(Bucket=bkt, Key="p", Body=b"p", ACL="public-read")) == DENY
    assert (
        outcome(lambda: owner.put_object_acl(Bucket=bkt, Key="data/obj.txt", ACL="authenticated-read"))
        == DENY
    )
    me = owner.list_buckets()["Owner"]
    xml_public = {
        "Owner": me,
        "Grants": [{"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"}],
    }
    assert outcome(lambda: owner.put_bucket_acl(Bucket=bkt, AccessControlPolicy=xml_public)) == DENY
    owner.put_object(Bucket=bkt, Key="p", Body=b"p", ACL="private")  # non-public ACLs still go through
    owner.put_object(Bucket=bkt, Key="q", Body=b"q", ACL="bucket-owner-full-control")
    assert outcome(lambda: anon.get_object(Bucket=bkt, Key="p")) == DENY


def test_ignore_public_acls(clients: dict[str, Any], bkt: str) -> None:
    owner, user2, anon = clients["owner"], clients["user2"], clients["anon"]
    owner.put_bucket_acl(Bucket=bkt, ACL="public-read-write")
    owner.put_object(Bucket=bkt, Key="pub", Body=b"p", ACL="public-read")
    assert (
        outcome(lambda: anon.get_object(Bucket=bkt, Key="pub")),
        outcome(lambda: anon.list_objects(Bucket=bkt)),
    ) == ("ok", "ok")
    _pab(owner, bkt, IgnorePublicAcls=True)
    got = matrix(clients, bkt, get_key="pub")
    assert got == {
        "owner": OK4,
        "user2": {"get": DENY, "put": DENY, "list": DENY, "delete": DENY},
        "anon": {"get": DENY, "put": DENY, "list": DENY, "delete": DENY},
    }
    # The ACL is kept, only ignored: lifting the block restores access.
    owner.delete_public_access_block(Bucket=bkt)
    assert outcome(lambda: user2.get_object(Bucket=bkt, Key="pub")) == "ok"


def test_block_public_policy(clients: dict[str, Any], bkt: str) -> None:
    owner = clients["owner"]
    _pab(owner, bkt, BlockPublicPolicy=True)
    public = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{ARN}{bkt}/*"}
            ],
        }
    )
    assert outcome(lambda: owner.put_bucket_policy(Bucket=bkt, Policy=public)) == DENY
    pinned = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"{ARN}{bkt}/*",
                    "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}},
                }
            ],
        }
    )
    owner.put_bucket_policy(Bucket=bkt, Policy=pinned)
    assert matrix(clients, bkt)["anon"]["get"] == "ok"


def test_restrict_public_buckets(clients: dict[str, Any], bkt: str) -> None:
    owner = clients["owner"]
    public = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject", "s3:ListBucket"],
                    "Resource": [f"{ARN}{bkt}", f"{ARN}{bkt}/*"],
                }
            ],
        }
    )
    owner.put_bucket_policy(Bucket=bkt, Policy=public)
    read = {"get": "ok", "put": DENY, "list": "ok", "delete": DENY}
    assert matrix(clients, bkt) == {"owner": OK4, "user2": read, "anon": read}
    _pab(owner, bkt, RestrictPublicBuckets=True)
    deny = {"get": DENY, "put": DENY, "list": DENY, "delete": DENY}
    assert matrix(clients, bkt) == {"owner": OK4, "user2": deny, "anon": deny}
