"""aws-chunked decoding: AWS's published 66560-byte example, trailers, framing and limit errors."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from rs3gw.auth import sigv4
from rs3gw.auth.chunked import MAX_CHUNK, AwsChunkedDecoder
from rs3gw.auth.verify import ChunkSigner
from rs3gw.errors import IncompleteBody, InvalidRequest, S3Error, SignatureDoesNotMatch

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
PUBLISHED = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
]
SIGNER = ChunkSigner(
    signing_key=sigv4.signing_key(SECRET, "20130524", "us-east-1"),
    amz_date="20130524T000000Z",
    scope="20130524/us-east-1/s3/aws4_request",
    seed_signature=SEED,
)


def _aws_example_body() -> bytes:
    """Built from the published signatures, not recomputed ones, so it is an independent vector."""
    return (
        b"10000;chunk-signature=" + PUBLISHED[0].encode() + b"\r\n" + b"a" * 65536 + b"\r\n"
        b"400;chunk-signature=" + PUBLISHED[1].encode() + b"\r\n" + b"a" * 1024 + b"\r\n"
        b"0;chunk-signature=" + PUBLISHED[2].encode() + b"\r\n\r\n"
    )


def _encode(
    chunks: list[bytes], signer: ChunkSigner | None, trailers: list[tuple[str, str]] | None = None
) -> bytes:
    out = []
    previous = signer.seed_signature if signer else ""
    for data in [*chunks, b""]:
        ext = b""
        if signer:
            previous = signer.chunk_signature(previous, hashlib.sha256(data).hexdigest())
            ext = b";chunk-signature=" + previous.encode()
        out.append(b"%x" % len(data) + ext + b"\r\n" + data + (b"\r\n" if data else b""))
    if trailers is not None:
        text = "".join(f"{k}:{v}\n" for k, v in trailers).encode()
        out.append(text.replace(b"\n", b"\r\n"))
        if signer:
            out.append(
                b"x-amz-trailer-signature:" + signer.trailer_signature(previous, text).encode() + b"\r\n"
            )
    out.append(b"\r\n")
    return b"".join(out)


async def _pieces(body: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


def _decode(
    body: bytes,
    *,
    signer: ChunkSigner | None = SIGNER,
    trailer: bool = False,
    length: int | None = None,
    piece: int = 1000,
) -> tuple[list[bytes], dict[str, str]]:
    async def run() -> tuple[list[bytes], dict[str, str]]:
        decoder = AwsChunkedDecoder(
            _pieces(body, piece), signer=signer, expect_trailer=trailer, decoded_length=length
        )
        out = [part async for part in decoder]
        return out, decoder.trailers

    return asyncio.run(run())


def _fails(exc: type[S3Error], body: bytes, **kwargs: Any) -> None:
    with pytest.raises(exc) as info:
        _decode(body, **kwargs)
    assert type(info.value) is exc


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


# --- the published example -------------------------------------------------------------------


@pytest.mark.parametrize("piece", [1, 7, 88, 4096, 65536 + 90, 1 << 20])
def test_aws_published_chunked_example(piece: int) -> None:
    body = _aws_example_body()
    assert len(body) == 66824
    out, trailers = _decode(body, length=66560, piece=piece)
    assert b"".join(out) == b"a" * 66560
    assert [len(p) for p in out] == [65536, 1024]
    assert trailers == {}


def test_our_encoder_reproduces_published_signatures() -> None:
    assert _encode([b"a" * 65536, b"a" * 1024], SIGNER) == _aws_example_body()


@pytest.mark.parametrize("offset", [100, 40000, 66000, 66700])
def test_tampered_data_fails_signature(offset: int) -> None:
    body = bytearray(_aws_example_body())
    body[offset] = ord("b")
    _fails(SignatureDoesNotMatch, bytes(body))


@pytest.mark.parametrize("which", [0, 1, 2])
def test_wrong_chunk_signature(which: int) -> None:
    body = _aws_example_body().replace(PUBLISHED[which].encode(), b"0" * 64)
    _fails(SignatureDoesNotMatch, body)


def test_missing_chunk_signature_when_signed() -> None:
    _fails(SignatureDoesNotMatch, _encode([b"abc"], None))


def test_wrong_seed_is_rejected() -> None:
    other = ChunkSigner(SIGNER.signing_key, SIGNER.amz_date, SIGNER.scope, "1" * 64)
    _fails(SignatureDoesNotMatch, _aws_example_body(), signer=other)


def test_reordered_chunks_are_rejected() -> None:
    first = _encode([b"x" * 10, b"y" * 10], SIGNER)
    second = _encode([b"y" * 10, b"x" * 10], SIGNER)
    assert first != second
    lines = first.split(b"\r\n")
    lines[0], lines[2] = lines[2], lines[0]
    lines[1], lines[3] = lines[3], lines[1]
    _fails(SignatureDoesNotMatch, b"\r\n".join(lines))


# --- lengths and framing ---------------------------------------------------------------------


@pytest.mark.parametrize("cut", [0, 5, 88, 30000, 65624, 65625, 66000, 66740, 66800])
def test_truncated_body(cut: int) -> None:
    _fails(IncompleteBody, _aws_example_body()[:cut], length=66560)


@pytest.mark.parametrize("length", [0, 66559, 66561, 100000])
def test_decoded_length_mismatch(length: int) -> None:
    _fails(IncompleteBody, _aws_example_body(), length=length)


def test_overlong_chunk_is_refused_before_it_is_yielded() -> None:
    async def run() -> list[bytes]:
        decoder = AwsChunkedDecoder(
            _pieces(_encode([b"z" * 100], None), 10), signer=None, expect_trailer=False, decoded_length=50
        )
        got: list[bytes] = []
        with pytest.raises(IncompleteBody):
            async for part in decoder:
                got.append(part)
        return got

    assert asyncio.run(run()) == []


def test_size_line_too_long() -> None:
    _fails(InvalidRequest, b"4;" + b"x" * 5000 + b"\r\nabcd\r\n0\r\n\r\n", signer=None)


def test_size_line_too_long_without_newline_fails_early() -> None:
    _fails(InvalidRequest, b"4" * 100000, signer=None)


def test_chunk_too_large() -> None:
    _fails(InvalidRequest, b"%x\r\n" % (MAX_CHUNK + 1) + b"a" * 10, signer=None)


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\nab\r\n0\r\n\r\n",
        b"\r\n",
        b";chunk-signature=x\r\n",
        b"2\nab\r\n0\r\n\r\n",
        b"-1\r\n",
        b"0x2\r\nab\r\n0\r\n\r\n",
    ],
)
def test_garbage_framing(body: bytes) -> None:
    _fails(InvalidRequest, body, signer=None)


def test_missing_crlf_after_data() -> None:
    _fails(InvalidRequest, b"2\r\nabXY0\r\n\r\n", signer=None)


def test_trailing_garbage_after_final_chunk() -> None:
    _fails(InvalidRequest, _encode([b"abc"], None) + b"junk", signer=None)


def test_missing_final_crlf_is_tolerated_without_trailer() -> None:
    out, _ = _decode(_encode([b"abc"], SIGNER)[:-2], length=3)
    assert out == [b"abc"]


def test_unsigned_chunks_stream_without_buffering_whole_chunk() -> None:
    out, _ = _decode(_encode([b"q" * 5000], None), signer=None, piece=100, length=5000)
    assert b"".join(out) == b"q" * 5000
    assert max(len(p) for p in out) <= 100


def test_signature_extension_ignored_in_unsigned_mode() -> None:
    out, _ = _decode(_encode([b"abc", b"de"], SIGNER), signer=None, length=5)
    assert b"".join(out) == b"abcde"


# --- trailers --------------------------------------------------------------------------------


def test_signed_trailer_round_trip() -> None:
    data = b"hello world" * 1000
    body = _encode([data[:8192], data[8192:]], SIGNER, [("x-amz-checksum-crc32", _crc32(data))])
    out, trailers = _decode(body, trailer=True, length=len(data), piece=333)
    assert b"".join(out) == data
    assert trailers == {"x-amz-checksum-crc32": _crc32(data)}


def test_signed_trailer_tampered_value() -> None:
    body = _encode([b"abc"], SIGNER, [("x-amz-checksum-crc32", _crc32(b"abc"))])
    body = body.replace(_crc32(b"abc").encode(), _crc32(b"abd").encode())
    _fails(SignatureDoesNotMatch, body, trailer=True)


def test_signed_trailer_bad_signature() -> None:
    body = _encode([b"abc"], SIGNER, [("x-amz-checksum-crc32", _crc32(b"abc"))])
    head, _, _ = body.rpartition(b"x-amz-trailer-signature:")
    _fails(SignatureDoesNotMatch, head + b"x-amz-trailer-signature:" + b"0" * 64 + b"\r\n\r\n", trailer=True)


def test_signed_trailer_missing_signature() -> None:
    body = _encode([b"abc"], None, [("x-amz-checksum-crc32", _crc32(b"abc"))])
    signed_chunks = _encode([b"abc"], SIGNER).removesuffix(b"\r\n")
    trailer_part = body.split(b"0\r\n", 1)[1]
    _fails(SignatureDoesNotMatch, signed_chunks + trailer_part, trailer=True)


def test_unsigned_trailer_like_botocore() -> None:
    data = b"some object data"
    body = (
        b"%x\r\n" % len(data) + data + b"\r\n0\r\nx-amz-checksum-crc32:" + _crc32(data).encode() + b"\r\n\r\n"
    )
    out, trailers = _decode(body, signer=None, trailer=True, length=len(data), piece=3)
    assert b"".join(out) == data
    assert trailers == {"x-amz-checksum-crc32": _crc32(data)}


def test_unannounced_trailer_is_refused() -> None:
    body = _encode([b"abc"], None, [("x-amz-checksum-crc32", _crc32(b"abc"))])
    _fails(InvalidRequest, body, signer=None, trailer=False)


def test_trailer_without_colon() -> None:
    _fails(InvalidRequest, b"3\r\nabc\r\n0\r\nnocolon\r\n\r\n", signer=None, trailer=True)


def test_trailer_truncated() -> None:
    _fails(IncompleteBody, b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAA", signer=None, trailer=True)
