"""The encryption blob layer over a real local store: every size/range against every key kind, the
MAGIC escape, and a torn re-wrap slot (the crash case of key rotation)."""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pytest

from rs3gw import errors
from rs3gw.blobs.base import Encryption, WriteOptions
from rs3gw.blobs.encrypted import CUSTOMER_KEY, MAGIC, PREFIX, SLOT_SIZE, EncryptedBlobStore, rewrap_file
from rs3gw.blobs.keys import LocalKeyProvider
from rs3gw.blobs.local import LocalBlobStore

CK = b"k" * 32


async def _put(st: EncryptedBlobStore, data: bytes, enc: Encryption | None, step: int = 3000) -> str:
    w = st.new_writer(WriteOptions(encryption=enc))
    for i in range(0, len(data), step):
        await w.write(data[i : i + step])
    await w.close()
    return w.blob_id


async def _get(st: EncryptedBlobStore, blob_id: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([c async for c in st.read(blob_id, offset, length)])


def test_round_trips_and_ranges(tmp_path: Path) -> None:
    async def run() -> None:
        st = EncryptedBlobStore(
            LocalBlobStore(tmp_path, fsync=False), LocalKeyProvider(tmp_path), chunk_size=4096
        )
        rng = random.Random(7)
        CUSTOMER_KEY.set(CK)
        for n in (0, 1, 7, 8, 4095, 4096, 4097, 8192, 100_000):
            data = os.urandom(n)
            for enc in (None, Encryption(), Encryption("k1"), Encryption(customer_key=CK)):
                bid = await _put(st, data, enc)
                assert await st.size(bid) == n
                assert await _get(st, bid) == data
                for _ in range(5):
                    a = rng.randrange(n + 1)
                    ln = rng.randrange(n - a + 1)
                    assert await _get(st, bid, a, ln) == data[a : a + ln]

    asyncio.run(run())


def test_plain_write_starting_with_magic_is_escaped(tmp_path: Path) -> None:
    async def run() -> None:
        st = EncryptedBlobStore(LocalBlobStore(tmp_path, fsync=False), LocalKeyProvider(tmp_path))
        bid = await _put(st, MAGIC + b"hello", None)
        assert await _get(st, bid) == MAGIC + b"hello"
        assert await st.encryption_of(bid) == "aws/s3#1"

    asyncio.run(run())


def test_torn_rewrap_slot_keeps_the_old_one_live(tmp_path: Path) -> None:
    async def run() -> None:
        local = LocalBlobStore(tmp_path, fsync=False)
        keys = LocalKeyProvider(tmp_path)
        st = EncryptedBlobStore(local, keys)
        # Over SMALL_MAX (32 KiB): a file, whose spare slot a crash can tear (a packed row is
        # replaced in one SQLite commit, never torn).
        data = os.urandom(40_000)
        bid = await _put(st, data, Encryption())
        assert local.path(bid).exists()
        path = str(local.path(bid))
        keys.rotate()
        assert rewrap_file(keys, path, bid, fsync=False) == "rewrapped"
        assert rewrap_file(keys, path, bid, fsync=False) == "current"
        raw = bytearray(Path(path).read_bytes())
        raw[PREFIX.size + 10] ^= 0xFF  # slot A (now the spare) torn
        Path(path).write_bytes(raw)
        fresh = EncryptedBlobStore(local, LocalKeyProvider(tmp_path))
        assert await fresh.encryption_of(bid) == "aws/s3#2"
        assert await _get(fresh, bid) == data
        raw[PREFIX.size + SLOT_SIZE + 10] ^= 0xFF  # both slots damaged: an error, not data
        Path(path).write_bytes(raw)
        with pytest.raises(errors.InternalError):
            await _get(EncryptedBlobStore(local, LocalKeyProvider(tmp_path)), bid)

    asyncio.run(run())
