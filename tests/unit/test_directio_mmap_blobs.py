"""O_DIRECT writes and mmap reads of the local blob store on the real filesystem under tmp_path
(ext4 here): bytes round-trip exactly at every size around the block and threshold edges, O_DIRECT
really bypasses the page cache (fincore), refusals fall back to ordinary writes, and mmap reads
really map the file (/proc/self/maps). Also the predictive cache's max_objects bound."""

from __future__ import annotations

import asyncio
import os
import random
import socket
from collections.abc import AsyncGenerator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from page_cache import needs_fincore, resident_bytes
from rs3gw.blobs.base import BlobStore
from rs3gw.blobs.directio import ALIGN, DirectIO, DirectSink, set_direct
from rs3gw.blobs.local import LocalBlobStore
from rs3gw.blobs.mmapread import MMAP_MIN
from rs3gw.blobs.plainfile import open_span
from rs3gw.blobs.predictive_cache import CacheSettings, PredictiveCacheStore

MiB = 1 << 20
T = TypeVar("T")
SIZES = [0, 1, 4095, 4096, 4097, MiB - 1, MiB, MiB + 1, 3 * MiB + 12345]


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def put(store: LocalBlobStore, data: bytes, step: int = 333_333) -> str:
    w = store.new_writer()
    for i in range(0, len(data), step):
        await w.write(data[i : i + step])
    await w.close()
    return w.blob_id


