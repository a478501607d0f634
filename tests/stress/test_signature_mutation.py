"""Signature property test: botocore-signed random requests pass; any one-byte change is refused.

Requests are signed by botocore and sent with http.client, so a mutation made after signing
reaches the server as-is. A refused write must never be stored, and nothing may answer 500.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import ACCESS_KEY, SECRET_KEY, Server, cleanup_bucket

REGION = "us-east-1"
STREAMING = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
EMPTY = hashlib.sha256(b"").hexdigest()
KEY_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\\")
SAFE = "abcdefghijklmnopqrstuvwxyz0123456789-_"
DIGITS = "0123456789"
REFUSED = {
    "AuthorizationHeaderMalformed",  # a changed X-Amz-Date no longer matches the credential scope
    "SignatureDoesNotMatch",
    "AccessDenied",
    "XAmzContentSHA256Mismatch",
    "RequestTimeTooSkewed",
}


class _Auth(S3SigV4Auth):
    """botocore's S3 signer, optionally putting a streaming payload constant in the request."""

    def __init__(self, payload_value: str | None) -> None:
        super().__init__(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION)
        self.payload_value = payload_value

    def payload(self, request: Any) -> str:
        return self.payload_value or super().payload(request)


@dataclass
class Req:
    method: str
    key: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    path: str = ""
    qs: str = ""
    sent_headers: dict[str, str] = field(default_factory=dict)

    def sign(self, server: Server, bucket: str, streaming: str | None = None) -> None:
        self.path = f"/{bucket}/{quote(self.key, safe='/~')}"
        self.qs = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in self.query)
        url = f"{server.endpoint}{self.path}" + (f"?{self.qs}" if self.qs else "")
        aws = AWSRequest(method=self.method, url=url, data=self.body, headers=dict(self.headers))
        _Auth(streaming).add_auth(aws)
        self.sent_headers = {k: str(v) for k, v in aws.headers.items()}

    def send(self, server: Server, body: bytes | None = None) -> tuple[int, str, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
        try:
            target = self.path + (f"?{self.qs}" if self.qs else "")
            conn.putrequest(self.method, target, skip_host=True, skip_accept_encoding=True)
            data = self.body if body is None else body
            headers = {"Host": f"127.0.0.1:{server.port}", **self.sent_headers}
            headers["Content-Length"] = str(len(data))
            for k, v in headers.items():
                conn.putheader(k, v.encode("utf-8"))
            conn.endheaders(data)
            resp = conn.getresponse()
            payload = resp.read()
            return resp.status, _code(payload), payload
        finally:
            conn.close()


def _code(payload: bytes) -> str:
    start = payload.find(b"<Code>")
    return payload[start + 6 : payload.find(b"</Code>")].decode() if start >= 0 else ""


def _flip(text: str, pos: int, alphabet: str) -> str:
    """Change one character to another one from ``alphabet`` (so the result stays sendable)."""
    pos %= len(text)
    old = text[pos]
    new = alphabet[(alphabet.find(old) + 1) % len(alphabet)] if old in alphabet else alphabet[0]
    return text[:pos] + new + text[pos + 1 :]


@pytest.fixture(scope="module")
def sig_bucket(server: Server) -> Iterator[str]:
    s3 = server.client()
    name = f"sig-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    yield name
    cleanup_bucket(s3, name)


_CLIENTS: dict[int, Any] = {}


def stored(server: Server, bucket: str, key: str) -> bytes | None:
    s3 = _CLIENTS.setdefault(server.port, server.client())
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


requests = st.builds(
    Req,
    method=st.just("PUT"),
    key=st.text(KEY_CHARS, min_size=1, max_size=40).filter(lambda k: k not in (".", "..")),
    query=st.lists(
        st.tuples(
            st.sampled_from(["x-fuzz-a", "x-fuzz-b", "x-fuzz-c"]), st.text(SAFE + "/ =&+%", max_size=12)
        ),
        max_size=3,
        unique_by=lambda kv: kv[0],
    ),
    headers=st.dictionaries(
        st.sampled_from(["x-amz-meta-a", "x-amz-meta-bb", "Content-Type", "x-amz-meta-c"]),
        st.text(SAFE + " ./", min_size=1, max_size=20).map(str.strip).filter(bool),
        max_size=3,
    ),
    body=st.binary(max_size=3000),
)

MUTATIONS = ["method", "path", "query", "header", "payload", "date", "signature"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(req=requests, target=st.sampled_from(MUTATIONS), pos=st.integers(0, 10_000))
def test_signed_request_accepted_and_any_mutation_refused(
    server: Server, sig_bucket: str, req: Req, target: str, pos: int
) -> None:
    key = req.key
    req.key = f"{uuid.uuid4().hex[:8]}/{key}"
    req.sign(server, sig_bucket)
    original = req.key
    if not mutate(req, target, pos):
        return
    status, code, payload = req.send(server)
    assert status != 500, payload
    assert status in (400, 403), (target, status, payload)
    assert code in REFUSED or req.method == "HEAD", (target, code, payload)
    assert stored(server, sig_bucket, original) is None, f"{target} mutation was stored"
    assert stored(server, sig_bucket, req.key) is None, f"{target} mutation was stored"
    req.method, req.key = "PUT", original
    req.sign(server, sig_bucket)
    status, code, payload = req.send(server)
    assert status == 200, (status, payload)
    assert stored(server, sig_bucket, original) == req.body


def mutate(req: Req, target: str, pos: int) -> bool:
    """Change one byte of ``target`` after signing; False when the request has no such part."""
    if target == "method":
        req.method = ["GET", "HEAD", "POST", "DELETE"][pos % 4]  # another method the server knows
    elif target == "path":
        # The key changes, not just its escaping: %c2 and %C2 name the same key.
        req.key = _flip(req.key, pos, SAFE)
        req.path = (
            req.path.split("/", 2)[0] + "/" + req.path.split("/", 2)[1] + "/" + quote(req.key, safe="/~")
        )
    elif target == "query":
        if not req.qs:
            return False
        req.qs = _flip(req.qs, pos, SAFE)
    elif target == "header":
        names = [n for n in req.sent_headers if n.lower().startswith("x-amz-meta-") or n == "Content-Type"]
        if not names:
            return False
        name = names[pos % len(names)]
        req.sent_headers[name] = _flip(req.sent_headers[name], pos, SAFE)
    elif target == "payload":
        if not req.body:
            return False
        i = pos % len(req.body)
        req.body = req.body[:i] + bytes([req.body[i] ^ 0x20]) + req.body[i + 1 :]
    elif target == "date":
        req.sent_headers["X-Amz-Date"] = _flip(req.sent_headers["X-Amz-Date"][:15], pos % 8, DIGITS) + "Z"
    else:
        auth = req.sent_headers["Authorization"]
        sig_at = auth.rindex("Signature=") + len("Signature=")
        req.sent_headers["Authorization"] = auth[:sig_at] + _flip(auth[sig_at:], pos, "0123456789abcdef")
    return True


def test_mutated_request_is_refused_example(server: Server, sig_bucket: str) -> None:
    """A fixed example of each mutation, so the property cannot pass by generating nothing."""
    for target in MUTATIONS:
        req = Req("PUT", f"fixed/{target}", [("x-fuzz-a", "v")], {"x-amz-meta-a": "value"}, b"payload")
        req.sign(server, sig_bucket)
        assert mutate(req, target, 3)
        status, code, _ = req.send(server)
        assert status in (400, 403) and (code in REFUSED or req.method == "HEAD"), (target, status, code)
        assert stored(server, sig_bucket, f"fixed/{target}") is None


# -- aws-chunked ------------------------------------------------------------------------------


def _signing_key(date8: str) -> bytes:
    k = ("AWS4" + SECRET_KEY).encode()
    for part in (date8, REGION, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def chunked_body(req: Req, chunks: list[bytes]) -> bytes:
    amz_date = req.sent_headers["X-Amz-Date"]
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    key = _signing_key(amz_date[:8])
    previous = req.sent_headers["Authorization"].rsplit("Signature=", 1)[1]
    out = bytearray()
    for data in [*chunks, b""]:
        text = "\n".join(
            ["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous, EMPTY, hashlib.sha256(data).hexdigest()]
        )
        previous = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
        out += f"{len(data):x};chunk-signature={previous}\r\n".encode() + data + b"\r\n"
    return bytes(out)


def _chunked_req(bucket_key: str, chunks: list[bytes], server: Server, bucket: str) -> tuple[Req, bytes]:
    total = sum(len(c) for c in chunks)
    req = Req(
        "PUT",
        bucket_key,
        [],
        {"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": str(total)},
        b"",
    )
    req.sign(server, bucket, streaming=STREAMING)
    req.sent_headers["X-Amz-Content-SHA256"] = STREAMING
    return req, chunked_body(req, chunks)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=2000), min_size=1, max_size=4),
    pos=st.integers(0, 1 << 20),
)
@example(chunks=[b"\x00" * 6], pos=1000001)  # the final header's LF flipped to \x0b: was stripped away
def test_aws_chunked_one_byte_mutation_refused(
    server: Server, sig_bucket: str, chunks: list[bytes], pos: int
) -> None:
    key = f"chunked/{uuid.uuid4().hex[:10]}"
    req, body = _chunked_req(key, chunks, server, sig_bucket)
    i = pos % len(body)
    bad = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
    status, _, payload = req.send(server, bad)
    assert status != 500, payload
    assert 400 <= status < 500, (status, payload)
    assert stored(server, sig_bucket, key) is None, (
        f"mutated byte {i} of {body[max(0, i - 10) : i + 10]!r} stored"
    )
    status, _, payload = req.send(server, body)
    assert status == 200, payload
    assert stored(server, sig_bucket, key) == b"".join(chunks)
