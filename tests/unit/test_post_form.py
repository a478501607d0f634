"""POST Object's form reader and policy rules, without a server.

The boundary scanner must give the same fields and file bytes however the body is split into
received chunks (a boundary straddling two chunks is the classic bug), and the policy checks
must refuse exactly what S3 refuses.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
from typing import Any

import pytest

from rs3gw import errors
from rs3gw.auth.post_policy import authenticate_form, check_form, parse_policy
from rs3gw.protocol.handlers.post_object import form_key, read_form
from rs3gw.protocol.request import Message, Request

BOUNDARY = "b0undary"


def form_body(
    fields: list[tuple[str, str]], content: bytes, after: list[tuple[str, str]] | None = None
) -> bytes:
    out = b""
    for name, value in fields:
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a b.txt"\r\n'.encode()
    out += b"Content-Type: application/octet-stream\r\n\r\n" + content + b"\r\n"
    for name, value in after or []:
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    return out + f"--{BOUNDARY}--\r\n".encode()


def request_over(body: bytes, chunk: int) -> Request:
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]

    async def receive() -> Message:
        data = pieces.pop(0) if pieces else b""
        return {"type": "http.request", "body": data, "more_body": bool(pieces)}

    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    return Request("POST", "/b", [], {}, headers, "b", None, receive)


async def _read(body: bytes, chunk: int) -> tuple[dict[str, str], str, bytes, str]:
    form = await read_form(request_over(body, chunk))
    data = b"".join([c async for c in form.file])
    return form.fields, form.filename, data, form_key(form)


@pytest.mark.parametrize("chunk", [1, 2, 7, 13, 64, 1000, 1 << 20])
def test_same_result_for_every_chunking(chunk: int) -> None:
    content = os.urandom(3000) + b"\r\n--b0undar" + b"\r\n--" + os.urandom(100)  # near-boundaries
    body = form_body([("Key", "up/${filename}"), ("x-amz-meta-a", "é")], content, after=[("key", "late")])
    fields, filename, data, key = asyncio.run(_read(body, chunk))
    assert fields == {"key": "up/${filename}", "x-amz-meta-a": "é"}
    assert (filename, data, key) == ("a b.txt", content, "up/a b.txt")


def test_form_errors() -> None:
    no_file = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="key"\r\n\r\nk\r\n--{BOUNDARY}--\r\n'.encode()
    )
    with pytest.raises(errors.IncorrectNumberOfFilesInPostRequest):
        asyncio.run(_read(no_file, 5))
    with pytest.raises(errors.MaxPostPreDataLengthExceededError):
        asyncio.run(_read(form_body([("key", "k"), ("x-ignore-pad", "p" * 30000)], b"x"), 4096))
    truncated = form_body([("key", "k")], b"abc")[:-20]
    with pytest.raises(errors.MalformedPOSTRequest):
        asyncio.run(_read(truncated, 3))
    with pytest.raises(errors.InvalidArgument):
        asyncio.run(_read(form_body([("key", "k"), ("KEY", "again")], b"x"), 50))


def _policy(doc: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def test_policy_conditions() -> None:
    policy = parse_policy(
        _policy(
            {
                "expiration": "2030-01-01T00:00:00.000Z",
                "conditions": [
                    {"Bucket": "b"},
                    ["starts-with", "$key", "up/"],
                    ["EQ", "$Content-Type", "text/plain"],
                    ["starts-with", "$x-amz-meta-any", ""],
                    ["content-length-range", "1", 10],
                ],
            }
        )
    )
    assert policy.length_range == (1, 10)
    ok = {"key": "up/x", "content-type": "text/plain", "x-ignore-me": "1", "policy": "p", "signature": "s"}
    check_form(policy, ok, "b", 0)
    check_form(policy, {**ok, "x-amz-meta-any": "whatever"}, "b", 0)
    for fields, bucket in [
        ({**ok, "key": "down/x"}, "b"),
        ({**ok, "content-type": "text/html"}, "b"),
        (ok, "other"),
        ({**ok, "x-amz-meta-other": "1"}, "b"),
    ]:
        with pytest.raises(errors.AccessDenied):
            check_form(policy, fields, bucket, 0)
    with pytest.raises(errors.AccessDenied, match="Policy expired"):
        check_form(policy, ok, "b", 1_900_000_000)


@pytest.mark.parametrize(
    "doc",
    [
        {"conditions": []},
        {"expiration": "2030-01-01T00:00:00Z"},
        {"expiration": "2030-01-01", "conditions": []},
        {"expiration": "2030-01-01T00:00:00Z", "conditions": [{}]},
        {"expiration": "2030-01-01T00:00:00Z", "conditions": [{"a": "1", "b": "2"}]},
        {"expiration": "2030-01-01T00:00:00Z", "conditions": [["content-length-range", 5, 1]]},
        {"expiration": "2030-01-01T00:00:00Z", "conditions": [["starts-with", "key", "x"]]},
        {"expiration": "2030-01-01T00:00:00Z", "conditions": [["in", "$key", "x"]]},
        {"expiration": "2030-01-01T00:00:00Z", "conditions": {"key": "x"}},
        [],
    ],
)
def test_malformed_policies(doc: Any) -> None:
    with pytest.raises(errors.InvalidPolicyDocument):
        parse_policy(_policy(doc))


def test_starts_with_content_type_applies_to_each_listed_type() -> None:
    """AWS "POST Policy", Condition Matching: a Content-Type value with commas is a list for a
    starts-with condition, and every listed type must match. Other fields are plain strings, and an
    exact-match Content-Type condition compares the whole value."""
    policy = parse_policy(
        _policy(
            {
                "expiration": "2030-01-01T00:00:00Z",
                "conditions": [["starts-with", "$Content-Type", "image/"], ["starts-with", "$key", "up/"]],
            }
        )
    )
    for ok in ("image/jpg", "image/jpg,image/png,image/gif", "image/jpg, image/png"):
        check_form(policy, {"key": "up/x", "content-type": ok}, "b", 0)
    check_form(policy, {"key": "up/a,down/b", "content-type": "image/jpg"}, "b", 0)  # key: no list
    for bad in ("image/jpg,text/plain", "text/plain,image/jpg", "image/jpg,", "text/plain"):
        with pytest.raises(errors.AccessDenied, match="Policy Condition failed"):
            check_form(policy, {"key": "up/x", "content-type": bad}, "b", 0)
    exact = parse_policy(
        _policy({"expiration": "2030-01-01T00:00:00Z", "conditions": [{"Content-Type": "image/jpg"}]})
    )
    check_form(exact, {"content-type": "image/jpg"}, "b", 0)
    with pytest.raises(errors.AccessDenied):
        check_form(exact, {"content-type": "image/jpg,image/jpg"}, "b", 0)


@pytest.mark.parametrize("field", ["x-amz-algorithm", "x-amz-credential", "x-amz-date"])
def test_signature_fields_need_exact_conditions(field: str) -> None:
    """AWS documents the x-amz-algorithm, x-amz-credential and x-amz-date conditions as exact
    matches only: a starts-with condition (even one the value satisfies) does not bind them."""
    fields = {
        "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": f"AK/20300101/{REGION}/s3/aws4_request",
        "x-amz-date": "20300101T000000Z",
    }
    conditions: list[Any] = [{name: value} for name, value in fields.items() if name != field]
    policy = parse_policy(_policy({"expiration": "2030-01-02T00:00:00Z", "conditions": conditions}))
    with pytest.raises(errors.AccessDenied, match=f"Extra input fields: {field}"):
        check_form(policy, fields, "b", 0)
    loose = parse_policy(
        _policy(
            {
                "expiration": "2030-01-02T00:00:00Z",
                "conditions": [*conditions, ["starts-with", f"${field}", fields[field][:3]]],
            }
        )
    )
    with pytest.raises(errors.AccessDenied, match="Policy Condition failed"):
        check_form(loose, fields, "b", 0)
    check_form(
        parse_policy(
            _policy(
                {"expiration": "2030-01-02T00:00:00Z", "conditions": [*conditions, {field: fields[field]}]}
            )
        ),
        fields,
        "b",
        0,
    )


REGION = "us-east-1"
SECRET = "test-secret-key"


def _v4_form(date: str, credential_date: str, algorithm: str = "AWS4-HMAC-SHA256") -> dict[str, str]:
    """A SigV4 form signed independently of rs3gw (HMAC chain of AWS's "Calculating a signature")."""
    policy = _policy({"expiration": "2030-01-01T00:00:00Z", "conditions": []})
    key = ("AWS4" + SECRET).encode()
    for part in (credential_date, REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return {
        "x-amz-algorithm": algorithm,
        "x-amz-credential": f"AK/{credential_date}/{REGION}/s3/aws4_request",
        "x-amz-date": date,
        "policy": policy,
        "x-amz-signature": hmac.new(key, policy.encode(), hashlib.sha256).hexdigest(),
    }


def _secret_for(access_key: str) -> str | None:
    return SECRET if access_key == "AK" else None


def test_sigv4_form_date_must_match_credential_date() -> None:
    """The form's x-amz-date is the date the signing key was made for (AWS, "Authenticating
    Requests: Browser-Based Uploads Using POST"): same day as x-amz-credential, ISO 8601 long form."""
    auth = authenticate_form(_v4_form("20260301T235959Z", "20260301"), _secret_for, REGION)
    assert auth is not None and auth.access_key == "AK"
    for date, message in [
        ("20260302T000000Z", 'Invalid credential date "20260301". This date is not the same as X-Amz-Date'),
        ("20260228T120000Z", "not the same as X-Amz-Date"),
        ("2026-03-01T00:00:00Z", "ISO8601 Long Format"),
        ("20260301", "ISO8601 Long Format"),
        ("20260301T250000Z", "ISO8601 Long Format"),
    ]:
        with pytest.raises(errors.InvalidArgument, match=message) as e:
            authenticate_form(_v4_form(date, "20260301"), _secret_for, REGION)
        assert e.value.extra.get("ArgumentName") == "X-Amz-Date"
