"""POST Object (browser-based uploads with a POST policy) against a real server over real sockets.

SigV4 forms come from boto3's ``generate_presigned_post``; SigV2 forms are built by hand (HMAC-SHA1
of the base64 policy), as s3-tests builds them. Each test names the ceph/s3-tests
``test_post_object_*`` case(s) it restates.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import uuid
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from botocore.exceptions import ClientError
from object_lock_helpers import lock_bucket

from conftest import ACCESS_KEY, SECRET_KEY, Server, cleanup_bucket, start_server

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
Fields = list[tuple[str, str]]


def _expiry(seconds: int = 600) -> str:
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_policy(doc: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def v2_fields(
    policy: str, access_key: str = ACCESS_KEY, secret: str = SECRET_KEY, signature: str | None = None
) -> Fields:
    """The SigV2 signature fields: base64 HMAC-SHA1 of the base64 policy with the secret."""
    sig = (
        signature
        or base64.b64encode(hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()).decode()
    )
    return [("AWSAccessKeyId", access_key), ("policy", policy), ("signature", sig)]


def standard_policy(
    bucket: str, extra: list[Any] | None = None, expires: str | None = None
) -> dict[str, Any]:
    """The s3-tests baseline: bucket, key starting with foo, private ACL, text/plain, <= 1 KiB."""
    return {
        "expiration": expires or _expiry(),
        "conditions": [
            {"bucket": bucket},
            ["starts-with", "$key", "foo"],
            {"acl": "private"},
            ["starts-with", "$Content-Type", "text/plain"],
            ["content-length-range", 0, 1024],
            *(extra or []),
        ],
    }


def standard_fields(key: str = "foo.txt") -> Fields:
    return [("key", key), ("acl", "private"), ("Content-Type", "text/plain")]


def post(
    url: str,
    fields: Fields,
    content: bytes = b"bar",
    filename: str = "upload.txt",
    after: Fields | None = None,
    **kw: Any,
) -> requests.Response:
    """POST a multipart form: ``fields`` in order, then the file, then ``after`` (ignored by S3)."""
    parts: list[tuple[str, Any]] = [(k, (None, v)) for k, v in fields]
    parts.append(("file", (filename, content, "application/octet-stream")))
    parts += [(k, (None, v)) for k, v in after or []]
    return requests.post(url, files=parts, timeout=60, **kw)


def error_of(r: requests.Response) -> tuple[str, str]:
    root = ET.fromstring(r.content)
    return root.findtext("Code") or "", root.findtext("Message") or ""


@pytest.fixture
def bkt(s3: Any) -> Iterator[str]:
    name = f"post-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    yield name
    cleanup_bucket(s3, name)


@pytest.fixture
def v4(server: Server) -> Any:
    """A client that presigns POST forms with SigV4 (with a custom endpoint botocore picks SigV2)."""
    return server.client(signature_version="s3v4")


def url_of(server: Server, bucket: str) -> str:
    return f"{server.endpoint}/{bucket}"


def sigv2_post(
    server: Server, bucket: str, doc: dict[str, Any], fields: Fields, **kw: Any
) -> requests.Response:
    policy = encode_policy(doc)
    return post(url_of(server, bucket), fields[:1] + v2_fields(policy) + fields[1:], **kw)


def test_sigv4_presigned_post_filename_metadata_and_content_type(
    server: Server, s3: Any, v4: Any, bkt: str
) -> None:
    """s3-tests: test_post_object_authenticated_request, test_post_object_set_key_from_filename,
    test_post_object_user_specified_header, test_post_object_authenticated_no_content_type."""
    form = v4.generate_presigned_post(
        bkt,
        "uploads/${filename}",
        Fields={"Content-Type": "text/plain", "x-amz-meta-color": "blue", "Cache-Control": "max-age=60"},
        Conditions=[
            {"Content-Type": "text/plain"},
            {"x-amz-meta-color": "blue"},
            {"Cache-Control": "max-age=60"},
            ["content-length-range", 1, 1024],
        ],
        ExpiresIn=600,
    )
    assert "x-amz-signature" in form["fields"] and "AWSAccessKeyId" not in form["fields"]
    r = post(form["url"], list(form["fields"].items()), b"hello post", filename="notes.txt")
    assert r.status_code == 204, r.text
    key = "uploads/notes.txt"
    assert r.headers["ETag"] == f'"{hashlib.md5(b"hello post").hexdigest()}"'
    assert r.headers["Location"].endswith(f"/{bkt}/uploads/notes.txt")
    got = s3.get_object(Bucket=bkt, Key=key)
    assert got["Body"].read() == b"hello post"
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"color": "blue"}
    assert got["CacheControl"] == "max-age=60"
    head = s3.head_object(Bucket=bkt, Key=key)
    assert head["ETag"] == r.headers["ETag"] and head["ContentLength"] == 10

    # No Content-Type field: the default object type, not the file part's own type.
    bare = v4.generate_presigned_post(bkt, "bare.bin", ExpiresIn=600)
    assert post(bare["url"], list(bare["fields"].items()), b"x").status_code == 204
    assert s3.head_object(Bucket=bkt, Key="bare.bin")["ContentType"] == "binary/octet-stream"


def test_sigv4_large_file_byte_exact(server: Server, s3: Any, v4: Any, bkt: str) -> None:
    """s3-tests: test_post_object_upload_larger_than_chunk, test_post_object_upload_size_rgw_chunk_size_bug."""
    data = os.urandom(5 * 1024 * 1024 + 7)
    # The boundary must be found even where the file's bytes contain a near-boundary.
    data = data[:1000] + b"\r\n--notquite" + data[1012:]
    form = v4.generate_presigned_post(
        bkt, "big.bin", Conditions=[["content-length-range", 0, len(data)]], ExpiresIn=600
    )
    r = post(form["url"], list(form["fields"].items()), data)
    assert r.status_code == 204, r.text
    body = s3.get_object(Bucket=bkt, Key="big.bin")["Body"].read()
    assert len(body) == len(data) and body == data
    assert r.headers["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'


def test_sigv2_success_action_status_201_xml(server: Server, s3: Any, bkt: str) -> None:
    """s3-tests: test_post_object_set_success_code, test_post_object_authenticated_request (SigV2)."""
    doc = standard_policy(bkt, [["eq", "$success_action_status", "201"]])
    r = sigv2_post(server, bkt, doc, [*standard_fields(), ("success_action_status", "201")])
    assert r.status_code == 201, r.text
    root = ET.fromstring(r.content)
    assert root.tag == "PostResponse"
    etag = f'"{hashlib.md5(b"bar").hexdigest()}"'
    assert root.findtext("Bucket") == bkt and root.findtext("Key") == "foo.txt"
    assert root.findtext("ETag") == etag
    assert root.findtext("Location") == f"{server.endpoint}/{bkt}/foo.txt"
    assert s3.get_object(Bucket=bkt, Key="foo.txt")["Body"].read() == b"bar"


def test_success_action_status_200_and_invalid_falls_back_to_204(server: Server, bkt: str) -> None:
    """s3-tests: test_post_object_set_invalid_success_code."""
    doc = standard_policy(bkt, [["starts-with", "$success_action_status", ""]])
    r200 = sigv2_post(server, bkt, doc, [*standard_fields(), ("success_action_status", "200")])
    assert (r200.status_code, r200.content) == (200, b"")
    r404 = sigv2_post(server, bkt, doc, [*standard_fields(), ("success_action_status", "404")])
    assert (r404.status_code, r404.content) == (204, b"")


def test_success_action_redirect_303(server: Server, s3: Any, bkt: str) -> None:
    """s3-tests: test_post_object_success_redirect_action."""
    target = "http://example.invalid/done?from=form"
    doc = standard_policy(bkt, [["eq", "$success_action_redirect", target]])
    r = sigv2_post(
        server, bkt, doc, [*standard_fields(), ("success_action_redirect", target)], allow_redirects=False
    )
    assert r.status_code == 303, r.text
    loc = urlsplit(r.headers["Location"])
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == "http://example.invalid/done"
    q = parse_qs(loc.query)
    etag = s3.head_object(Bucket=bkt, Key="foo.txt")["ETag"]
    assert q == {"from": ["form"], "bucket": [bkt], "key": ["foo.txt"], "etag": [etag]}
    assert "etag=%22" in loc.query


def test_anonymous_upload_needs_public_write(server: Server, s3: Any, bkt: str) -> None:
    """s3-tests: test_post_object_anonymous_request (and its refusal on a private bucket)."""
    fields = [("key", "foo.txt"), ("acl", "public-read"), ("Content-Type", "text/plain")]
    denied = post(url_of(server, bkt), fields)
    assert denied.status_code == 403 and error_of(denied)[0] == "AccessDenied"
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bkt, Key="foo.txt")
    s3.put_bucket_acl(Bucket=bkt, ACL="public-read-write")
    ok = post(url_of(server, bkt), fields, b"anon")
    assert ok.status_code == 204, ok.text
    assert s3.get_object(Bucket=bkt, Key="foo.txt")["Body"].read() == b"anon"
    grants = s3.get_object_acl(Bucket=bkt, Key="foo.txt")["Grants"]
    assert any(g["Grantee"].get("URI") == ALL_USERS and g["Permission"] == "READ" for g in grants)


def test_expired_policy(server: Server, bkt: str) -> None:
    """s3-tests: test_post_object_expired_policy."""
    doc = standard_policy(bkt, expires=_expiry(-60))
    r = sigv2_post(server, bkt, doc, standard_fields())
    assert r.status_code == 403
    assert error_of(r) == ("AccessDenied", "Invalid according to Policy: Policy expired.")


def test_extra_field_refused_and_x_ignore_allowed(server: Server, s3: Any, bkt: str) -> None:
    """s3-tests: test_post_object_request_missing_policy_specified_field, test_post_object_ignored_header."""
    doc = standard_policy(bkt)
    r = sigv2_post(server, bkt, doc, [*standard_fields(), ("x-amz-meta-foo", "bar")])
    assert r.status_code == 403
    assert error_of(r) == ("AccessDenied", "Invalid according to Policy: Extra input fields: x-amz-meta-foo")
    ok = sigv2_post(server, bkt, doc, [*standard_fields(), ("x-ignore-foo", "bar")])
    assert ok.status_code == 204, ok.text
    assert s3.head_object(Bucket=bkt, Key="foo.txt")["Metadata"] == {}


def test_condition_mismatches(server: Server, s3: Any, bkt: str) -> None:
    """s3-tests: test_post_object_invalid_request_field_value, test_post_object_wrong_bucket,
    test_post_object_missing_policy_condition (starts-with and eq that do not hold)."""
    cases: list[tuple[dict[str, Any], Fields]] = [
        (standard_policy(bkt), standard_fields("bar.txt")),  # starts-with $key foo
        (
            standard_policy(bkt, [["eq", "$x-amz-meta-foo", ""]]),
            [*standard_fields(), ("x-amz-meta-foo", "x")],
        ),
        (standard_policy("some-other-bucket"), standard_fields()),  # the URL's bucket is checked
        (standard_policy(bkt), [("key", "foo.txt"), ("acl", "public-read"), ("Content-Type", "text/plain")]),
    ]
    for doc, fields in cases:
        r = sigv2_post(server, bkt, doc, fields)
        code, message = error_of(r)
        assert (r.status_code, code) == (403, "AccessDenied"), fields
        assert message.startswith("Invalid according to Policy: Policy Condition failed: ")
    assert "Contents" not in s3.list_objects_v2(Bucket=bkt)


def test_content_length_range(server: Server, s3: Any, bkt: str) -> None:
    """s3-tests: test_post_object_upload_size_limit_exceeded, test_post_object_upload_size_below_minimum."""
    fields = standard_fields()
    large = sigv2_post(server, bkt, standard_policy(bkt), fields, content=b"z" * 2048)
    assert large.status_code == 400 and error_of(large)[0] == "EntityTooLarge"
    zero = {
        "expiration": _expiry(),
        "conditions": [*standard_policy(bkt)["conditions"][:4], ["content-length-range", 0, 0]],
    }
    assert error_of(sigv2_post(server, bkt, zero, fields))[0] == "EntityTooLarge"
    small_doc = {
        "expiration": _expiry(),
        "conditions": [*standard_policy(bkt)["conditions"][:4], ["content-length-range", 512, 1000]],
    }
    small = sigv2_post(server, bkt, small_doc, fields)
    assert small.status_code == 400 and error_of(small)[0] == "EntityTooSmall"
    assert "Contents" not in s3.list_objects_v2(Bucket=bkt)
    exact = sigv2_post(server, bkt, small_doc, fields, content=b"q" * 512)
    assert exact.status_code == 204, exact.text


@pytest.mark.parametrize(
    "case",
    [
        "missing_expiration",  # test_post_object_missing_expires_condition
        "missing_conditions",  # test_post_object_missing_conditions_list
        "expiration_case",  # test_post_object_expires_is_case_sensitive
        "conditions_case",  # test_post_object_condition_is_case_sensitive
        "empty_condition",  # test_post_object_empty_conditions
        "one_length_bound",  # test_post_object_missing_content_length_argument
        "negative_length",  # test_post_object_invalid_content_length_argument
        "bad_date",  # test_post_object_invalid_date_format
        "not_base64",
        "not_json",
    ],
)
def test_malformed_policy_is_400(server: Server, bkt: str, case: str) -> None:
    """s3-tests: the malformed-policy cases named per parameter above (400 InvalidPolicyDocument)."""
    base = standard_policy(bkt)
    docs: dict[str, Any] = {
        "missing_expiration": {"conditions": base["conditions"]},
        "missing_conditions": {"expiration": base["expiration"]},
        "expiration_case": {"EXPIRATION": base["expiration"], "conditions": base["conditions"]},
        "conditions_case": {"expiration": base["expiration"], "CONDITIONS": base["conditions"]},
        "empty_condition": {"expiration": base["expiration"], "conditions": [{}]},
        "one_length_bound": {**base, "conditions": [*base["conditions"][:4], ["content-length-range", 0]]},
        "negative_length": {**base, "conditions": [*base["conditions"][:4], ["content-length-range", -1, 0]]},
        "bad_date": {**base, "expiration": "Mon, 21 Jan 2030 10:00:00 GMT"},
    }
    if case == "not_base64":
        policy = "%%% not base64 %%%"
    elif case == "not_json":
        policy = base64.b64encode(b"{not json").decode()
    else:
        policy = encode_policy(docs[case])
    fields = standard_fields()
    r = post(url_of(server, bkt), fields[:1] + v2_fields(policy) + fields[1:])
    assert r.status_code == 400, r.text
    assert error_of(r)[0] == "InvalidPolicyDocument"


def test_malformed_forms_are_400(server: Server, bkt: str) -> None:
    """s3-tests: test_post_object_no_key_specified, test_post_object_missing_signature; plus a
    form without a file part and one whose fields before the file exceed the buffer limit."""
    policy = encode_policy(standard_policy(bkt))
    url = url_of(server, bkt)
    no_key = post(url, v2_fields(policy) + standard_fields()[1:])
    assert no_key.status_code == 400 and error_of(no_key)[0] == "InvalidArgument"
    no_sig = post(
        url, [("key", "foo.txt"), ("AWSAccessKeyId", ACCESS_KEY), ("policy", policy), *standard_fields()[1:]]
    )
    assert no_sig.status_code == 400 and error_of(no_sig)[0] == "InvalidArgument"
    fields = standard_fields()[:1] + v2_fields(policy) + standard_fields()[1:]
    no_file = requests.post(url, files=[(k, (None, v)) for k, v in fields], timeout=30)
    assert no_file.status_code == 400 and error_of(no_file)[0] == "IncorrectNumberOfFilesInPostRequest"
    huge = post(url, [*fields, ("x-ignore-pad", "p" * 30_000)])
    assert huge.status_code == 400 and error_of(huge)[0] == "MaxPostPreDataLengthExceededError"
    garbage = requests.post(
        url,
        data=b"no multipart here",
        headers={"Content-Type": "multipart/form-data; boundary=zz"},
        timeout=30,
    )
    assert garbage.status_code == 400 and error_of(garbage)[0] == "MalformedPOSTRequest"


def test_bad_signature_and_unknown_key_are_403(server: Server, s3: Any, v4: Any, bkt: str) -> None:
    """s3-tests: test_post_object_invalid_signature, test_post_object_invalid_access_key,
    test_post_object_authenticated_request_bad_access_key (SigV2 and SigV4)."""
    doc = standard_policy(bkt)
    policy = encode_policy(doc)
    url = url_of(server, bkt)
    fields = standard_fields()
    bad_sig = post(url, fields[:1] + v2_fields(policy, signature="AAAA" + "A" * 24) + fields[1:])
    assert bad_sig.status_code == 403 and error_of(bad_sig)[0] == "SignatureDoesNotMatch"
    wrong_secret = post(url, fields[:1] + v2_fields(policy, secret="not-the-secret") + fields[1:])
    assert error_of(wrong_secret)[0] == "SignatureDoesNotMatch"
    unknown = post(url, fields[:1] + v2_fields(policy, access_key="NOSUCHKEY") + fields[1:])
    assert unknown.status_code == 403 and error_of(unknown)[0] == "InvalidAccessKeyId"

    form = v4.generate_presigned_post(bkt, "v4.txt", ExpiresIn=600)
    v4 = dict(form["fields"])
    v4["x-amz-signature"] = "0" * 64
    r = post(form["url"], list(v4.items()))
    assert r.status_code == 403 and error_of(r)[0] == "SignatureDoesNotMatch"
    stranger = server.client(
        "NOSUCHKEY", "whatever-secret-value", signature_version="s3v4"
    ).generate_presigned_post(bkt, "v4.txt")
    r = post(stranger["url"], list(stranger["fields"].items()))
    assert r.status_code == 403 and error_of(r)[0] == "InvalidAccessKeyId"
    # A signed form whose policy was altered after signing.
    v4 = dict(form["fields"])
    v4["policy"] = encode_policy({**json.loads(base64.b64decode(v4["policy"])), "expiration": _expiry(9999)})
    assert error_of(post(form["url"], list(v4.items())))[0] == "SignatureDoesNotMatch"
    assert "Contents" not in s3.list_objects_v2(Bucket=bkt)


def test_case_insensitive_fields_escaped_values_and_trailing_fields(
    server: Server, s3: Any, bkt: str
) -> None:
    """s3-tests: test_post_object_case_insensitive_condition_fields, test_post_object_escaped_field_values;
    fields after the file part are ignored (AWS: the file must be the last field)."""
    doc = {
        "expiration": _expiry(),
        "conditions": [
            {"bUcKeT": bkt},
            ["StArTs-WiTh", "$KeY", "\\$foo"],
            {"AcL": "private"},
            ["StArTs-WiTh", "$CoNtEnT-TyPe", "text/plain"],
            ["content-length-range", 0, 1024],
        ],
    }
    fields = [("kEy", "\\$foo.txt"), ("aCl", "private"), ("CONTENT-type", "text/plain")]
    r = sigv2_post(server, bkt, doc, fields, after=[("x-amz-meta-late", "ignored"), ("key", "other")])
    assert r.status_code == 204, r.text
    head = s3.head_object(Bucket=bkt, Key="\\$foo.txt")
    assert head["ContentType"] == "text/plain" and head["Metadata"] == {}


def test_tagging_acl_storage_class_and_sse_fields(server: Server, s3: Any, v4: Any, bkt: str) -> None:
    """s3-tests: test_post_object_tags_authenticated_request (plus acl, storage class, SSE fields)."""
    tagging = "<Tagging><TagSet><Tag><Key>team</Key><Value>ml ops</Value></Tag></TagSet></Tagging>"
    form = v4.generate_presigned_post(
        bkt,
        "tagged.txt",
        Fields={
            "tagging": tagging,
            "acl": "public-read",
            "x-amz-storage-class": "STANDARD_IA",
            "x-amz-server-side-encryption": "AES256",
        },
        Conditions=[
            {"tagging": tagging},
            {"acl": "public-read"},
            {"x-amz-storage-class": "STANDARD_IA"},
            {"x-amz-server-side-encryption": "AES256"},
        ],
        ExpiresIn=600,
    )
    r = post(form["url"], list(form["fields"].items()), b"tagged")
    assert r.status_code == 204, r.text
    assert r.headers["x-amz-server-side-encryption"] == "AES256"
    assert s3.get_object_tagging(Bucket=bkt, Key="tagged.txt")["TagSet"] == [
        {"Key": "team", "Value": "ml ops"}
    ]
    head = s3.head_object(Bucket=bkt, Key="tagged.txt")
    assert head["StorageClass"] == "STANDARD_IA" and head["ServerSideEncryption"] == "AES256"
    grants = s3.get_object_acl(Bucket=bkt, Key="tagged.txt")["Grants"]
    assert any(g["Grantee"].get("URI") == ALL_USERS for g in grants)
    anon = requests.get(f"{server.endpoint}/{bkt}/tagged.txt", timeout=30)
    assert (anon.status_code, anon.content) == (200, b"tagged")


@pytest.fixture(scope="module")
def vhost_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("post-vhost") / "data", "--domain", "s3.local")
    yield srv
    srv.stop()


def test_virtual_host_style_post(vhost_server: Server) -> None:
    """s3-tests: test_post_object_authenticated_request, addressed virtual-host style (bucket.domain)."""
    s3 = vhost_server.client()
    name = f"postvh-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    try:
        policy = encode_policy(standard_policy(name))
        fields = standard_fields()[:1] + v2_fields(policy) + standard_fields()[1:]
        host = f"{name}.s3.local:{vhost_server.port}"
        r = post(f"{vhost_server.endpoint}/", fields, b"vhost", headers={"Host": host})
        assert r.status_code == 204, r.text
        assert r.headers["Location"] == f"http://{host}/foo.txt"
        assert s3.get_object(Bucket=name, Key="foo.txt")["Body"].read() == b"vhost"
    finally:
        cleanup_bucket(s3, name)


# --- SigV4 date consistency, Content-Type lists, digests ------------------------------------------


def v4_form(
    bucket: str,
    conditions: list[Any],
    amz_date: str | None = None,
    credential_date: str | None = None,
    omit: str | None = None,
    loose: bool = False,
) -> Fields:
    """A SigV4 form built by hand (boto3 always signs consistent ones), signed with the day's key
    of ``credential_date`` (AWS's HMAC chain, computed here independently of rs3gw). The policy
    names the three signature fields with exact conditions, except ``omit`` (not named at all);
    ``loose`` names them with starts-with conditions instead."""
    now = datetime.datetime.now(datetime.UTC)
    amz_date = amz_date or now.strftime("%Y%m%dT%H%M%SZ")
    credential_date = credential_date or amz_date[:8]
    signature_fields = {
        "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": f"{ACCESS_KEY}/{credential_date}/us-east-1/s3/aws4_request",
        "x-amz-date": amz_date,
    }
    named: list[Any] = [
        ["starts-with", f"${k}", v[:3]] if loose else {k: v} for k, v in signature_fields.items() if k != omit
    ]
    policy = encode_policy({"expiration": _expiry(), "conditions": [{"bucket": bucket}, *conditions, *named]})
    key = ("AWS4" + SECRET_KEY).encode()
    for part in (credential_date, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()
    return [*signature_fields.items(), ("policy", policy), ("x-amz-signature", signature)]


def test_sigv4_form_date_must_be_the_credential_date(server: Server, s3: Any, bkt: str) -> None:
    """AWS: x-amz-date is the date the signing key was derived for, so its day is the one in
    x-amz-credential; boto3's generate_presigned_post (tested above) signs consistent forms."""
    url = url_of(server, bkt)
    ok = post(url, [("key", "dated.txt"), *v4_form(bkt, [{"key": "dated.txt"}])])
    assert ok.status_code == 204, ok.text
    now = datetime.datetime.now(datetime.UTC)
    today = now.strftime("%Y%m%dT%H%M%SZ")
    yesterday = (now - datetime.timedelta(days=1)).strftime("%Y%m%d")
    skewed = post(url, [("key", "skewed.txt"), *v4_form(bkt, [{"key": "skewed.txt"}], today, yesterday)])
    assert skewed.status_code == 400, skewed.text
    code, message = error_of(skewed)
    assert code == "InvalidArgument" and "not the same as X-Amz-Date" in message
    short = post(url, [("key", "bad.txt"), *v4_form(bkt, [{"key": "bad.txt"}], today[:8], today[:8])])
    assert short.status_code == 400 and error_of(short)[0] == "InvalidArgument"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bkt)["Contents"]] == ["dated.txt"]


