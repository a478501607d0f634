"""More behaviours that ceph/s3-tests (boto3 flavour) checks and rs3gw once answered differently.

Each test names the s3-tests cases that found the gap. The suite's own code is not used: these
are our re-statements of what it checks, against a real ``rs3gw serve`` with real boto3 clients.
"""

from __future__ import annotations

import uuid
from typing import Any

from conftest import USER2, Server, cleanup_bucket

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTH_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
GRANT_HEADERS = ("read", "write", "read-acp", "write-acp", "full-control")


def _grant_list(acl: dict[str, Any]) -> list[tuple[str, str]]:
    """The grants in the order the server reported them: (grantee id or group URI, permission)."""
    return [(g["Grantee"].get("URI") or g["Grantee"]["ID"], g["Permission"]) for g in acl["Grants"]]


def _with_headers(client: Any, operation: str, headers: dict[str, str]) -> Any:
    """Add raw headers to one operation (before signing), as s3-tests does with its event hooks."""
    client.meta.events.register(
        f"before-call.s3.{operation}", lambda params, **_: params["headers"].update(headers)
    )
    return client


def test_acl_grant_order(server: Server, s3: Any, bucket: str) -> None:
    """test_bucket_acl_canned{,_during_create,_publicreadwrite,_authenticatedread},
    test_object_acl_canned{,_during_create,_publicreadwrite,_authenticatedread},
    test_object_acl_canned_bucketownerread, test_{object,bucket}_header_acl_grants: the suite
    compares grant lists position by position (or sorted by DisplayName when the first grant has
    one), so group grants come before the owner's FULL_CONTROL, and one grantee's header grants
    come in x-amz-grant-read, -write, -read-acp, -write-acp, -full-control order."""
    me = s3.list_buckets()["Owner"]["ID"]
    alt = server.client(USER2[1], USER2[2])
    alt_id = alt.list_buckets()["Owner"]["ID"]
    canned = {
        "public-read": [(ALL_USERS, "READ"), (me, "FULL_CONTROL")],
        "public-read-write": [(ALL_USERS, "READ"), (ALL_USERS, "WRITE"), (me, "FULL_CONTROL")],
        "authenticated-read": [(AUTH_USERS, "READ"), (me, "FULL_CONTROL")],
        "private": [(me, "FULL_CONTROL")],
    }
    s3.put_object(Bucket=bucket, Key="foo", Body=b"bar")
    for acl, want in canned.items():
        s3.put_bucket_acl(Bucket=bucket, ACL=acl)
        assert _grant_list(s3.get_bucket_acl(Bucket=bucket)) == want, acl
        s3.put_object_acl(Bucket=bucket, Key="foo", ACL=acl)
        assert _grant_list(s3.get_object_acl(Bucket=bucket, Key="foo")) == want, acl
    # test_object_acl_canned_bucketownerread takes the bucket owner from Grants[2].
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read-write")
    assert s3.get_bucket_acl(Bucket=bucket)["Grants"][2]["Grantee"]["ID"] == me
    # All five grant headers to one user, on PutObject and on CreateBucket.
    headers = {f"x-amz-grant-{h}": f"id={alt_id}" for h in GRANT_HEADERS}
    want_alt = [(alt_id, p) for p in ("READ", "WRITE", "READ_ACP", "WRITE_ACP", "FULL_CONTROL")]
    _with_headers(server.client(), "PutObject", headers).put_object(Bucket=bucket, Key="hdr", Body=b"x")
    assert _grant_list(s3.get_object_acl(Bucket=bucket, Key="hdr")) == want_alt
    name = f"hdracl-{uuid.uuid4().hex[:12]}"
    _with_headers(server.client(), "CreateBucket", headers).create_bucket(Bucket=name)
    try:
        assert _grant_list(s3.get_bucket_acl(Bucket=name)) == want_alt
    finally:
        cleanup_bucket(s3, name)
