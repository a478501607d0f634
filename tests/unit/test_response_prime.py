"""``prime``: a body that arrives whole in its first chunk is sent as a plain body (the stream is
ended first); every other stream keeps its bytes, its order and its failure point."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from rs3gw.errors import InternalError
from rs3gw.protocol.response import Response, prime


class _Source:
    """A body stream that records whether its ``finally`` ran (the blob reader's cleanup)."""

    def __init__(self, chunks: list[bytes], fail_after: int | None = None) -> None:
        self.chunks, self.fail_after, self.closed = chunks, fail_after, False

    async def stream(self) -> AsyncIterator[bytes]:
        try:
            for i, c in enumerate(self.chunks):
                if self.fail_after is not None and i == self.fail_after:
                    raise InternalError("object data is truncated")
                yield c
            if self.fail_after is not None and self.fail_after >= len(self.chunks):
                raise InternalError("object data is truncated")
        finally:
            self.closed = True


async def _drain(resp: Response) -> bytes:
    assert resp.stream is not None
    return b"".join([c async for c in resp.stream])


def test_whole_body_in_first_chunk_becomes_plain_body() -> None:
    async def main() -> None:
        src = _Source([b"x" * 4096])
        resp = await prime(Response(200, {"etag": '"e"'}, stream=src.stream(), length=4096))
        assert resp.stream is None and resp.body == b"x" * 4096 and resp.length == 4096
        assert resp.headers == {"etag": '"e"'} and src.closed  # the reader's cleanup already ran

    asyncio.run(main())


def test_multi_chunk_and_short_streams_are_kept() -> None:
    async def main() -> None:
        src = _Source([b"a" * 10, b"b" * 5])
        resp = await prime(Response(200, stream=src.stream(), length=15))
        assert resp.stream is not None and await _drain(resp) == b"a" * 10 + b"b" * 5 and src.closed
        # A first chunk as long as Content-Length but followed by more: all of it still streams.
        src = _Source([b"a" * 10, b"b" * 5])
        resp = await prime(Response(200, stream=src.stream(), length=10))
        assert resp.stream is not None and await _drain(resp) == b"a" * 10 + b"b" * 5
        # Not bytes (a view may point into a mapping): streamed as before, never turned into a body.
        view = memoryview(b"m" * 8)

        async def views() -> AsyncIterator[bytes]:
            yield view  # type: ignore[misc]

        resp = await prime(Response(200, stream=views(), length=8))
        assert resp.stream is not None and await _drain(resp) == b"m" * 8
        empty = await prime(Response(200, stream=_Source([]).stream(), length=0))
        assert empty.stream is not None and await _drain(empty) == b""

    asyncio.run(main())


def test_failure_after_the_whole_first_chunk_still_fails_after_it() -> None:
    async def main() -> None:
        src = _Source([b"z" * 100], fail_after=1)  # e.g. verify_on_read failing at the end
        resp = await prime(Response(200, stream=src.stream(), length=100))
        assert resp.stream is not None
        got = []
        with pytest.raises(InternalError):
            async for c in resp.stream:
                got.append(c)
        assert got == [b"z" * 100] and src.closed

    asyncio.run(main())