def test_sigv4_policy_must_name_signature_fields_exactly(server: Server, s3: Any, bkt: str) -> None:
    """AWS: a SigV4 POST policy carries x-amz-algorithm, x-amz-credential and x-amz-date
    conditions, exact matches only. Without one its field is extra input; starts-with is refused."""
    url = url_of(server, bkt)
    for name in ("x-amz-algorithm", "x-amz-credential", "x-amz-date"):
        r = post(url, [("key", "k.txt"), *v4_form(bkt, [{"key": "k.txt"}], omit=name)])
        assert r.status_code == 403, r.text
        assert error_of(r) == ("AccessDenied", f"Invalid according to Policy: Extra input fields: {name}")
    loose = post(url, [("key", "k.txt"), *v4_form(bkt, [{"key": "k.txt"}], loose=True)])
    assert loose.status_code == 403, loose.text
    code, message = error_of(loose)
    assert code == "AccessDenied" and message.startswith(
        "Invalid according to Policy: Policy Condition failed"
    )
    assert "Contents" not in s3.list_objects_v2(Bucket=bkt)


def test_starts_with_content_type_list(server: Server, s3: Any, bkt: str) -> None:
    """AWS "POST Policy": a comma-separated Content-Type passes a starts-with condition only if
    every listed type does; the whole value is stored as the object's Content-Type."""
    doc = {
        "expiration": _expiry(),
        "conditions": [
            {"bucket": bkt},
            ["starts-with", "$key", "img"],
            ["starts-with", "$Content-Type", "image/"],
        ],
    }
    ok = sigv2_post(server, bkt, doc, [("key", "img1"), ("Content-Type", "image/jpg,image/png,image/gif")])
    assert ok.status_code == 204, ok.text
    assert s3.head_object(Bucket=bkt, Key="img1")["ContentType"] == "image/jpg,image/png,image/gif"
    bad = sigv2_post(server, bkt, doc, [("key", "img2"), ("Content-Type", "image/jpg,text/plain")])
    assert bad.status_code == 403, bad.text
    assert error_of(bad) == (
        "AccessDenied",
        'Invalid according to Policy: Policy Condition failed: ["starts-with", "$content-type", "image/"]',
    )
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bkt)["Contents"]] == ["img1"]


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def _crc32(data: bytes) -> str:
    return _b64(zlib.crc32(data).to_bytes(4, "big"))


