"""Hostile input against the real server: path tricks in keys, XML bombs, oversize bodies, and
hypothesis-made raw HTTP requests. Never a 500, never a hang, never a file outside the data dir.
"""

from __future__ import annotations

import http.client
import socket
import time
import unicodedata
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ACCESS_KEY, SECRET_KEY, Server

# The store's own entries: blobs and metadata, the audit log, archival tier directories, and the
# .rs3gw folder of runtime state (keys, scrub/analytics state, locks).
KNOWN_ENTRIES = {
    "blobs", "tmp", "meta.db", "meta.db-wal", "meta.db-shm", "blobs.lock", "blobs.gate",
    ".rs3gw", "audit", "tiers", "keys.json", "keys.json.lock",
    "smallblobs.db", "smallblobs.db-wal", "smallblobs.db-shm", "meta.db-turn", "smallblobs.db-turn",
    "meta.db-buckets",
}  # fmt: skip


def signed(
    server: Server,
    method: str,
    path: str,
    query: str = "",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    url = f"{server.endpoint}{path}" + (f"?{query}" if query else "")
    aws = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", "us-east-1").add_auth(aws)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        conn.putrequest(
            method, path + (f"?{query}" if query else ""), skip_host=True, skip_accept_encoding=True
        )
        for k, v in {"Host": f"127.0.0.1:{server.port}", **aws.headers}.items():
            if k.lower() != "content-length":
                conn.putheader(k, str(v))
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def error_code(e: ClientError) -> str:
    return str(e.response["Error"]["Code"])


def healthy(server: Server) -> None:
    assert server.proc.poll() is None, "server died"
    with urllib.request.urlopen(f"{server.endpoint}/health", timeout=5) as r:
        assert r.status == 200


def no_escape(server: Server) -> None:
    """Object keys never become paths: the data dir holds only the store's own entries."""
    extra = {p.name for p in server.data_dir.iterdir()} - KNOWN_ENTRIES
    assert not extra, f"unexpected entries in the data dir: {extra}"
    outside = {p.name for p in server.data_dir.parent.iterdir()} - {server.data_dir.name, server.log.name}
    assert not outside, f"files appeared next to the data dir: {outside}"


# -- keys -------------------------------------------------------------------------------------

TRICKY_KEYS = [
    "../escape",
    "../../../../etc/passwd",
    "a/../../b",
    "./x",
    "a/./b",
    "dir/",
    "back\\slash\\..\\..\\x",
    "%2e%2e/literal-percent",
    "sp ace/and+plus",
    "/leading-slash",
    "trailing..",
    "emoji-\U0001f600",
]


@pytest.mark.parametrize("key", TRICKY_KEYS)
def test_tricky_keys_round_trip_and_stay_inside(server: Server, s3: Any, bucket: str, key: str) -> None:
    body = f"body of {key!r}".encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == [key]
    no_escape(server)


def test_percent_encoded_dot_segments_are_literal(server: Server, s3: Any, bucket: str) -> None:
    """A raw ``%2e%2e/`` in the path decodes to the key ``../x``; nothing is resolved against it."""
    status, payload = signed(server, "PUT", f"/{bucket}/%2e%2e/x", body=b"dots")
    assert status == 200, payload
    assert s3.get_object(Bucket=bucket, Key="../x")["Body"].read() == b"dots"
    status, payload = signed(server, "GET", f"/{bucket}/%2E%2E/x")
    assert (status, payload) == (200, b"dots")
    no_escape(server)


def test_nul_in_key_is_an_ordinary_character_or_refused(server: Server, bucket: str) -> None:
    status, payload = signed(server, "PUT", f"/{bucket}/nul%00key", body=b"x")
    assert status in (200, 400), payload
    if status == 200:
        assert signed(server, "GET", f"/{bucket}/nul%00key") == (200, b"x")
        assert signed(server, "GET", f"/{bucket}/nul")[0] == 404
    no_escape(server)