async def get(store: BlobStore, blob_id: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([c async for c in store.read(blob_id, offset, length)])


def test_direct_writes_round_trip_at_every_edge(tmp_path: Path) -> None:
    policy = DirectIO(threshold=MiB)
    store = LocalBlobStore(tmp_path, fsync=True, direct_io=policy)
    rnd = random.Random(7)

    async def go() -> None:
        for size in SIZES:
            data = rnd.randbytes(size)
            before = policy.direct_bytes
            for step in (333_333, 4096, 1 << 22):
                blob = await put(store, data, step)
                assert await get(store, blob) == data, (size, step)
                assert os.path.getsize(store.path(blob)) == size
            went_direct = policy.direct_bytes - before
            # From the threshold on, every byte of the blob goes direct (tail padded, then truncated).
            assert went_direct == (3 * size if size >= MiB else 0), size
        assert policy.supported and policy.fallbacks == 0
        assert list(store.tmp_dir.iterdir()) == []

    run(go())


def test_threshold_zero_sends_small_blobs_direct(tmp_path: Path) -> None:
    policy = DirectIO(threshold=0)
    store = LocalBlobStore(tmp_path, fsync=False, direct_io=policy)

    async def go() -> None:
        blob = await put(store, b"hello")
        assert await get(store, blob) == b"hello"

    run(go())
    assert policy.direct_bytes == 5


@needs_fincore
def test_direct_writes_leave_the_page_cache_alone(tmp_path: Path) -> None:
    data = random.Random(1).randbytes(8 * MiB)
    direct = LocalBlobStore(tmp_path / "direct", fsync=True, direct_io=DirectIO(threshold=MiB))
    plain = LocalBlobStore(tmp_path / "plain", fsync=True)
    d = run(put(direct, data, MiB))
    p = run(put(plain, data, MiB))
    assert resident_bytes(plain.path(str(p))) > len(data) // 2  # the control: buffered writes stay cached
    assert resident_bytes(direct.path(str(d))) <= 2 * ALIGN
    assert run(get(direct, str(d))) == data


def test_refused_o_direct_falls_back(tmp_path: Path) -> None:
    # A socket cannot take O_DIRECT: the switch reports the refusal instead of raising.
    a, b = socket.socketpair()
    with a, b:
        assert set_direct(a.fileno(), True) is False
    # /dev/null takes pwrite but not O_DIRECT: the sink writes the ordinary way and stops trying.
    policy = DirectIO(threshold=0)
    fd = os.open("/dev/null", os.O_WRONLY)
    try:
        sink = DirectSink(fd, policy)
        sink.write(memoryview(b"x" * 8192))
        assert (sink.direct, policy.supported, policy.fallbacks, policy.direct_bytes) == (False, False, 1, 0)
    finally:
        os.close(fd)
    # A write O_DIRECT turns down (EINVAL: here an unaligned buffer) goes through the page cache.
    path = tmp_path / "f"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        policy = DirectIO(threshold=0)
        sink = DirectSink(fd, policy)
        assert set_direct(fd, True)
        sink.direct = True
        odd = memoryview(b"y" * 100)
        sink._put(odd, odd)
        assert (sink.direct, policy.supported, policy.fallbacks) == (False, False, 1)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"y" * 100


def test_store_stops_trying_after_a_refusal(tmp_path: Path) -> None:
    policy = DirectIO(threshold=0, supported=False)
    store = LocalBlobStore(tmp_path, fsync=False, direct_io=policy)
    data = os.urandom(2 * MiB + 5)
    blob = run(put(store, data))
    assert run(get(store, str(blob))) == data
    assert (policy.direct_bytes, policy.fallbacks) == (0, 0)


def test_mmap_reads_map_the_file_and_match(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, fsync=False, mmap_reads=True)
    data = random.Random(3).randbytes(9 * MiB + 777)
    blob = run(put(store, data))
    path = str(store.path(blob))

    async def go() -> None:
        stream = store.read(blob, 12345, MMAP_MIN + 3)
        first = await anext(stream)
        maps = Path("/proc/self/maps").read_text()
        rest = b"".join([c async for c in stream])
        assert path in maps  # mapped, not pread
        assert first + rest == data[12345 : 12345 + MMAP_MIN + 3]
        for off, n in ((0, None), (MiB - 1, MMAP_MIN + 2), (len(data) - MMAP_MIN, MMAP_MIN), (5, 100)):
            end = len(data) if n is None else off + n
            assert await get(store, blob, off, n) == data[off:end], (off, n)
        # A span under MMAP_MIN takes the pread path.
        small = store.read(blob, 0, MMAP_MIN - 1)
        assert isinstance(small, AsyncGenerator)
        await anext(small)
        assert path not in Path("/proc/self/maps").read_text()
        await small.aclose()

    run(go())


def test_mmap_refuses_spans_past_the_end(tmp_path: Path) -> None:
    """A file shorter than the span must not be mapped (SIGBUS); the pread path reports it."""
    store = LocalBlobStore(tmp_path, fsync=False, mmap_reads=True)
    blob = run(put(store, os.urandom(MMAP_MIN + MiB)))

    async def go() -> None:
        with pytest.raises(Exception, match="truncated"):
            await get(store, blob, 2 * MiB, MMAP_MIN)

    run(go())


def test_file_span_chunks_through_mmap(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, fsync=False)
    data = random.Random(4).randbytes(MMAP_MIN + MiB + 1)
    blob = run(put(store, data))

    async def go() -> None:
        span = await open_span(store, blob, len(data), 100, MMAP_MIN + 3, mmap=True)
        assert span is not None and span.mmap
        chunks = span.chunks()
        got = await anext(chunks)
        assert str(store.path(blob)) in Path("/proc/self/maps").read_text()
        got += b"".join([c async for c in chunks])
        assert got == data[100 : 100 + MMAP_MIN + 3]

    run(go())


def test_cache_max_objects_bound(tmp_path: Path) -> None:
    inner = LocalBlobStore(tmp_path, fsync=False)
    cache = PredictiveCacheStore(inner, CacheSettings(enabled=True, max_objects=2, policy="lru"))

    async def go() -> None:
        blobs = [await put(inner, bytes([i]) * 1000) for i in range(3)]
        for b in blobs:
            assert await get(cache, b) == await get(inner, b)
        assert cache.stats()["entries"] == 2 and cache.counts["evictions"] == 1
        assert await get(cache, blobs[2]) == bytes([2]) * 1000
        assert cache.counts["hits"] == 1

    run(go())