DIGEST_BODY = b"digest me, please"


def _digest_post(v4: Any, bucket: str, key: str, name: str, value: str) -> requests.Response:
    """A form from boto3's generate_presigned_post whose policy allows the digest field ``name``
    with exactly ``value``, posting DIGEST_BODY."""
    form = v4.generate_presigned_post(
        bucket, key, Fields={name: value}, Conditions=[{name: value}], ExpiresIn=600
    )
    return post(form["url"], list(form["fields"].items()), DIGEST_BODY)


def test_content_md5_field_is_verified(s3: Any, v4: Any, bkt: str) -> None:
    """AWS POST Object: with a Content-MD5 field S3 checks the file against it (BadDigest, as
    PutObject); a value that is no MD5 at all is InvalidDigest. Nothing is stored on a mismatch."""
    good = _digest_post(v4, bkt, "md5-ok", "Content-MD5", _b64(hashlib.md5(DIGEST_BODY).digest()))
    assert good.status_code == 204, good.text
    assert good.headers["ETag"] == f'"{hashlib.md5(DIGEST_BODY).hexdigest()}"'
    assert s3.get_object(Bucket=bkt, Key="md5-ok")["Body"].read() == DIGEST_BODY
    wrong = _digest_post(v4, bkt, "md5-bad", "Content-MD5", _b64(hashlib.md5(b"other").digest()))
    assert wrong.status_code == 400 and error_of(wrong)[0] == "BadDigest", wrong.text
    malformed = _digest_post(v4, bkt, "md5-bad", "Content-MD5", "not-an-md5")
    assert malformed.status_code == 400 and error_of(malformed)[0] == "InvalidDigest", malformed.text
    # Like any field, the digest must be named by the policy (AWS: every field but the exempt ones).
    unnamed = v4.generate_presigned_post(bkt, "md5-unnamed", ExpiresIn=600)
    md5 = _b64(hashlib.md5(DIGEST_BODY).digest())
    r = post(unnamed["url"], [*unnamed["fields"].items(), ("Content-MD5", md5)], DIGEST_BODY)
    assert error_of(r) == ("AccessDenied", "Invalid according to Policy: Extra input fields: content-md5")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bkt)["Contents"]] == ["md5-ok"]