def test_key_length_limit(s3: Any, bucket: str) -> None:
    ok = "k" * 1000 + "\u00e9" * 12  # 1024 bytes of UTF-8
    assert len(ok.encode()) == 1024
    s3.put_object(Bucket=bucket, Key=ok, Body=b"max")
    assert s3.get_object(Bucket=bucket, Key=ok)["Body"].read() == b"max"
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket=bucket, Key=ok + "k", Body=b"x")
    assert error_code(exc.value) == "KeyTooLongError"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unicode_normalization_variants_are_distinct_keys(s3: Any, bucket: str) -> None:
    nfc = unicodedata.normalize("NFC", "caf\u00e9/\u00c5ngstr\u00f6m")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    s3.put_object(Bucket=bucket, Key=nfc, Body=b"composed")
    s3.put_object(Bucket=bucket, Key=nfd, Body=b"decomposed")
    assert s3.get_object(Bucket=bucket, Key=nfc)["Body"].read() == b"composed"
    assert s3.get_object(Bucket=bucket, Key=nfd)["Body"].read() == b"decomposed"
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]) == sorted([nfc, nfd])


def test_invalid_utf8_in_path_is_invalid_uri(server: Server, bucket: str) -> None:
    status, payload = signed(server, "PUT", f"/{bucket}/bad%ff%fe", body=b"x")
    assert status == 400 and b"<Code>InvalidURI</Code>" in payload, payload


# -- XML bodies -------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">]>
<Delete><Object><Key>&lol9;</Key></Object></Delete>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Delete><Object><Key>&xxe;</Key></Object></Delete>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE d [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x"> %p;]><Delete/>"""


def _md5_header(body: bytes) -> dict[str, str]:
    import base64
    import hashlib

    return {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}


@pytest.mark.parametrize(
    "doc", [BILLION_LAUGHS, EXTERNAL_ENTITY, PARAMETER_ENTITY], ids=["laughs", "xxe", "pe"]
)
def test_xml_bombs_refused(server: Server, bucket: str, doc: bytes) -> None:
    t0 = time.monotonic()
    status, payload = signed(server, "POST", f"/{bucket}", "delete=", doc, _md5_header(doc))
    assert time.monotonic() - t0 < 2
    assert status == 400 and b"<Code>MalformedXML</Code>" in payload, payload
    assert b"root:" not in payload
    for doc_op in ("versioning=", "tagging="):
        status, payload = signed(server, "PUT", f"/{bucket}", doc_op, doc, _md5_header(doc))
        assert status == 400 and b"<Code>MalformedXML</Code>" in payload, (doc_op, payload)
    healthy(server)


def test_oversize_delete_objects_body_refused(server: Server, bucket: str) -> None:
    keys = b"".join(b"<Object><Key>%d</Key></Object>" % i for i in range(1001))
    doc = b"<Delete>" + keys + b"</Delete>"
    status, payload = signed(server, "POST", f"/{bucket}", "delete=", doc, _md5_header(doc))
    assert status == 400 and b"<Code>MalformedXML</Code>" in payload, payload
    huge = b"<Delete>" + b" " * (3 << 20) + b"</Delete>"
    t0 = time.monotonic()
    status, payload = signed(server, "POST", f"/{bucket}", "delete=", huge, _md5_header(huge))
    assert status == 400 and (b"MaxMessageLengthExceeded" in payload or b"MalformedXML" in payload), payload
    assert time.monotonic() - t0 < 5
    healthy(server)


def test_huge_complete_multipart_body_refused(server: Server, s3: Any, bucket: str) -> None:
    up = s3.create_multipart_upload(Bucket=bucket, Key="mpu")["UploadId"]
    part = b'<Part><PartNumber>1</PartNumber><ETag>"00"</ETag></Part>'
    doc = b"<CompleteMultipartUpload>" + part * 200_000 + b"</CompleteMultipartUpload>"
    status, payload = signed(server, "POST", f"/{bucket}/mpu", f"uploadId={up}", doc)
    assert 400 <= status < 500, payload
    assert b"<Code>" in payload
    deep = b"<a>" * 100_000 + b"</a>" * 100_000
    status, payload = signed(server, "POST", f"/{bucket}/mpu", f"uploadId={up}", deep)
    assert 400 <= status < 500, payload
    s3.abort_multipart_upload(Bucket=bucket, Key="mpu", UploadId=up)
    healthy(server)


# -- raw HTTP fuzzing -------------------------------------------------------------------------

METHODS = ["GET", "PUT", "POST", "DELETE", "HEAD", "OPTIONS", "PATCH", "get", "FOO"]
QUERY_KEYS = [
    "uploads",
    "uploadId",
    "partNumber",
    "versionId",
    "list-type",
    "delete",
    "tagging",
    "versioning",
    "max-keys",
    "prefix",
    "delimiter",
    "continuation-token",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-Algorithm",
    "X-Amz-SignedHeaders",
    "acl",
    "location",
]
HEADER_NAMES = [
    "Range",
    "x-amz-date",
    "Authorization",
    "Content-Length",
    "x-amz-content-sha256",
    "Content-MD5",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "x-amz-copy-source",
    "x-amz-copy-source-range",
    "Content-Encoding",
    "x-amz-decoded-content-length",
    "x-amz-checksum-crc32",
    "x-amz-sdk-checksum-algorithm",
    "x-amz-trailer",
    "Expect",
    "Transfer-Encoding",
    "x-amz-meta-a",
    "Content-Type",
    "Host",
]
VALUE_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
VALUES = st.one_of(
    st.text(VALUE_CHARS, max_size=40),
    st.sampled_from(
        [
            "bytes=0-",
            "bytes=-0",
            "bytes=5-1",
            "bytes=0-1,2-3",
            "bytes=99999999999999999999-",
            "AWS4-HMAC-SHA256 Credential=rs3gwtestkey/20200101/us-east-1/s3/aws4_request, "
            "SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256",
            "AWS x:y",
            "-1",
            "1e9",
            "99999999999999999999999",
            "20991231T000000Z",
            "aws-chunked",
            "chunked",
            "100-continue",
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "UNSIGNED-PAYLOAD",
            "*",
            "bucket/key?versionId=x",
        ]
    ),
)
PATH_PART = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="?#"), max_size=30
)


