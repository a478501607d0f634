"""s3:RequestObjectTag/<key> and s3:RequestObjectTagKeys for requests whose tags are not a header.

AWS evaluates both keys for PutObjectTagging (and its versioned form, s3:PutObjectVersionTagging),
whose tags are the XML body, and for POST Object, whose tags are the form's ``tagging`` field. The
gateway reads a tagging body (bounded) and parses it once, before authorization; a body it cannot
use is still refused, but only after authorization, so callers without permission see AccessDenied.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from access_helpers import ARN, outcome, policy

from conftest import USER2, Server, cleanup_bucket

SECRET_YES = {"TagSet": [{"Key": "secret", "Value": "yes"}]}
SECRET_NO = {"TagSet": [{"Key": "secret", "Value": "no"}, {"Key": "team", "Value": "a"}]}
PUBLIC = {"TagSet": [{"Key": "security", "Value": "public"}]}
PRIVATE = {"TagSet": [{"Key": "security", "Value": "private"}]}


@pytest.fixture(scope="module")
def owner(server: Server) -> Any:
    return server.client()


@pytest.fixture(scope="module")
def alt(server: Server) -> Any:
    return server.client(USER2[1], USER2[2])


@pytest.fixture
def bucket(owner: Any) -> Iterator[str]:
    name = f"btag-{uuid.uuid4().hex[:12]}"
    owner.create_bucket(Bucket=name)
    owner.put_object(Bucket=name, Key="obj", Body=b"data")
    yield name
    cleanup_bucket(owner, name)


def statement(effect: str, action: str, resource: str, condition: dict[str, Any] | None = None) -> Any:
    st: dict[str, Any] = {"Effect": effect, "Principal": {"AWS": "*"}, "Action": action, "Resource": resource}
    if condition is not None:
        st["Condition"] = condition
    return st


def tags_of(owner: Any, bucket: str, key: str = "obj", **kw: Any) -> list[dict[str, str]]:
    return list(owner.get_object_tagging(Bucket=bucket, Key=key, **kw)["TagSet"])


def test_deny_put_object_tagging_by_body_tag(owner: Any, alt: Any, bucket: str) -> None:
    """A Deny on s3:RequestObjectTag/secret = yes refuses a PutObjectTagging whose body sets it,
    for the owner too (an explicit Deny wins), and lets other tag sets through."""
    doc = policy(
        statement("Allow", "s3:PutObjectTagging", f"{ARN}{bucket}/*"),
        statement(
            "Deny",
            "s3:PutObjectTagging",
            f"{ARN}{bucket}/*",
            {"StringEquals": {"s3:RequestObjectTag/secret": "yes"}},
        ),
    )
    owner.put_bucket_policy(Bucket=bucket, Policy=doc)
    assert outcome(lambda: alt.put_object_tagging(Bucket=bucket, Key="obj", Tagging=SECRET_YES)) == (
        "AccessDenied"
    )
    assert outcome(lambda: owner.put_object_tagging(Bucket=bucket, Key="obj", Tagging=SECRET_YES)) == (
        "AccessDenied"
    )
    assert tags_of(owner, bucket) == []
    assert outcome(lambda: alt.put_object_tagging(Bucket=bucket, Key="obj", Tagging=SECRET_NO)) == "ok"
    assert tags_of(owner, bucket) == SECRET_NO["TagSet"]


def test_allow_put_object_tagging_by_body_tag(owner: Any, alt: Any, bucket: str) -> None:
    """An Allow on s3:RequestObjectTag/security = public: only that body passes; an empty tag set
    (no such key) is not allowed either."""
    cond = {"StringEquals": {"s3:RequestObjectTag/security": "public"}}
    owner.put_bucket_policy(
        Bucket=bucket, Policy=policy(statement("Allow", "s3:PutObjectTagging", f"{ARN}{bucket}/*", cond))
    )
    assert outcome(lambda: alt.put_object_tagging(Bucket=bucket, Key="obj", Tagging=PRIVATE)) == (
        "AccessDenied"
    )
    assert outcome(lambda: alt.put_object_tagging(Bucket=bucket, Key="obj", Tagging={"TagSet": []})) == (
        "AccessDenied"
    )
    assert outcome(lambda: alt.put_object_tagging(Bucket=bucket, Key="obj", Tagging=PUBLIC)) == "ok"
    assert tags_of(owner, bucket) == PUBLIC["TagSet"]


def test_request_tag_keys_from_body(owner: Any, alt: Any, bucket: str) -> None:
    """s3:RequestObjectTagKeys (ForAllValues, with Null false so a tag set is required) limits the
    keys a PutObjectTagging body may set, as AWS's "restrict tag keys" example does."""
    cond = {
        "ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["secret", "team"]},
        "Null": {"s3:RequestObjectTagKeys": "false"},
    }
    owner.put_bucket_policy(
        Bucket=bucket, Policy=policy(statement("Allow", "s3:PutObjectTagging", f"{ARN}{bucket}/*", cond))
    )
    assert outcome(lambda: alt.put_object_tagging(Bucket=bucket, Key="obj", Tagging=SECRET_NO)) == "ok"
    assert outcome(lambda: alt.put_object_tagging(Bucket=bucket, Key="obj", Tagging=PUBLIC)) == (
        "AccessDenied"
    )
    assert tags_of(owner, bucket) == SECRET_NO["TagSet"]