@pytest.mark.parametrize(
    ("field", "value", "member"),
    [
        ("x-amz-checksum-crc32", _crc32(DIGEST_BODY), "ChecksumCRC32"),
        ("x-amz-checksum-sha256", _b64(hashlib.sha256(DIGEST_BODY).digest()), "ChecksumSHA256"),
    ],
)
def test_checksum_field_is_verified_and_stored(
    s3: Any, v4: Any, bkt: str, field: str, value: str, member: str
) -> None:
    """An x-amz-checksum-<algorithm> field is checked as PutObject checks the header (BadDigest on
    a mismatch) and stored as the object's checksum, returned by HEAD with checksum mode."""
    good = _digest_post(v4, bkt, "sum-ok", field, value)
    assert good.status_code == 204, good.text
    assert good.headers[field] == value
    head = s3.head_object(Bucket=bkt, Key="sum-ok", ChecksumMode="ENABLED")
    assert head[member] == value
    other = _crc32(b"other") if "crc32" in field else _b64(hashlib.sha256(b"other").digest())
    wrong = _digest_post(v4, bkt, "sum-bad", field, other)
    assert wrong.status_code == 400 and error_of(wrong)[0] == "BadDigest", wrong.text
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bkt)["Contents"]] == ["sum-ok"]


def test_default_retention_bucket_accepts_post_with_digest(server: Server, s3: Any, v4: Any) -> None:
    """A bucket with default Object Lock retention takes a PutObject only with a digest; a POST
    upload likewise: refused without Content-MD5 / x-amz-checksum-*, accepted (and retained) with."""
    with lock_bucket(s3, "postlock") as b:
        s3.put_object_lock_configuration(
            Bucket=b,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
            },
        )
        bare = post(url_of(server, b), [("key", "bare"), *v4_form(b, [{"key": "bare"}])], DIGEST_BODY)
        assert bare.status_code == 400 and error_of(bare)[0] == "InvalidRequest", bare.text
        md5 = _digest_post(v4, b, "md5", "Content-MD5", _b64(hashlib.md5(DIGEST_BODY).digest()))
        assert md5.status_code == 204, md5.text
        crc = _digest_post(v4, b, "crc", "x-amz-checksum-crc32", _crc32(DIGEST_BODY))
        assert crc.status_code == 204, crc.text
        for key, r in (("md5", md5), ("crc", crc)):
            head = s3.head_object(Bucket=b, Key=key)
            assert (
                head["ObjectLockMode"] == "GOVERNANCE" and head["VersionId"] == r.headers["x-amz-version-id"]
            )
        wrong = _digest_post(v4, b, "wrong", "Content-MD5", _b64(hashlib.md5(b"other").digest()))
        assert wrong.status_code == 400 and error_of(wrong)[0] == "BadDigest", wrong.text
        keys = sorted(v["Key"] for v in s3.list_object_versions(Bucket=b).get("Versions", []))
        assert keys == ["crc", "md5"]
