"""CompressedBlobStore over a real LocalBlobStore: round trips, ranges across frame boundaries, raw fallback."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blob_access import read_blob, write_blob
from rs3gw import errors
from rs3gw.blobs.base import NO_OPTIONS, WriteOptions
from rs3gw.blobs.compressed import (
    MAGIC,
    MIN_FRAME_SIZE,
    CompressedBlobStore,
    Compression,
    parse_compression,
)
from rs3gw.blobs.local import LocalBlobStore

FS = MIN_FRAME_SIZE  # small frames: many boundaries with little data
CODECS = [Compression("zstd", 3), Compression("zstd", 19), Compression("lz4"), Compression("none")]


def _stored_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "blobs").rglob("*") if p.is_file())


async def _put(store: CompressedBlobStore, data: bytes, step: int, options: WriteOptions = NO_OPTIONS) -> str:
    w = store.new_writer(options)
    md5 = hashlib.md5(usedforsecurity=False)
    for i in range(0, len(data), step):
        await w.write(data[i : i + step], [md5])
    assert await w.close([md5]) == len(data)
    assert md5.digest() == hashlib.md5(data, usedforsecurity=False).digest()  # taps saw the plaintext
    return w.blob_id


async def _get(store: CompressedBlobStore, blob_id: str, offset: int = 0, length: int | None = None) -> bytes:
    out = bytearray()
    it: AsyncIterator[bytes] = store.read(blob_id, offset, length)
    async for chunk in it:
        out += chunk
    return bytes(out)


def _data(draw_seed: int, size: int, kind: str) -> bytes:
    rnd = os.urandom(size) if kind == "random" else b""
    if kind == "text":
        words = [b"alpha ", b"beta ", b"gamma\n", b"delta, ", str(draw_seed).encode() + b" "]
        out = bytearray()
        i = draw_seed
        while len(out) < size:
            out += words[i % len(words)]
            i = (i * 7 + 3) % 1009
        return bytes(out[:size])
    if kind == "mixed":  # compressible first frame, then incompressible stretches
        half = size // 2
        return _data(draw_seed, half, "text") + os.urandom(size - half)
    return rnd


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    codec=st.sampled_from(CODECS),
    kind=st.sampled_from(["text", "random", "mixed"]),
    size=st.integers(0, 9 * FS + 17),
    seed=st.integers(0, 1000),
    step=st.integers(1, 3 * FS),
    ranges=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=1, max_size=6),
)
def test_round_trip_and_ranges(
    tmp_path: Path,
    codec: Compression,
    kind: str,
    size: int,
    seed: int,
    step: int,
    ranges: list[tuple[float, float]],
) -> None:
    data = _data(seed, size, kind)
    root = Path(tempfile.mkdtemp(dir=tmp_path))  # one LocalBlobStore per directory and process
    store = CompressedBlobStore(LocalBlobStore(root, fsync=False), codec, frame_size=FS)

    async def run() -> None:
        bid = await _put(store, data, step)
        assert await _get(store, bid) == data
        assert await store.size(bid) == len(data)
        fresh = CompressedBlobStore(
            store.inner, Compression("none"), frame_size=FS
        )  # no cache, other default
        for a, b in ranges:
            off = int(a * size)
            length = int(b * (size - off))
            assert await _get(store, bid, off, length) == data[off : off + length]
            assert await _get(fresh, bid, off, length) == data[off : off + length]
        await store.delete([bid])

    asyncio.run(run())


def test_text_shrinks_and_random_stays_plain(tmp_path: Path) -> None:
    text = _data(1, 2 * 1024 * 1024, "text")
    noise = os.urandom(1024 * 1024)
    for comp, ratio in ((Compression("zstd", 3), 3), (Compression("lz4"), 2)):
        root = tmp_path / comp.codec
        store = CompressedBlobStore(LocalBlobStore(root, fsync=False), comp)

        async def run(store: CompressedBlobStore = store, root: Path = root, ratio: int = ratio) -> None:
            t = await _put(store, text, 65536)
            assert not await store.is_plain(t)
            assert _stored_bytes(root) * ratio <= len(text)
            r = await _put(store, noise, 65536)
            assert await store.is_plain(r)  # sample-based check: stored as the original bytes
            assert (root / "blobs" / r[:2] / r).read_bytes() == noise
            assert await _get(store, r, 1000, 5000) == noise[1000:6000]

        asyncio.run(run())


def test_plain_data_that_looks_framed_is_escaped(tmp_path: Path) -> None:
    """Under compression "none" a body starting with the magic is framed raw, never misread."""
    evil = MAGIC + b"\x00" * 8 + b"payload" * 1000
    store = CompressedBlobStore(LocalBlobStore(tmp_path, fsync=False), Compression("none"), frame_size=FS)

    async def run() -> None:
        bid = await _put(store, evil, 5)
        assert not await store.is_plain(bid)
        assert await _get(store, bid) == evil
        short = await _put(store, MAGIC[:5], 1)
        assert await _get(store, short) == MAGIC[:5]

    asyncio.run(run())


def test_bucket_override_and_mixed_blobs(tmp_path: Path) -> None:
    inner = LocalBlobStore(tmp_path, fsync=False)
    text = _data(7, 300_000, "text")
    off = CompressedBlobStore(inner, Compression("none"))

    async def run() -> None:
        plain = await _put(off, text, 4096)
        zipped = await _put(off, text, 4096, WriteOptions(compression="lz4"))
        assert await off.is_plain(plain)
        assert not await off.is_plain(zipped)
        on = CompressedBlobStore(inner, Compression("zstd", 5))  # "restart" with compression on
        for bid in (plain, zipped):
            assert await _get(on, bid, 100_000, 70_000) == text[100_000:170_000]
        assert await on.is_plain(await _put(on, text, 4096, WriteOptions(compression="none")))

    asyncio.run(run())


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    store = CompressedBlobStore(LocalBlobStore(tmp_path, fsync=False), Compression("zstd", 1))

    async def run() -> None:
        w = store.new_writer()
        await w.write(_data(3, 3 * 1024 * 1024, "text"))
        await w.abort()
        assert [b async for b in store.list_ids()] == []
        assert list((tmp_path / "tmp").iterdir()) == []

    asyncio.run(run())


def test_corrupt_frame_is_an_error(tmp_path: Path) -> None:
    store = CompressedBlobStore(LocalBlobStore(tmp_path, fsync=False), Compression("zstd", 3))
    text = _data(5, 600_000, "text")

    async def run() -> None:
        bid = await _put(store, text, 65536)
        raw = bytearray(read_blob(tmp_path, bid))  # a file, or a packed row (up to SMALL_MAX)
        raw[40:60] = b"\xff" * 20
        write_blob(tmp_path, bid, bytes(raw))
        with pytest.raises(errors.InternalError):
            await _get(CompressedBlobStore(store.inner), bid, 0, 1000)

    asyncio.run(run())


@pytest.mark.parametrize(
    ("text", "want"),
    [("none", "none"), ("LZ4", "lz4"), ("zstd", "zstd:3"), (" zstd:22 ", "zstd:22"), ("zstd:1", "zstd:1")],
)
def test_parse_ok(text: str, want: str) -> None:
    assert str(parse_compression(text)) == want


@pytest.mark.parametrize("text", ["", "gzip", "zstd:0", "zstd:23", "zstd:x", "lz4:3", "none:1", "zstd:-1"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="zstd"):
        parse_compression(text)
