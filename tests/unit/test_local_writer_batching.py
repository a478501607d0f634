"""LocalBlobStore's writer keeps body chunks uncopied and writes them in batches with writev: the
stored bytes and the taps' digests must equal the body exactly, whatever the chunk sizes, and a
caller reusing a mutable buffer after write() must not change what was stored."""

from __future__ import annotations

import asyncio
import hashlib
import os
import zlib
from pathlib import Path

import pytest

from blob_access import has_blob, read_blob
from rs3gw.blobs import local
from rs3gw.blobs.local import FLUSH_AT, SMALL_CHUNK, LocalBlobStore, _writev_all


class _Crc:
    """A second tap (CRC32), to check that every tap sees every byte once, in order."""

    def __init__(self) -> None:
        self.value = 0

    def update(self, data: bytes | memoryview) -> None:
        self.value = zlib.crc32(data, self.value)


def _store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path, fsync=False)


async def _write(store: LocalBlobStore, chunks: list[bytes | bytearray | memoryview]) -> tuple[str, str, int]:
    md5, crc = hashlib.md5(usedforsecurity=False), _Crc()
    w = store.new_writer()
    for c in chunks:
        await w.write(c, [md5, crc])
    await w.close([md5, crc])
    return w.blob_id, md5.hexdigest(), crc.value


@pytest.mark.parametrize(
    "sizes",
    [
        [0],
        [1, 2, 3],
        [SMALL_CHUNK - 1, 1, SMALL_CHUNK, 5],
        [64 << 10] * 16,  # exactly FLUSH_AT: written by close()
        [64 << 10] * 17 + [7],  # one flush during the body, the rest at close
        [1] * 3000 + [300 << 10] * 5 + [3] * 10,  # many tiny chunks, then large ones
        [FLUSH_AT * 2 + 5],  # one chunk larger than a batch
    ],
)
def test_stored_bytes_and_digests_match_body(tmp_path: Path, sizes: list[int]) -> None:
    store = _store(tmp_path)
    body = os.urandom(sum(sizes))
    chunks: list[bytes | bytearray | memoryview] = []
    pos = 0
    for i, n in enumerate(sizes):
        piece = body[pos : pos + n]
        pos += n
        chunks.append(piece if i % 3 == 0 else bytearray(piece) if i % 3 == 1 else memoryview(piece))
    blob_id, md5, crc = asyncio.run(_write(store, chunks))
    assert read_blob(tmp_path, blob_id) == body  # a file, or a packed row (up to SMALL_MAX)
    assert md5 == hashlib.md5(body, usedforsecurity=False).hexdigest()
    assert crc == zlib.crc32(body)


def test_mutable_buffer_reused_by_caller_is_not_aliased(tmp_path: Path) -> None:
    store = _store(tmp_path)
    buf = bytearray(b"a" * (100 << 10))

    async def run() -> str:
        w = store.new_writer()
        for fill in (b"a", b"b", b"c"):
            buf[:] = fill * len(buf)
            await w.write(buf)
        buf[:] = b"z" * len(buf)  # after the last write, before close
        await w.close()
        return w.blob_id

    blob_id = asyncio.run(run())
    assert store.path(blob_id).read_bytes() == b"a" * len(buf) + b"b" * len(buf) + b"c" * len(buf)


def test_writev_all_resumes_after_more_than_iov_max_buffers(tmp_path: Path) -> None:
    parts = [os.urandom(1 + i % 5) for i in range(local._IOV_MAX * 2 + 3)]
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        _writev_all(fd, [memoryview(p) for p in parts])
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"".join(parts)


def test_delete_of_blobs_held_elsewhere_is_a_no_op(tmp_path: Path) -> None:
    store = _store(tmp_path)
    blob_id, _, _ = asyncio.run(_write(store, [b"x" * 10]))  # a packed row
    asyncio.run(store.delete(["ab" + "0" * 30]))  # not here: nothing to do, nothing raised
    assert has_blob(tmp_path, blob_id)
    asyncio.run(store.delete([blob_id, "cd" + "0" * 30]))
    assert not has_blob(tmp_path, blob_id)
