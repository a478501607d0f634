"""Chunk AAD binding of encrypted blobs (format version 2) over a real local store: what the header
records, what a read with an expected binding accepts and refuses, blobs moved under another id,
truncation and reordering, version 1 blobs still reading (and re-wrapping), dedup chunks bound to
their content hash, and the engine's per-segment bindings of multipart objects."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from blob_access import read_blob, write_blob
from rs3gw import errors
from rs3gw.blobs import binding
from rs3gw.blobs.base import Encryption, WriteOptions
from rs3gw.blobs.dedup import DedupBlobStore, DedupConfig
from rs3gw.blobs.encrypted import (
    CUSTOMER_KEY,
    HEADER_SIZE,
    HEADER_SIZE_V1,
    TAG,
    EncryptedBlobStore,
    parse_header,
    rewrap_file,
)
from rs3gw.blobs.keys import LocalKeyProvider
from rs3gw.blobs.local import LocalBlobStore
from rs3gw.engine.sse import BIND_PARTS, BIND_UPLOAD, multipart_bindings, read_bindings
from rs3gw.model import ObjectMeta, ObjectVersion, Segment
from sse_v1_format import V1_HEADER, seal_v1

CS = 4096
A = binding.object_binding("bkt", "a", "null")
B = binding.object_binding("bkt", "b", "null")


def _stores(root: Path) -> tuple[LocalBlobStore, EncryptedBlobStore]:
    local = LocalBlobStore(root, fsync=False)
    return local, EncryptedBlobStore(local, LocalKeyProvider(root), chunk_size=CS)


SSE_S3 = Encryption()


async def _put(st: EncryptedBlobStore, data: bytes, bound: bytes, enc: Encryption | None = SSE_S3) -> str:
    w = st.new_writer(WriteOptions(encryption=enc, binding=bound))
    for i in range(0, len(data), 3000):
        await w.write(data[i : i + 3000])
    await w.close()
    return w.blob_id


async def _get(
    st: EncryptedBlobStore,
    blob_id: str,
    offset: int = 0,
    length: int | None = None,
    expect: Mapping[str, bytes] | None = None,
) -> bytes:
    token = binding.EXPECTED.set(expect)
    try:
        return b"".join([c async for c in st.read(blob_id, offset, length)])
    finally:
        binding.EXPECTED.reset(token)


@contextlib.contextmanager
def integrity_error() -> Iterator[None]:
    """A 500 InternalError about the stored bytes (not a client error such as a missing SSE-C key)."""
    with pytest.raises(errors.S3Error) as e:
        yield
    assert (e.value.code, e.value.status) == ("InternalError", 500)
    assert "integrity" in str(e.value) or "truncated" in str(e.value)


def _fresh(local: LocalBlobStore) -> EncryptedBlobStore:
    """A second encryption layer over the same stored blobs: no cached headers or data keys."""
    return EncryptedBlobStore(local, LocalKeyProvider(local.root), chunk_size=CS)


def test_header_records_the_binding_and_reads_check_it(tmp_path: Path) -> None:
    async def run() -> None:
        local, st = _stores(tmp_path)
        data = os.urandom(3 * CS + 17)
        bid = await _put(st, data, A)
        raw = read_blob(local.root, bid)
        h = parse_header(raw[:HEADER_SIZE])
        assert h is not None and h.version == 2 and h.size == HEADER_SIZE
        assert h.binding == hashlib.sha256(A).digest() == binding.digest(A)
        assert len(raw) == HEADER_SIZE + len(data) + 4 * TAG
        assert await _get(st, bid, expect={bid: A}) == data
        assert await _get(st, bid) == data  # no expectation: the header's binding is still authenticated
        assert await _get(st, bid, expect={"other-blob": B}) == data
        with integrity_error():
            await _get(st, bid, expect={bid: B})
        for enc in (None, Encryption("kms-a"), Encryption(customer_key=b"c" * 32)):  # every key kind
            CUSTOMER_KEY.set(b"c" * 32)
            other = await _put(st, data, A, enc)
            if enc is None:
                assert await st.encryption_of(other) is None
                continue
            assert await _get(st, other, expect={other: A}) == data
            with integrity_error():
                await _get(st, other, expect={other: B})

    asyncio.run(run())


def test_ranges_across_chunk_boundaries_with_the_binding(tmp_path: Path) -> None:
    async def run() -> None:
        _, st = _stores(tmp_path)
        data = os.urandom(5 * CS + 100)
        bid = await _put(st, data, A)
        for a, n in [
            (0, 1),
            (CS - 1, 2),
            (CS - 5, CS + 10),
            (2 * CS, CS),
            (3 * CS - 1, 2 * CS + 2),
            (len(data) - 3, 3),
        ]:
            assert await _get(st, bid, a, n, {bid: A}) == data[a : a + n], (a, n)
            with integrity_error():
                await _get(st, bid, a, n, {bid: B})

    asyncio.run(run())


def test_editing_the_stored_binding_fails_even_without_an_expectation(tmp_path: Path) -> None:
    async def run() -> None:
        local, st = _stores(tmp_path)
        data = os.urandom(2 * CS)
        bid = await _put(st, data, A)
        raw = bytearray(read_blob(local.root, bid))
        raw[HEADER_SIZE_V1:HEADER_SIZE] = binding.digest(B)  # claim to be object b
        write_blob(local.root, bid, bytes(raw))
        with integrity_error():
            await _get(_fresh(local), bid)  # the data key's wrap is bound to the binding
        with integrity_error():
            await _get(_fresh(local), bid, expect={bid: B})

    asyncio.run(run())


def test_swapped_files_fail_and_never_return_the_other_objects_bytes(tmp_path: Path) -> None:
    async def run() -> None:
        local, st = _stores(tmp_path)
        da, db = os.urandom(2 * CS + 1), os.urandom(2 * CS + 1)
        ba, bb = await _put(st, da, A), await _put(st, db, B)
        raw_a, raw_b = read_blob(local.root, ba), read_blob(local.root, bb)
        write_blob(local.root, ba, raw_b)  # swapped where they are stored (files or rows)
        write_blob(local.root, bb, raw_a)
        for bid, want in ((ba, A), (bb, B)):
            with integrity_error():
                await _get(_fresh(local), bid, expect={bid: want})
            with integrity_error():
                await _get(_fresh(local), bid)  # blob id in the AAD: a move fails by itself too
        # A copy of one object's blob under a new blob id with the same binding fails as well.
        write_blob(local.root, ba, raw_a)  # bb holds a's original bytes, bound to a and blob ba
        with integrity_error():
            await _get(_fresh(local), bb, expect={bb: A})

    asyncio.run(run())


def test_truncation_and_reordering_fail(tmp_path: Path) -> None:
    async def run() -> None:
        local, st = _stores(tmp_path)
        data = os.urandom(3 * CS)
        bid = await _put(st, data, A)
        raw = read_blob(local.root, bid)
        stored = CS + TAG
        c = [raw[HEADER_SIZE + i * stored : HEADER_SIZE + (i + 1) * stored] for i in range(3)]
        write_blob(
            local.root, bid, raw[:HEADER_SIZE] + c[0] + c[1]
        )  # whole chunks dropped: last is not final
        with integrity_error():
            await _get(_fresh(local), bid, expect={bid: A})
        write_blob(local.root, bid, raw[:HEADER_SIZE] + c[1] + c[0] + c[2])
        st2 = _fresh(local)
        assert await _get(st2, bid, 2 * CS, CS, {bid: A}) == data[2 * CS :]  # untouched chunk still opens
        with integrity_error():
            await _get(st2, bid, 0, CS, {bid: A})
        write_blob(local.root, bid, raw)
        assert await _get(_fresh(local), bid, expect={bid: A}) == data

    asyncio.run(run())


def test_version_1_blobs_still_read_and_rewrap(tmp_path: Path) -> None:
    async def run() -> None:
        local, st = _stores(tmp_path)
        keys = LocalKeyProvider(tmp_path)
        for n in (0, 1, 65535, 65536, 65537, 200_000):
            data = os.urandom(n)
            w = local.new_writer()
            await w.write(seal_v1(keys, w.blob_id, data))
            await w.close()
            bid = w.blob_id
            h = parse_header(read_blob(local.root, bid)[:HEADER_SIZE])
            assert h is not None and h.version == 1 and h.size == V1_HEADER and h.binding == b""
            assert await st.size(bid) == n
            # An expectation does not apply to version 1 (it bound the blob id only): still reads.
            assert await _get(st, bid, expect={bid: A}) == data
            if n > 65550:
                assert await _get(st, bid, 65530, 20) == data[65530:65550]
        # Key rotation re-wraps a version 1 blob's data key; it still reads, and is still version 1.
        # (The last blob, 200,000 bytes, is a file: rewrap_file works on files.)
        keys.rotate()
        assert rewrap_file(keys, str(local.path(bid)), bid, fsync=False) == "rewrapped"
        st2 = _fresh(local)
        assert await st2.encryption_of(bid) == "aws/s3#2"
        assert await _get(st2, bid) == data
        h = parse_header(read_blob(local.root, bid)[:HEADER_SIZE])
        assert h is not None and h.version == 1
        # A version 1 blob moved under another blob's id fails as it always did.
        w = local.new_writer()
        await w.write(seal_v1(keys, w.blob_id, b"x" * 100))
        await w.close()
        write_blob(local.root, w.blob_id, read_blob(local.root, bid))
        with integrity_error():
            await _get(_fresh(local), w.blob_id)

    asyncio.run(run())


def test_rewrap_keeps_the_binding(tmp_path: Path) -> None:
    async def run() -> None:
        local, st = _stores(tmp_path)
        # Over SMALL_MAX (32 KiB): a file, which is what rewrap_file works on (key rotation re-wraps
        # a packed row through a scratch file with the same function: test_sse_rotation.py).
        data = os.urandom(8 * CS + 1)
        bid = await _put(st, data, A, Encryption("rot"))
        keys = LocalKeyProvider(tmp_path)
        keys.rotate(["rot"])
        assert rewrap_file(keys, str(local.path(bid)), bid, fsync=False) == "rewrapped"
        assert rewrap_file(keys, str(local.path(bid)), bid, fsync=False) == "current"
        st2 = _fresh(local)
        assert await st2.encryption_of(bid) == "rot#2"
        assert await _get(st2, bid, expect={bid: A}) == data
        with integrity_error():
            await _get(_fresh(local), bid, expect={bid: B})

    asyncio.run(run())


def test_dedup_chunks_are_bound_to_their_content_hash(tmp_path: Path) -> None:
    async def run() -> None:
        local, enc = _stores(tmp_path)
        dd = DedupBlobStore(
            enc, tmp_path / "dedup.db", DedupConfig(block_size=4096, min_object_size=0), False
        )
        try:
            data = os.urandom(4 * 4096)
            ids = []
            for bound in (A, B):  # two objects, the same bytes: the chunks are shared
                w = dd.new_writer(WriteOptions(encryption=Encryption(), binding=bound))
                await w.write(data)
                await w.close()
                ids.append(w.blob_id)
            chunk_ids = dd.chunk_blob_ids()
            assert len(chunk_ids) == 4
            want = {
                binding.digest(binding.dedup_chunk_binding(hashlib.sha256(data[i : i + 4096]).digest()))
                for i in range(0, len(data), 4096)
            }
            got = set()
            for c in chunk_ids:
                h = parse_header(read_blob(local.root, c)[:HEADER_SIZE])
                assert h is not None
                got.add(h.binding)
            assert got == want
            # The manifests are each object's own, bound to its identity; both read through dedup.
            for bid, bound, other in ((ids[0], A, B), (ids[1], B, A)):
                h = parse_header(read_blob(local.root, bid)[:HEADER_SIZE])
                assert h is not None and h.binding == binding.digest(bound)
                token = binding.EXPECTED.set({bid: bound})
                try:
                    assert b"".join([c async for c in dd.read(bid)]) == data
                finally:
                    binding.EXPECTED.reset(token)
                token = binding.EXPECTED.set({bid: other})
                try:
                    with integrity_error():
                        b"".join([c async for c in dd.read(bid)])
                finally:
                    binding.EXPECTED.reset(token)
        finally:
            dd.close()

    asyncio.run(run())


def _obj(parts: int, system: dict[str, str], segs: int = 3) -> ObjectVersion:
    segments = tuple(Segment(f"blob{i}", 10) for i in range(segs))
    return ObjectVersion("bkt", "k", "v1", 30, "e", 0.0, ObjectMeta(system=system), segments, "o", parts)


def test_engine_bindings_of_single_and_multipart_objects() -> None:
    assert read_bindings(_obj(0, {}, 1)) == {"blob0": binding.object_binding("bkt", "k", "v1")}
    assert multipart_bindings("up", [1, 2, 3]) == {BIND_UPLOAD: "up"}
    meta = multipart_bindings("up", [1, 2, 3])
    assert read_bindings(_obj(3, meta)) == {
        f"blob{i}": binding.part_binding("bkt", "k", "up", i + 1) for i in range(3)
    }
    sparse = multipart_bindings("up", [2, 5, 6, 7, 9])
    assert sparse == {BIND_UPLOAD: "up", BIND_PARTS: "2,5-7,9"}
    got = read_bindings(_obj(5, sparse, 5))
    assert [got[f"blob{i}"] for i in range(5)] == [
        binding.part_binding("bkt", "k", "up", n) for n in (2, 5, 6, 7, 9)
    ]
    assert multipart_bindings("up", [3])[BIND_PARTS] == "3"
    # Completed before bindings were recorded (version 1 parts), or unreadable: no expectation.
    assert read_bindings(_obj(3, {})) == {}
    assert read_bindings(_obj(3, {BIND_UPLOAD: "up", BIND_PARTS: "1-99999"})) == {}
    assert read_bindings(_obj(3, {BIND_UPLOAD: "up", BIND_PARTS: "1,2"})) == {}
    # Bindings are unambiguous: fields cannot run into each other.
    assert binding.object_binding("a", "bc", "null") != binding.object_binding("ab", "c", "null")
    assert binding.part_binding("b", "k", "u", 1) != binding.object_binding("b", "k", "u")
