"""Hypothesis fuzzing of the pure parsers: XML bodies, aws-chunked framing, Range, SigV4 headers,
query strings, preconditions and the router. Only S3Error subclasses may escape any of them.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rs3gw.auth import sigv4
from rs3gw.auth.chunked import AwsChunkedDecoder
from rs3gw.auth.verify import ChunkSigner, SignedRequest, authenticate, payload_mode
from rs3gw.engine.conditions import Conditions, check_copy_source, check_read
from rs3gw.engine.ranges import parse_range
from rs3gw.errors import S3Error
from rs3gw.protocol import xml_parse
from rs3gw.protocol.request import parse_query, split_address
from rs3gw.protocol.router import route
from rs3gw.timefmt import parse_http_date

FAST = settings(max_examples=300, deadline=None)
XML_PARSERS: list[Callable[[bytes], Any]] = [
    getattr(xml_parse, name)
    for name in (
        "parse_complete_multipart",
        "parse_delete_objects",
        "parse_create_bucket",
        "parse_versioning",
        "parse_tagging",
        "parse_cors",
    )
    if hasattr(xml_parse, name)
]
NAMES = [
    "CompleteMultipartUpload", "Part", "PartNumber", "ETag", "ChecksumCRC32", "ChecksumSHA256", "Delete",
    "Object", "Key", "VersionId", "Quiet", "CreateBucketConfiguration", "LocationConstraint",
    "VersioningConfiguration", "Status", "MfaDelete", "Tagging", "TagSet", "Tag", "Value", "CORSConfiguration",
    "CORSRule", "AllowedOrigin", "AllowedMethod", "AllowedHeader", "MaxAgeSeconds", "ExposeHeader", "ID",
]  # fmt: skip
TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        ["1", "0", "-1", "10001", "99999999999999999999", '"abc"', "true", "Enabled", "GET", "*"]
    ),
)


def only_s3_errors(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except S3Error:
        return None


@st.composite
def xml_docs(draw: st.DrawFn, depth: int = 0) -> str:
    name = draw(st.sampled_from(NAMES))
    if depth > 3 or draw(st.booleans()):
        from xml.sax.saxutils import escape

        return f"<{name}>{escape(draw(TEXT))}</{name}>"
    children = draw(st.lists(xml_docs(depth + 1), max_size=4))
    ns = ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"' if depth == 0 and draw(st.booleans()) else ""
    return f"<{name}{ns}>{''.join(children)}</{name}>"


@FAST
@given(body=st.one_of(st.binary(max_size=500), xml_docs().map(str.encode)))
@pytest.mark.parametrize("parser", XML_PARSERS, ids=lambda p: p.__name__)
def test_xml_parsers_raise_only_s3_errors(parser: Callable[[bytes], Any], body: bytes) -> None:
    only_s3_errors(lambda: parser(body))


@FAST
@given(header=st.one_of(st.text(max_size=40), st.from_regex(r"bytes=[0-9,\- ]{0,20}", fullmatch=True)),
       size=st.integers(0, 1 << 40))  # fmt: skip
def test_parse_range_bounds(header: str, size: int) -> None:
    rng = only_s3_errors(lambda: parse_range(header, size))
    if rng is not None:
        assert 0 <= rng.start <= rng.end < size


# -- aws-chunked ------------------------------------------------------------------------------


async def _pieces(data: bytes, cuts: list[int]) -> AsyncIterator[bytes]:
    last = 0
    for c in sorted({c % (len(data) + 1) for c in cuts}):
        yield data[last:c]
        last = c
    yield data[last:]


def _decode(
    body: bytes, cuts: list[int], signer: ChunkSigner | None, trailer: bool, length: int | None
) -> bytes:
    async def run() -> bytes:
        dec = AwsChunkedDecoder(
            _pieces(body, cuts), signer=signer, expect_trailer=trailer, decoded_length=length
        )
        return b"".join([piece async for piece in dec])

    return asyncio.run(run())


SIGNER = ChunkSigner(sigv4.signing_key("secret", "20260101", "us-east-1"), "20260101T000000Z",
                     "20260101/us-east-1/s3/aws4_request", "0" * 64)  # fmt: skip


def frame(chunks: list[bytes], signer: ChunkSigner | None) -> bytes:
    out, previous = bytearray(), signer.seed_signature if signer else ""
    for data in [*chunks, b""]:
        ext = ""
        if signer:
            previous = signer.chunk_signature(previous, hashlib.sha256(data).hexdigest())
            ext = f";chunk-signature={previous}"
        out += f"{len(data):x}{ext}\r\n".encode() + data + (b"\r\n" if data else b"")
    return bytes(out + b"\r\n")


@FAST
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=100), max_size=4),
    cuts=st.lists(st.integers(0, 10_000), max_size=6),
    signed=st.booleans(),
    flip=st.one_of(st.none(), st.integers(0, 10_000)),
    trailer=st.booleans(),
)
def test_chunked_decoder(
    chunks: list[bytes], cuts: list[int], signed: bool, flip: int | None, trailer: bool
) -> None:
    """Valid frames decode exactly; mutated ones decode to the same bytes or raise an S3Error."""
    signer = SIGNER if signed else None
    body = frame(chunks, signer)
    want = b"".join(chunks)
    if flip is None:
        assert _decode(body, cuts, signer, False, len(want)) == want
        return
    i = flip % len(body)
    bad = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
    got = only_s3_errors(lambda: _decode(bad, cuts, signer, trailer, len(want)))
    if signed:
        assert got is None or got == want, "a mutated signed body decoded to other bytes"


@FAST
@given(body=st.binary(max_size=400), cuts=st.lists(st.integers(0, 500), max_size=5), signed=st.booleans(),
       trailer=st.booleans(), length=st.one_of(st.none(), st.integers(0, 500)))  # fmt: skip
def test_chunked_decoder_garbage(
    body: bytes, cuts: list[int], signed: bool, trailer: bool, length: int | None
) -> None:
    only_s3_errors(lambda: _decode(body, cuts, SIGNER if signed else None, trailer, length))


# -- SigV4 header parsing, query strings, preconditions, routing --------------------------------

AUTH_VALUES = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda cred, signed, sig, sep: (
            f"AWS4-HMAC-SHA256 Credential={cred}{sep}SignedHeaders={signed}{sep}Signature={sig}"
        ),
        st.one_of(st.text(max_size=40), st.just("rs3gwtestkey/20260101/us-east-1/s3/aws4_request")),
        st.one_of(st.text(max_size=30), st.just("host;x-amz-date")),
        st.text("0123456789abcdef", max_size=70),
        st.sampled_from([", ", ",", " ", ",,"]),
    ),
    st.builds(lambda a, b: f"AWS {a}:{b}", st.text(max_size=20), st.text(max_size=30)),
)
HEADER_VALUES = st.text(max_size=40)
QUERY = st.lists(
    st.tuples(
        st.sampled_from(["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
                         "X-Amz-Signature", "AWSAccessKeyId", "Signature", "Expires", "uploads", "x"]),
        st.text(max_size=40),
    ),
    max_size=6,
)  # fmt: skip


@FAST
@given(
    method=st.sampled_from(["GET", "PUT", "POST", "HEAD", "DELETE"]),
    path=st.text(max_size=30).map(lambda p: "/" + p),
    query=QUERY,
    auth=st.one_of(st.none(), AUTH_VALUES),
    headers=st.dictionaries(
        st.sampled_from(["x-amz-date", "date", "x-amz-content-sha256", "host", "x-amz-security-token"]),
        HEADER_VALUES,
        max_size=4,
    ),
)
def test_authenticate_raises_only_s3_errors(
    method: str, path: str, query: list[tuple[str, str]], auth: str | None, headers: dict[str, str]
) -> None:
    if auth is not None:
        headers = {**headers, "authorization": auth}
    req = SignedRequest(method, path, query, headers)
    only_s3_errors(lambda: authenticate(req, lambda k: "secret" if k else None, "us-east-1", 1.8e9))
    only_s3_errors(lambda: payload_mode(headers.get("x-amz-content-sha256", "")))


@FAST
@given(qs=st.binary(max_size=80), path=st.text(max_size=40), host=st.text(max_size=30))
def test_query_and_address_parsing(qs: bytes, path: str, host: str) -> None:
    only_s3_errors(lambda: parse_query(qs))
    only_s3_errors(lambda: split_address(path, host, "s3.example.com"))


@FAST
@given(
    headers=st.dictionaries(
        st.sampled_from(["if-match", "if-none-match", "if-modified-since", "if-unmodified-since"]),
        st.one_of(HEADER_VALUES, st.sampled_from(["Wed, 21 Oct 2015 07:28:00 GMT", '"etag"', "*", 'W/"x"'])),
    ),
    lm=st.floats(0, 4e9),
)
def test_preconditions_and_dates(headers: dict[str, str], lm: float) -> None:
    cond = Conditions.from_headers(headers)
    only_s3_errors(lambda: check_read(cond, "etag", lm))
    only_s3_errors(lambda: check_copy_source(cond, "etag", lm))
    for v in headers.values():
        parse_http_date(v)


@FAST
@given(
    method=st.sampled_from(["GET", "PUT", "POST", "HEAD", "DELETE", "PATCH", "OPTIONS"]),
    bucket=st.one_of(st.none(), st.text(max_size=10)),
    key=st.one_of(st.none(), st.text(max_size=10)),
    query=st.dictionaries(st.sampled_from(["uploads", "uploadId", "partNumber", "versionId", "delete", "tagging",
                                           "versioning", "list-type", "acl", "cors", "select", "restore"]),
                          st.text(max_size=5)),
    headers=st.dictionaries(st.sampled_from(["x-amz-copy-source", "content-type", "x-amz-tagging"]), st.text(max_size=5)),
)  # fmt: skip
def test_router_raises_only_s3_errors(
    method: str, bucket: str | None, key: str | None, query: dict[str, str], headers: dict[str, str]
) -> None:
    only_s3_errors(lambda: route(method, bucket, key, query, headers))
