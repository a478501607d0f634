"""aws-chunked uploads over real sockets: signed chunk chains, trailers, and what boto3 really sends.

Bodies are framed and signed here, independently of the server's decoder, and sent with http.client
so that broken variants (a flipped byte, a wrong trailer, a lying length) reach the server as-is.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import ACCESS_KEY, SECRET_KEY, Server

SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
EMPTY = hashlib.sha256(b"").hexdigest()
REGION = "us-east-1"


class _StreamingAuth(S3SigV4Auth):
    """botocore's signer, made to put a streaming payload constant in the canonical request."""

    def __init__(self, mode: str) -> None:
        super().__init__(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION)
        self.mode = mode

    def payload(self, request: Any) -> str:
        return self.mode


@dataclass
class Seed:
    amz_date: str
    signature: str

    def key(self) -> bytes:
        k = ("AWS4" + SECRET_KEY).encode()
        for part in (self.amz_date[:8], REGION, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        return k

    def scope(self) -> str:
        return f"{self.amz_date[:8]}/{REGION}/s3/aws4_request"

    def chunk(self, previous: str, data: bytes) -> str:
        text = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                self.amz_date,
                self.scope(),
                previous,
                EMPTY,
                hashlib.sha256(data).hexdigest(),
            ]
        )
        return hmac.new(self.key(), text.encode(), hashlib.sha256).hexdigest()

    def trailer(self, previous: str, trailer_text: bytes) -> str:
        text = "\n".join(
            [
                "AWS4-HMAC-SHA256-TRAILER",
                self.amz_date,
                self.scope(),
                previous,
                hashlib.sha256(trailer_text).hexdigest(),
            ]
        )
        return hmac.new(self.key(), text.encode(), hashlib.sha256).hexdigest()


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def frame(
    chunks: list[bytes],
    seed: Seed | None,
    trailers: dict[str, str] | None = None,
    *,
    tamper_chunk: int | None = None,
    tamper_trailer_sig: bool = False,
) -> bytes:
    """aws-chunked framing; signed when ``seed`` is given. Tampering happens after signing."""
    out = bytearray()
    previous = seed.signature if seed else ""
    for i, data in enumerate([*chunks, b""]):
        ext = ""
        if seed:
            previous = seed.chunk(previous, data)
            ext = f";chunk-signature={previous}"
        sent = data
        if i == tamper_chunk:
            sent = bytes([data[0] ^ 1]) + data[1:]
        out += f"{len(data):x}{ext}\r\n".encode() + sent + (b"\r\n" if data else b"")
    if trailers is not None:
        text = "".join(f"{k}:{v}\n" for k, v in trailers.items()).encode()
        out += text.replace(b"\n", b"\r\n")
        if seed:
            sig = seed.trailer(previous, text)
            if tamper_trailer_sig:
                sig = ("1" if sig[0] == "0" else "0") + sig[1:]
            out += f"x-amz-trailer-signature:{sig}\r\n".encode()
    out += b"\r\n"
    return bytes(out)


def streaming_put(
    server: Server,
    path: str,
    chunks: list[bytes],
    mode: str,
    trailers: dict[str, str] | None = None,
    *,
    decoded_length: int | None = None,
    extra_headers: dict[str, str] | None = None,
    **tamper: Any,
) -> tuple[int, dict[str, str], bytes]:
    payload_len = sum(map(len, chunks))
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(payload_len if decoded_length is None else decoded_length),
        **(extra_headers or {}),
    }
    if trailers:
        headers["x-amz-trailer"] = ",".join(trailers)
    req = AWSRequest(method="PUT", url=server.endpoint + path, headers=headers)
    _StreamingAuth(mode).add_auth(req)
    signed = dict(req.headers.items())
    assert signed["X-Amz-Content-SHA256"] == mode
    seed = Seed(signed["X-Amz-Date"], signed["Authorization"].rsplit("Signature=", 1)[1])
    body = frame(chunks, seed if mode != UNSIGNED_TRAILER else None, trailers, **tamper)
    signed["Content-Length"] = str(len(body))
    return raw(server, "PUT", path, body, signed)


