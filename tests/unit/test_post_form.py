"""POST Object's form reader and policy rules, without a server.

The boundary scanner must give the same fields and file bytes however the body is split into
received chunks (a boundary straddling two chunks is the classic bug), and the policy checks
must refuse exactly what S3 refuses.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from typing import Any

import pytest

from rs3gw import errors
from rs3gw.auth.post_policy import check_form, parse_policy
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