@st.composite
def raw_requests(draw: st.DrawFn) -> tuple[bytes, bool]:
    method = draw(st.sampled_from(METHODS))
    path = "/" + "/".join(draw(st.lists(PATH_PART, max_size=4)))
    pairs = draw(
        st.lists(st.tuples(st.sampled_from(QUERY_KEYS), st.text(VALUE_CHARS, max_size=20)), max_size=4)
    )
    query = "&".join(f"{k}={quote(v, safe='')}" if v else k for k, v in pairs)
    headers = draw(st.dictionaries(st.sampled_from(HEADER_NAMES), VALUES, max_size=6))
    body = draw(st.binary(max_size=300))
    truncate = draw(st.booleans())
    lines = [f"{method} {path}{'?' + query if query else ''} HTTP/1.1"]
    if "Host" not in headers:
        lines.append("Host: 127.0.0.1")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if "Content-Length" not in headers and "Transfer-Encoding" not in headers:
        lines.append(f"Content-Length: {len(body) + (7 if truncate else 0)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body, truncate


def send_raw(server: Server, data: bytes) -> bytes:
    """Send, half-close, and read the answer; the server must answer or close within the timeout."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


RAW = given(req=raw_requests())
SIGNED = given(
    range_header=VALUES,
    extra=st.dictionaries(st.sampled_from(HEADER_NAMES[4:20]), VALUES, max_size=3),
    query=st.lists(
        st.tuples(st.sampled_from(QUERY_KEYS[:12]), st.text(VALUE_CHARS, max_size=12)), max_size=3
    ),
    method=st.sampled_from(["GET", "GET", "GET", "HEAD", "PUT", "PUT", "POST", "DELETE"]),
)


def examples(n: int) -> settings:
    return settings(
        max_examples=n, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )


def check_raw(server: Server, data: bytes) -> None:
    answer = send_raw(server, data)
    status_line = answer.split(b"\r\n", 1)[0]
    assert b" 500 " not in status_line + b" ", (data[:300], answer[:500])
    assert server.proc.poll() is None


def check_signed(
    server: Server,
    bucket: str,
    method: str,
    range_header: str,
    extra: dict[str, str],
    query: list[tuple[str, str]],
) -> None:
    """Signed requests get past authentication, so the handlers' own parsing is what is fuzzed."""
    skip = {"host", "content-length", "transfer-encoding", "expect", "x-amz-content-sha256", "x-amz-date"}
    headers = {"Range": range_header, **{k: v for k, v in extra.items() if k.lower() not in skip}}
    headers.pop("Authorization", None)
    qs = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    # Reads aim at the fixture's object; writes at another key so reads keep finding it.
    key = "obj" if method in ("GET", "HEAD") else "scratch"
    body = b"0123456789" if method in ("PUT", "POST") else b""
    try:
        status, payload = signed(server, method, f"/{bucket}/{key}", qs, body, headers)
    except (http.client.RemoteDisconnected, ConnectionResetError):
        status, payload = 0, b""
    assert status != 500, (method, qs, headers, payload[:400])
    assert server.proc.poll() is None


@examples(150)
@RAW
def test_raw_request_fuzz_never_500(server: Server, req: tuple[bytes, bool]) -> None:
    check_raw(server, req[0])


@pytest.mark.slow
@examples(5000)
@RAW
def test_raw_request_fuzz_long(server: Server, req: tuple[bytes, bool]) -> None:
    check_raw(server, req[0])


@examples(100)
@SIGNED
def test_signed_request_fuzz_never_500(
    server: Server,
    fuzz_bucket: str,
    method: str,
    range_header: str,
    extra: dict[str, str],
    query: list[tuple[str, str]],
) -> None:
    check_signed(server, fuzz_bucket, method, range_header, extra, query)


@pytest.mark.slow
@examples(3000)
@SIGNED
def test_signed_request_fuzz_long(
    server: Server,
    fuzz_bucket: str,
    method: str,
    range_header: str,
    extra: dict[str, str],
    query: list[tuple[str, str]],
) -> None:
    check_signed(server, fuzz_bucket, method, range_header, extra, query)


@pytest.fixture(scope="module")
def fuzz_bucket(server: Server) -> Any:
    from conftest import cleanup_bucket

    s3 = server.client()
    name = f"fuzz-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="obj", Body=b"0123456789" * 100)
    yield name
    cleanup_bucket(s3, name)


def test_server_healthy_after_fuzz(server: Server) -> None:
    """Slow-loris style partial requests must not wedge the server for others."""
    socks = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(b"PUT /x/y HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc")
        socks.append(s)
    try:
        healthy(server)
        assert server.client().list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        for s in socks:
            s.close()
    time.sleep(0.2)
    healthy(server)


@pytest.fixture(scope="module", autouse=True)
def log_start(server: Server) -> int:
    """Where the server log stood before this module, so the last test reads only our part."""
    return server.log.stat().st_size


def test_data_dir_untouched_by_hostile_keys(server: Server, log_start: int) -> None:
    no_escape(server)
    with open(server.log, "rb") as fh:
        fh.seek(log_start)
        text = fh.read().decode("utf-8", "replace")
    assert "Traceback" not in text and "internal error" not in text, text[-3000:]
    assert not any(Path(server.data_dir, "..", name).exists() for name in ("escape", "etc", "b", "x"))