def raw(
    server: Server, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def code_of(body: bytes) -> str | None:
    assert b"Traceback" not in body
    return ET.fromstring(body).findtext("Code")


def stored(s3: Any, bucket: str, key: str) -> bool:
    return any(o["Key"] == key for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


CHUNKS = [b"a" * 65536, b"b" * 65536, b"tail bytes"]
PAYLOAD = b"".join(CHUNKS)


def test_signed_chunks(server: Server, s3: Any, bucket: str) -> None:
    status, headers, body = streaming_put(server, f"/{bucket}/signed", CHUNKS, SIGNED)
    assert status == 200, body
    assert headers["etag"] == f'"{hashlib.md5(PAYLOAD).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="signed")
    assert got["Body"].read() == PAYLOAD
    assert "ContentEncoding" not in got


def test_signed_chunks_keep_other_content_encoding(server: Server, s3: Any, bucket: str) -> None:
    status, _, body = streaming_put(
        server, f"/{bucket}/gz", CHUNKS, SIGNED, extra_headers={"Content-Encoding": "aws-chunked,gzip"}
    )
    assert status == 200, body
    assert s3.head_object(Bucket=bucket, Key="gz")["ContentEncoding"] == "gzip"


def test_tampered_chunk_is_rejected(server: Server, s3: Any, bucket: str) -> None:
    status, headers, body = streaming_put(server, f"/{bucket}/bad", CHUNKS, SIGNED, tamper_chunk=1)
    assert status == 403 and code_of(body) == "SignatureDoesNotMatch"
    assert headers["x-amz-request-id"]
    assert not stored(s3, bucket, "bad")


def test_tampered_final_chunk_is_rejected(server: Server, s3: Any, bucket: str) -> None:
    status, _, body = streaming_put(server, f"/{bucket}/bad2", CHUNKS, SIGNED, tamper_chunk=2)
    assert status == 403 and code_of(body) == "SignatureDoesNotMatch"
    assert not stored(s3, bucket, "bad2")


def test_unsigned_trailer_crc32(server: Server, s3: Any, bucket: str) -> None:
    trailers = {"x-amz-checksum-crc32": crc32_b64(PAYLOAD)}
    status, headers, body = streaming_put(server, f"/{bucket}/crc", CHUNKS, UNSIGNED_TRAILER, trailers)
    assert status == 200, body
    assert headers.get("x-amz-checksum-crc32") == crc32_b64(PAYLOAD)
    head = s3.head_object(Bucket=bucket, Key="crc", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32_b64(PAYLOAD)
    assert s3.get_object(Bucket=bucket, Key="crc")["Body"].read() == PAYLOAD


def test_unsigned_trailer_wrong_crc32(server: Server, s3: Any, bucket: str) -> None:
    trailers = {"x-amz-checksum-crc32": crc32_b64(b"something else")}
    status, _, body = streaming_put(server, f"/{bucket}/crcbad", CHUNKS, UNSIGNED_TRAILER, trailers)
    assert status == 400 and code_of(body) == "BadDigest"
    assert not stored(s3, bucket, "crcbad")


def test_unsigned_trailer_missing_value(server: Server, s3: Any, bucket: str) -> None:
    status, _, body = _missing_trailer(server, bucket)
    assert status == 400, body
    assert not stored(s3, bucket, "crcmissing")


def _missing_trailer(server: Server, bucket: str) -> tuple[int, dict[str, str], bytes]:
    """Announces a CRC32 trailer but sends none."""
    path = f"/{bucket}/crcmissing"
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(PAYLOAD)),
        "x-amz-trailer": "x-amz-checksum-crc32",
    }
    req = AWSRequest(method="PUT", url=server.endpoint + path, headers=headers)
    _StreamingAuth(UNSIGNED_TRAILER).add_auth(req)
    signed = dict(req.headers.items())
    body = frame(CHUNKS, None, {})
    signed["Content-Length"] = str(len(body))
    return raw(server, "PUT", path, body, signed)


def test_signed_chunks_with_signed_trailer(server: Server, s3: Any, bucket: str) -> None:
    trailers = {"x-amz-checksum-crc32": crc32_b64(PAYLOAD)}
    status, _, body = streaming_put(server, f"/{bucket}/st", CHUNKS, SIGNED_TRAILER, trailers)
    assert status == 200, body
    head = s3.head_object(Bucket=bucket, Key="st", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == crc32_b64(PAYLOAD)
    assert head["ContentLength"] == len(PAYLOAD)


def test_signed_trailer_bad_signature(server: Server, s3: Any, bucket: str) -> None:
    trailers = {"x-amz-checksum-crc32": crc32_b64(PAYLOAD)}
    status, _, body = streaming_put(
        server, f"/{bucket}/stbad", CHUNKS, SIGNED_TRAILER, trailers, tamper_trailer_sig=True
    )
    assert status == 403 and code_of(body) == "SignatureDoesNotMatch"
    assert not stored(s3, bucket, "stbad")


def test_signed_trailer_wrong_checksum(server: Server, s3: Any, bucket: str) -> None:
    trailers = {"x-amz-checksum-crc32": crc32_b64(b"nope")}
    status, _, body = streaming_put(server, f"/{bucket}/stcrc", CHUNKS, SIGNED_TRAILER, trailers)
    assert status == 400 and code_of(body) == "BadDigest"
    assert not stored(s3, bucket, "stcrc")


@pytest.mark.parametrize("delta", [-1, 1, 1000])
def test_decoded_length_mismatch(server: Server, s3: Any, bucket: str, delta: int) -> None:
    key = f"len{delta}"
    status, _, body = streaming_put(
        server, f"/{bucket}/{key}", CHUNKS, SIGNED, decoded_length=len(PAYLOAD) + delta
    )
    assert status == 400, body
    assert code_of(body) in ("IncompleteBody", "InvalidRequest")
    assert not stored(s3, bucket, key)


def test_missing_decoded_length(server: Server, s3: Any, bucket: str) -> None:
    path = f"/{bucket}/nolen"
    req = AWSRequest(method="PUT", url=server.endpoint + path, headers={"Content-Encoding": "aws-chunked"})
    _StreamingAuth(SIGNED).add_auth(req)
    signed = dict(req.headers.items())
    seed = Seed(signed["X-Amz-Date"], signed["Authorization"].rsplit("Signature=", 1)[1])
    body = frame(CHUNKS, seed)
    signed["Content-Length"] = str(len(body))
    status, _, resp = raw(server, "PUT", path, body, signed)
    assert 400 <= status < 500 and code_of(resp) == "MissingContentLength"
    assert not stored(s3, bucket, "nolen")


def test_garbage_framing(server: Server, s3: Any, bucket: str) -> None:
    for i, body in enumerate([b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabcdef", b"ffffffffffffffffff\r\n"]):
        path = f"/{bucket}/garbage{i}"
        req = AWSRequest(
            method="PUT",
            url=server.endpoint + path,
            headers={"Content-Encoding": "aws-chunked", "x-amz-decoded-content-length": "3"},
        )
        _StreamingAuth(UNSIGNED_TRAILER).add_auth(req)
        headers = dict(req.headers.items())
        headers["Content-Length"] = str(len(body))
        status, _, resp = raw(server, "PUT", path, body, headers)
        assert status == 400, resp
        code_of(resp)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


# --- what boto3 sends by default -----------------------------------------------------------


def test_boto3_https_uses_trailing_checksum(tls_server: Server) -> None:
    s3 = tls_server.client()
    seen: list[dict[str, str]] = []
    s3.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: seen.append(dict(request.headers.items()))
    )
    name = "trailing-checksums"
    s3.create_bucket(Bucket=name)
    try:
        s3.put_object(Bucket=name, Key="k", Body=PAYLOAD, ContentEncoding="gzip")
        sent = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in seen[-1].items()}
        assert sent["x-amz-content-sha256"] == UNSIGNED_TRAILER
        assert sent["x-amz-trailer"] == "x-amz-checksum-crc32"
        assert "aws-chunked" in sent["content-encoding"]
        head = s3.head_object(Bucket=name, Key="k", ChecksumMode="ENABLED")
        assert head["ChecksumCRC32"] == crc32_b64(PAYLOAD)
        assert head["ContentEncoding"] == "gzip"
        s3.put_object(Bucket=name, Key="plain", Body=PAYLOAD)
        head = s3.head_object(Bucket=name, Key="plain", ChecksumMode="ENABLED")
        assert "ContentEncoding" not in head
        assert s3.get_object(Bucket=name, Key="plain")["Body"].read() == PAYLOAD
    finally:
        for key in ("k", "plain"):
            s3.delete_object(Bucket=name, Key=key)
        s3.delete_bucket(Bucket=name)


def test_non_ascii_digit_decoded_length(server: Server, s3: Any, bucket: str) -> None:
    status, _, body = streaming_put(
        server, f"/{bucket}/sup", CHUNKS, SIGNED, extra_headers={"x-amz-decoded-content-length": "\u00b2"}
    )
    assert status == 400 and code_of(body) == "InvalidArgument"
    assert not stored(s3, bucket, "sup")
