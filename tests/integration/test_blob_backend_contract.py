"""One suite every blob backend passes: the local filesystem, an S3 upstream (a real SeaweedFS), GCS (an
emulator from PyPI) and Azure Blob Storage (Azurite, from npm).

The engine depends only on this contract, so a backend that passes it can carry every S3 feature.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port
from rs3gw import errors
from rs3gw.blobs.base import BlobStore
from rs3gw.blobs.local import LocalBlobStore
from rs3gw.blobs.s3 import S3BackendConfig, S3BlobStore
from seaweed import Seaweed, start_seaweed
from upstream_emulators import azure_store, azurite, gcs_emu, gcs_store  # noqa: F401 - fixtures

PART = 5 << 20  # S3's smallest part, so a 13 MiB blob is a three-part upload
UPSTREAM_BUCKET = "contract"
Run = Callable[[Callable[[], Awaitable[Any]]], Any]


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    w = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    try:
        w.client().create_bucket(Bucket=UPSTREAM_BUCKET)
        yield w
    finally:
        w.stop()


def s3_config(weed: Seaweed, prefix: str, **kw: Any) -> S3BackendConfig:
    return S3BackendConfig(
        UPSTREAM_BUCKET, weed.endpoint, prefix, "us-east-1", weed.access_key, weed.secret_key, **kw
    )


@pytest.fixture(params=["local", "s3", "gcs", "azure"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path, fsync=False)
        return
    if request.param in ("gcs", "azure"):
        make = gcs_store if request.param == "gcs" else azure_store
        with make(request, f"t-{uuid.uuid4().hex[:10]}", PART) as other:
            yield other
        return
    weed: Seaweed = request.getfixturevalue("weed")
    # No write-time cache: every read goes to the upstream, as a sibling gateway's would.
    s3 = S3BlobStore(s3_config(weed, f"t-{uuid.uuid4().hex[:10]}", part_size=PART, head_cache=0))
    try:
        yield s3
    finally:
        s3.close()


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(fn())  # type: ignore[arg-type]


async def put(store: BlobStore, data: bytes, piece: int = 1 << 20) -> str:
    w = store.new_writer()
    md5 = hashlib.md5()
    for i in range(0, len(data), piece):
        await w.write(data[i : i + piece], [md5])
    assert await w.close([md5]) == len(data)
    assert md5.digest() == hashlib.md5(data).digest()  # taps saw every byte once, in order
    return w.blob_id


async def get(store: BlobStore, blob_id: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([c async for c in store.read(blob_id, offset, length)])


async def ids(store: BlobStore) -> set[str]:
    return {b async for b in store.list_ids()}


def test_round_trip(store: BlobStore) -> None:
    async def go() -> None:
        data = os.urandom(300_001)
        blob = await put(store, data, piece=65_536)
        assert await get(store, blob) == data
        assert await store.size(blob) == len(data)
        assert await store.exists(blob)
        assert await ids(store) == {blob}

    run(go)


def test_empty_blob(store: BlobStore) -> None:
    async def go() -> None:
        w = store.new_writer()
        assert await w.close() == 0
        assert await get(store, w.blob_id) == b""
        assert await get(store, w.blob_id, 0, 0) == b""
        assert await store.size(w.blob_id) == 0
        assert await store.exists(w.blob_id)

    run(go)


def test_large_blob_streams_in_bounded_pieces(store: BlobStore) -> None:
    async def go() -> None:
        data = os.urandom(13 << 20)
        blob = await put(store, data)
        digest, biggest = hashlib.sha256(), 0
        async for chunk in store.read(blob):
            digest.update(chunk)
            biggest = max(biggest, len(chunk))
        assert digest.digest() == hashlib.sha256(data).digest()
        assert 0 < biggest <= 1 << 20  # streamed, never the whole blob at once
        assert await store.size(blob) == len(data)
        start = PART - 3  # a range across the first part boundary
        assert await get(store, blob, start, 10) == data[start : start + 10]

    run(go)


def test_ranges(store: BlobStore) -> None:
    async def go() -> None:
        data = bytes(range(256)) * 40
        blob = await put(store, data)
        n = len(data)
        assert await get(store, blob, 100, 50) == data[100:150]
        assert await get(store, blob, 100) == data[100:]
        assert await get(store, blob, n - 1) == data[-1:]
        assert await get(store, blob, 0, n) == data
        assert await get(store, blob, n) == b""  # offset at the end, to the end: nothing
        assert await get(store, blob, n, 0) == b""
        with pytest.raises(errors.S3Error, match="truncated"):  # a blob shorter than its metadata says
            await get(store, blob, n - 10, 20)

    run(go)


def test_missing_blob(store: BlobStore) -> None:
    async def go() -> None:
        ghost = uuid.uuid4().hex
        assert not await store.exists(ghost)
        with pytest.raises(errors.S3Error, match="missing"):
            await get(store, ghost)
        with pytest.raises(errors.S3Error, match="missing"):
            await get(store, ghost, 5, 10)
        with pytest.raises(errors.S3Error, match="missing"):
            await store.size(ghost)

    run(go)


def test_invisible_until_close_and_abort_leaves_nothing(store: BlobStore) -> None:
    async def go() -> None:
        w = store.new_writer()
        for _ in range(7):  # past one part: the S3 backend has a multipart upload open
            await w.write(os.urandom(1 << 20))
        await asyncio.sleep(0.2)
        assert not await store.exists(w.blob_id)
        assert await ids(store) == set()
        await w.abort()
        await w.abort()  # twice is safe
        assert not await store.exists(w.blob_id)
        assert await ids(store) == set()
        small = store.new_writer()
        await small.write(b"never published")
        await small.abort()
        assert not await store.exists(small.blob_id)

    run(go)


def test_abort_after_close_keeps_the_blob(store: BlobStore) -> None:
    async def go() -> None:
        w = store.new_writer()
        await w.write(b"kept")
        await w.close()
        await w.abort()
        assert await get(store, w.blob_id) == b"kept"

    run(go)


def test_delete_is_idempotent(store: BlobStore) -> None:
    async def go() -> None:
        a, b = await put(store, b"a" * 10), await put(store, b"b" * 20)
        ghost = uuid.uuid4().hex
        await store.delete([])
        await store.delete([a, a, ghost])
        assert not await store.exists(a)
        assert await store.exists(b)
        await store.delete([a])
        assert await ids(store) == {b}
        await store.delete([b])
        assert await ids(store) == set()

    run(go)


def test_list_ids(store: BlobStore) -> None:
    async def go() -> None:
        written = {await put(store, os.urandom(i)) for i in range(1, 25)}
        assert await ids(store) == written
        gone = sorted(written)[:5]
        await store.delete(gone)
        assert await ids(store) == written - set(gone)

    run(go)


def test_many_writers_at_once(store: BlobStore) -> None:
    async def go() -> None:
        bodies = [os.urandom(1000 * i + 1) for i in range(16)]
        blobs = await asyncio.gather(*(put(store, b, piece=777) for b in bodies))
        assert [await get(store, b) for b in blobs] == bodies

    run(go)


# -- the S3 backend's own promises ---------------------------------------------------------------


def test_s3_layout_multipart_and_foreign_keys(weed: Seaweed) -> None:
    prefix = f"lay-{uuid.uuid4().hex[:8]}"
    s3 = S3BlobStore(s3_config(weed, prefix + "/", part_size=PART))
    upstream = weed.client()
    upstream.put_object(Bucket=UPSTREAM_BUCKET, Key=f"{prefix}/README", Body=b"not a blob")
    upstream.put_object(Bucket=UPSTREAM_BUCKET, Key=f"{prefix}-other/ab/cd/abcd0000", Body=b"x")

    async def go() -> tuple[str, str]:
        big = await put(s3, os.urandom(11 << 20))
        small = await put(s3, b"small")
        assert await ids(s3) == {big, small}  # README and the sibling prefix are not ours
        return big, small

    try:
        big, small = run(go)
    finally:
        s3.close()
    head = upstream.head_object(Bucket=UPSTREAM_BUCKET, Key=f"{prefix}/{big[:2]}/{big[2:4]}/{big}")
    assert head["ContentLength"] == 11 << 20
    assert head["ETag"].strip('"').endswith("-3")  # 5 + 5 + 1 MiB: a real multipart upload
    head = upstream.head_object(Bucket=UPSTREAM_BUCKET, Key=f"{prefix}/{small[:2]}/{small[2:4]}/{small}")
    assert "-" not in head["ETag"]  # a single PUT
    pending = upstream.list_multipart_uploads(Bucket=UPSTREAM_BUCKET, Prefix=prefix).get("Uploads", [])
    assert pending == []


def test_s3_abort_removes_the_multipart_upload(weed: Seaweed) -> None:
    prefix = f"ab-{uuid.uuid4().hex[:8]}"
    s3 = S3BlobStore(s3_config(weed, prefix, part_size=PART))
    upstream = weed.client()

    async def go() -> None:
        w = s3.new_writer()
        for _ in range(11):
            await w.write(os.urandom(1 << 20))
        await w._settle()  # type: ignore[attr-defined]  # both parts have reached the upstream
        listed = upstream.list_multipart_uploads(Bucket=UPSTREAM_BUCKET, Prefix=prefix).get("Uploads", [])
        assert [u["Key"].rsplit("/", 1)[-1] for u in listed] == [w.blob_id]
        await w.abort()

    try:
        run(go)
    finally:
        s3.close()
    assert upstream.list_multipart_uploads(Bucket=UPSTREAM_BUCKET, Prefix=prefix).get("Uploads", []) == []
    assert upstream.list_objects_v2(Bucket=UPSTREAM_BUCKET, Prefix=prefix).get("KeyCount", 0) == 0


def test_s3_remembers_what_it_wrote(weed: Seaweed) -> None:
    """Size and header probes of a blob this gateway just wrote cost no round trip; the rest do."""
    s3 = S3BlobStore(s3_config(weed, f"hc-{uuid.uuid4().hex[:8]}"))
    calls: list[str] = []
    s3.client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    data = os.urandom(1000)

    async def go() -> None:
        blob = await put(s3, data)
        empty = await put(s3, b"")
        calls.clear()
        assert await s3.size(blob) == 1000
        assert await get(s3, blob, 0, 16) == data[:16]
        assert await get(s3, blob, 10, 54) == data[10:64]
        assert await get(s3, empty) == b""
        assert calls == []
        assert await get(s3, blob, 900) == data[900:]
        assert calls == ["GetObject"]
        await s3.delete([blob])
        with pytest.raises(errors.S3Error, match="missing"):
            await s3.size(blob)

    try:
        run(go)
    finally:
        s3.close()


def test_s3_never_sweeps_orphans(weed: Seaweed) -> None:
    """Several gateways share the upstream: what looks orphaned may be a sibling's pending write."""
    s3 = S3BlobStore(s3_config(weed, f"sw-{uuid.uuid4().hex[:8]}"))

    async def go() -> None:
        blob = await put(s3, b"unreferenced")

        async def nothing() -> set[str]:
            return set()

        assert await s3.sweep_orphans(nothing) == 0
        assert await s3.exists(blob)

    try:
        run(go)
    finally:
        s3.close()


def test_s3_unreachable_upstream_is_503(tmp_path: Path) -> None:
    dead = S3BackendConfig(UPSTREAM_BUCKET, f"http://127.0.0.1:{free_port()}", "p", attempts=2)
    s3 = S3BlobStore(dead)

    async def go() -> None:
        with pytest.raises(errors.S3Error) as caught:
            await s3.exists(uuid.uuid4().hex)
        assert (caught.value.code, caught.value.status) == ("ServiceUnavailable", 503)
        w = s3.new_writer()
        await w.write(b"x")
        with pytest.raises(errors.S3Error) as caught:
            await w.close()
        assert caught.value.status == 503

    try:
        run(go)
    finally:
        s3.close()
