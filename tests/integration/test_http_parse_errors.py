"""Bytes that are not HTTP get S3's answer: 400 BadRequest in the XML error format (AWS: "An error
occurred when parsing the HTTP request."), not the HTTP server's text/plain line; and a complete
request still being answered when such bytes arrive (a body longer than its Content-Length, whose
tail reads as the next request) gets its own response first (s3-tests
test_object_create_bad_contentlength_mismatch_below_*, test_*_unreadable_*)."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlparse

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCESS_KEY, SECRET_KEY, Server


def _exchange(server: Server, raw: bytes) -> bytes:
    """Send ``raw`` in one write and read until the server closes the connection."""
    u = urlparse(server.endpoint)
    with socket.create_connection((u.hostname, u.port), timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def _responses(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split a byte stream of HTTP/1.1 responses (each with a Content-Length)."""
    out = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        n = int(headers.get("content-length", "0"))
        out.append((int(lines[0].split()[1]), headers, rest[:n]))
        data = rest[n:]
    return out


def _assert_bad_request(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 400 and headers["content-type"] == "application/xml"
    doc = ET.fromstring(body)
    assert doc.findtext("Code") == "BadRequest"
    assert doc.findtext("RequestId") == headers["x-amz-request-id"]


def _host(server: Server) -> str:
    return urlparse(server.endpoint).netloc


@pytest.mark.parametrize(
    "header",
    [b"Content-Length: -1", b"Content-Length: abc", b"User-Agent: a\x07b", b"Content-Type: text/\x08plain"],
)
def test_unparsable_request_is_xml_bad_request(server: Server, bucket: str, header: bytes) -> None:
    raw = b"PUT /%s/k HTTP/1.1\r\nHost: %s\r\n%s\r\n\r\n" % (bucket.encode(), _host(server).encode(), header)
    answers = _responses(_exchange(server, raw))
    assert len(answers) == 1
    _assert_bad_request(*answers[0])


def test_body_longer_than_content_length(server: Server, s3: Any, bucket: str) -> None:
    """The PUT of the declared bytes is answered (and stored), then the extra byte is BadRequest."""
    url = f"{server.endpoint}/{bucket}/short"
    req = AWSRequest("PUT", url, data=b"ba", headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(req)
    head = f"PUT /{bucket}/short HTTP/1.1\r\nHost: {_host(server)}\r\nContent-Length: 2\r\n"
    head += "".join(
        f"{k}: {v}\r\n" for k, v in req.headers.items() if k.lower() not in ("host", "content-length")
    )
    answers = _responses(_exchange(server, head.encode() + b"\r\nbar"))
    assert [a[0] for a in answers] == [200, 400]
    _assert_bad_request(*answers[1])
    assert s3.get_object(Bucket=bucket, Key="short")["Body"].read() == b"ba"


def test_server_still_serves(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="after", Body=b"ok")
    assert s3.get_object(Bucket=bucket, Key="after")["Body"].read() == b"ok"


def test_endless_header_is_refused_and_the_server_keeps_serving(server: Server, s3: Any, bucket: str) -> None:
    """One header line that never ends must not grow the server's memory: past 64 KiB of request
    head the connection gets 400 RequestHeaderSectionTooLarge and is closed."""
    u = urlparse(server.endpoint)
    with socket.create_connection((u.hostname, u.port), timeout=10) as sock:
        sock.sendall(f"GET /{bucket}/k HTTP/1.1\r\nHost: {_host(server)}\r\nX-Amz-Meta-A: ".encode())
        data = b""
        try:
            for _ in range(64):  # 2 MiB in 32 KiB writes: the answer comes long before the end
                sock.sendall(b"a" * 32768)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:
            pass
    if data:  # the reset of a peer still sending may overtake the answer; when it arrives, it is this
        status, headers, body = _responses(data)[0]
        assert status == 400 and headers["connection"] == "close"
        assert ET.fromstring(body).findtext("Code") == "RequestHeaderSectionTooLarge"
    s3.put_object(Bucket=bucket, Key="after", Body=b"ok")
    assert s3.get_object(Bucket=bucket, Key="after")["Body"].read() == b"ok"
