"""Decodes aws-chunked request bodies, checking chunk and trailer signatures as they stream past.

Memory stays bounded: framing lines are capped and only one (size-capped) signed chunk is held.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator

from rs3gw.auth.sigv4 import EMPTY_SHA256
from rs3gw.auth.verify import ChunkSigner
from rs3gw.errors import IncompleteBody, InvalidRequest, SignatureDoesNotMatch

MAX_LINE = 4096
MAX_CHUNK = 16 * 1024 * 1024
_HEX = frozenset(b"0123456789abcdefABCDEF")


class _Reader:
    """Pull-based view over the source pieces, since chunk frames straddle piece boundaries freely."""

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self._source = source
        self._buf = bytearray()
        self._pos = 0
        self._eof = False

    async def _fill(self) -> bool:
        # Compacting only when more input is needed keeps the copy small: by then little is left.
        del self._buf[: self._pos]
        self._pos = 0
        while not self._eof:
            try:
                piece = await anext(self._source)
            except StopAsyncIteration:
                self._eof = True
                break
            if piece:
                self._buf += piece
                return True
        return False

    async def read_line(self, *, eof_ok: bool = False) -> bytes | None:
        """A line without its '\\n'; None only when eof_ok and the body has ended cleanly here."""
        idx = self._buf.find(b"\n", self._pos)
        while idx < 0:
            if len(self._buf) - self._pos > MAX_LINE:
                raise InvalidRequest("aws-chunked framing line is too long.")
            if not await self._fill():
                if eof_ok and self._pos == len(self._buf):
                    return None
                raise IncompleteBody()
            idx = self._buf.find(b"\n", self._pos)
        if idx - self._pos > MAX_LINE:
            raise InvalidRequest("aws-chunked framing line is too long.")
        line = bytes(self._buf[self._pos : idx])
        self._pos = idx + 1
        return line

    async def read_some(self, limit: int) -> bytes:
        if self._pos == len(self._buf) and not await self._fill():
            raise IncompleteBody()
        end = min(len(self._buf), self._pos + limit)
        data = bytes(self._buf[self._pos : end])
        self._pos = end
        return data

    async def expect_crlf(self) -> None:
        got = b""
        while len(got) < 2:
            got += await self.read_some(2 - len(got))
        if got != b"\r\n":
            raise InvalidRequest("aws-chunked chunk data is not followed by CRLF.")

    async def expect_end(self) -> None:
        if self._pos < len(self._buf) or await self._fill():
            raise InvalidRequest("Unexpected data after the final aws-chunked chunk.")


class AwsChunkedDecoder:
    """Yields the decoded payload; iterate once. ``trailers`` is complete when iteration ends."""

    def __init__(
        self,
        source: AsyncIterator[bytes],
        *,
        signer: ChunkSigner | None,
        expect_trailer: bool,
        decoded_length: int | None,
    ) -> None:
        self._reader = _Reader(source)
        self._signer = signer
        self._expect_trailer = expect_trailer
        self._decoded_length = decoded_length
        self.trailers: dict[str, str] = {}

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._decode()

    async def _decode(self) -> AsyncIterator[bytes]:
        previous = self._signer.seed_signature if self._signer else ""
        total = 0
        while True:
            size, claimed = _parse_chunk_header(await self._reader.read_line())
            if size == 0:
                break
            total += size
            if self._decoded_length is not None and total > self._decoded_length:
                raise IncompleteBody("The decoded body is longer than x-amz-decoded-content-length.")
            if self._signer is None:
                async for piece in self._stream(size):
                    yield piece
            else:
                data = await self._read_chunk(size)
                previous = _check(self._signer.chunk_signature(previous, _sha(data)), claimed)
                yield data
            await self._reader.expect_crlf()
        if self._signer is not None:
            previous = _check(self._signer.chunk_signature(previous, EMPTY_SHA256), claimed)
        await self._read_trailers(previous)
        if self._decoded_length is not None and total != self._decoded_length:
            raise IncompleteBody()

    async def _stream(self, size: int) -> AsyncIterator[bytes]:
        remaining = size
        while remaining:
            piece = await self._reader.read_some(remaining)
            remaining -= len(piece)
            yield piece

    async def _read_chunk(self, size: int) -> bytes:
        """Signed chunks are held whole: nothing may reach the caller before its signature checks."""
        pieces = [piece async for piece in self._stream(size)]
        return b"".join(pieces)

    async def _read_trailers(self, previous: str) -> None:
        lines: list[bytes] = []
        while True:
            line = await self._reader.read_line(eof_ok=not self._expect_trailer and not lines)
            if line is None:
                return  # some clients omit the closing CRLF when there is no trailer
            line = line.removesuffix(b"\r")
            if not line:
                break
            lines.append(line)
        if lines and not self._expect_trailer:
            raise InvalidRequest("Trailing headers were sent but not announced.")
        signature = self._parse_trailers(lines)
        if self._signer is not None and self._expect_trailer:
            signed_text = b"".join(
                line + b"\n" for line in lines if not line.lower().startswith(b"x-amz-trailer-signature:")
            )
            _check(self._signer.trailer_signature(previous, signed_text), signature)
        await self._reader.expect_end()

    def _parse_trailers(self, lines: list[bytes]) -> str | None:
        signature = None
        for line in lines:
            name, sep, value = line.decode("utf-8", "replace").partition(":")
            if not sep or not name.strip():
                raise InvalidRequest("Malformed aws-chunked trailer line.")
            key = name.strip().lower()
            if key == "x-amz-trailer-signature":
                signature = value.strip()
            else:
                self.trailers[key] = value.strip()
        return signature


def _parse_chunk_header(line: bytes | None) -> tuple[int, str | None]:
    if line is None or not line.endswith(b"\r"):
        raise InvalidRequest("aws-chunked chunk header must end with CRLF.")
    size_text, _, extension = line[:-1].partition(b";")
    if not size_text or len(size_text) > 16 or not _HEX.issuperset(size_text):
        raise InvalidRequest("aws-chunked chunk size is not hexadecimal.")
    size = int(size_text, 16)
    if size > MAX_CHUNK:
        raise InvalidRequest(f"aws-chunked chunk size exceeds {MAX_CHUNK} bytes.")
    # Exact, no stripping: stray bytes around the signature (a flipped CR or LF becomes \x0b or
    # \x0c, which strip() would swallow) are a malformed frame, refused like any other.
    name, _, value = extension.partition(b"=")
    claimed = value.decode("ascii", "replace") if name == b"chunk-signature" else None
    return size, claimed


def _check(expected: str, claimed: str | None) -> str:
    """Returns the verified signature, which seeds the next link of the chain."""
    if claimed is None or not hmac.compare_digest(expected.encode(), claimed.encode()):
        raise SignatureDoesNotMatch()
    return expected


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