def test_put_object_version_tagging_by_body_tag(owner: Any, alt: Any, bucket: str) -> None:
    """With ?versionId the action is s3:PutObjectVersionTagging; its body's tags are the same keys."""
    owner.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    vid = owner.put_object(Bucket=bucket, Key="v", Body=b"one")["VersionId"]
    owner.put_object(Bucket=bucket, Key="v", Body=b"two")
    cond = {"StringEquals": {"s3:RequestObjectTag/security": "public"}}
    owner.put_bucket_policy(
        Bucket=bucket,
        Policy=policy(statement("Allow", "s3:PutObjectVersionTagging", f"{ARN}{bucket}/*", cond)),
    )

    def put(tags: dict[str, Any]) -> str:
        return outcome(lambda: alt.put_object_tagging(Bucket=bucket, Key="v", VersionId=vid, Tagging=tags))

    assert put(PRIVATE) == "AccessDenied"
    assert put(PUBLIC) == "ok"
    assert tags_of(owner, bucket, "v", VersionId=vid) == PUBLIC["TagSet"]
    assert tags_of(owner, bucket, "v") == []  # the latest version was not touched


def test_bad_body_refused_after_authorization(owner: Any, alt: Any, bucket: str) -> None:
    """A body that cannot be used is answered by the handler after authorization: an allowed caller
    gets its error (BadRequest, not a silent Allow without tags), a caller without permission gets
    AccessDenied, and nothing is written either way."""
    deny = statement(
        "Deny",
        "s3:PutObjectTagging",
        f"{ARN}{bucket}/*",
        {"StringEquals": {"s3:RequestObjectTag/secret": "yes"}},
    )
    owner.put_bucket_policy(Bucket=bucket, Policy=policy(deny))
    too_many = {"TagSet": [{"Key": f"k{i}", "Value": "v"} for i in range(11)] + SECRET_YES["TagSet"]}
    assert outcome(lambda: owner.put_object_tagging(Bucket=bucket, Key="obj", Tagging=too_many)) == (
        "BadRequest"  # more than 10 tags (AWS's code for a count; InvalidTag is for one bad tag)
    )
    assert outcome(lambda: alt.put_object_tagging(Bucket=bucket, Key="obj", Tagging=PUBLIC)) == (
        "AccessDenied"
    )
    assert tags_of(owner, bucket) == []


def _raw_put_tagging(server: Server, bucket: str, length: int) -> bytes:
    """An anonymous PUT ?tagging that declares ``length`` body bytes and sends none: the answer
    must come without the server waiting for (or reading) the body."""
    parts = urlsplit(server.endpoint)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=15) as s:
        s.sendall(
            f"PUT /{bucket}/obj?tagging HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/xml\r\nContent-Length: {length}\r\n\r\n".encode()
        )
        data = b""
        while b"</Error>" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def test_oversize_body_refused_without_reading(server: Server, owner: Any, bucket: str) -> None:
    """A declared length over the tagging limit is refused (MaxMessageLengthExceeded) before a byte
    of the body is read; a caller without permission still gets AccessDenied first."""
    private = _raw_put_tagging(server, bucket, 10 * 1024 * 1024)
    assert b" 403 " in private.split(b"\r\n", 1)[0] and b"<Code>AccessDenied</Code>" in private
    owner.put_bucket_policy(
        Bucket=bucket, Policy=policy(statement("Allow", "s3:PutObjectTagging", f"{ARN}{bucket}/*"))
    )
    public = _raw_put_tagging(server, bucket, 10 * 1024 * 1024)
    assert b" 400 " in public.split(b"\r\n", 1)[0], public
    assert b"<Code>MaxMessageLengthExceeded</Code>" in public
    long_value = {"TagSet": [{"Key": "k", "Value": "v" * (70 * 1024)}]}
    assert outcome(lambda: owner.put_object_tagging(Bucket=bucket, Key="obj", Tagging=long_value)) == (
        "MaxMessageLengthExceeded"
    )


def test_post_object_tagging_field_is_request_tag(server: Server, owner: Any, bucket: str) -> None:
    """POST Object's ``tagging`` form field is s3:RequestObjectTag/<key> of its PutObject, as AWS
    lists for the key (an anonymous browser upload, allowed by the bucket policy only when tagged)."""
    cond = {"StringEquals": {"s3:RequestObjectTag/security": "public"}}
    owner.put_bucket_policy(
        Bucket=bucket, Policy=policy(statement("Allow", "s3:PutObject", f"{ARN}{bucket}/*", cond))
    )

    def post(key: str, tagging: str | None) -> requests.Response:
        fields: list[tuple[str, Any]] = [("key", (None, key))]
        if tagging is not None:
            fields.append(("tagging", (None, tagging)))
        fields.append(("file", ("f.txt", b"posted", "application/octet-stream")))
        return requests.post(f"{server.endpoint}/{bucket}", files=fields, timeout=60)

    xml: Callable[[str], str] = lambda v: (  # noqa: E731
        f"<Tagging><TagSet><Tag><Key>security</Key><Value>{v}</Value></Tag></TagSet></Tagging>"
    )
    assert post("untagged", None).status_code == 403
    assert post("private", xml("private")).status_code == 403
    ok = post("public", xml("public"))
    assert ok.status_code == 204, ok.text
    assert tags_of(owner, bucket, "public") == PUBLIC["TagSet"]
