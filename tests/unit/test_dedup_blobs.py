"""DedupBlobStore over a real LocalBlobStore: round trips, ranges, refcounts and garbage."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rs3gw.blobs.dedup import ChunkingAlgorithm, DedupBlobStore, DedupConfig
from rs3gw.blobs.local import LocalBlobStore

ALGOS = [ChunkingAlgorithm.FIXED_SIZE, ChunkingAlgorithm.CONTENT_DEFINED]


async def make(root: Path, algo: ChunkingAlgorithm, min_size: int = 0, block: int = 4096) -> DedupBlobStore:
    """Opened as the engine opens it: the start-up sweep (here keeping every blob) runs first."""
    cfg = DedupConfig(enabled=True, block_size=block, algorithm=algo, min_object_size=min_size)
    store = DedupBlobStore(LocalBlobStore(root, fsync=False), root / "dedup.db", cfg, fsync=False)

    async def keep_all() -> set[str]:
        return {b async for b in store.list_ids()}

    await store.sweep_orphans(keep_all)
    return store


async def put(store: DedupBlobStore, data: bytes, piece: int = 70001) -> str:
    w = store.new_writer()
    md5 = hashlib.md5()
    for i in range(0, len(data), piece):
        await w.write(data[i : i + piece], [md5])
    assert await w.close([md5]) == len(data)
    assert md5.hexdigest() == hashlib.md5(data).hexdigest()  # taps see every byte once, in order
    return w.blob_id


async def get(store: DedupBlobStore, blob_id: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([c async for c in store.read(blob_id, offset, length)])


def blob_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "blobs").rglob("*") if p.is_file())


@pytest.mark.parametrize("algo", ALGOS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(min_size=0, max_size=40000),
    reps=st.integers(1, 3),
    ranges=st.lists(st.tuples(st.integers(0, 130000), st.integers(0, 50000)), max_size=6),
)
def test_round_trip_and_ranges(
    tmp_path: Path, algo: ChunkingAlgorithm, data: bytes, reps: int, ranges: list[tuple[int, int]]
) -> None:
    body = data * reps

    async def run() -> None:
        store = await make(Path(tempfile.mkdtemp(dir=tmp_path)), algo, min_size=1)
        bid = await put(store, body, piece=9999)
        assert await get(store, bid) == body
        assert await store.size(bid) == len(body)
        for off0, n0 in ranges:
            off = off0 % (len(body) + 1)
            n = min(n0, len(body) - off)  # the engine resolves ranges before reading
            assert await get(store, bid, off, n) == body[off : off + n]
        await store.delete([bid])
        assert store.index.totals().stored_bytes == 0
        store.close()

    asyncio.run(run())


@pytest.mark.parametrize("algo", ALGOS)
def test_duplicates_are_stored_once_and_freed_with_the_last_reference(
    tmp_path: Path, algo: ChunkingAlgorithm
) -> None:
    rnd = random.Random(1)
    data = rnd.randbytes(3 << 20)
    edited = data[: 1 << 20] + rnd.randbytes(1024) + data[1 << 20 :]

    async def run() -> None:
        store = await make(tmp_path, algo, block=16384)
        a = await put(store, data)
        one = blob_bytes(tmp_path)
        b = await put(store, data)
        c = await put(store, edited)
        grown = blob_bytes(tmp_path) - one
        if algo == ChunkingAlgorithm.CONTENT_DEFINED:
            assert grown < 0.2 * len(data)  # an insertion shifts nothing after the next cut
        else:
            assert grown < 1.2 * len(data)
        assert await get(store, c) == edited
        await store.delete([a])
        assert await get(store, b) == data
        await store.delete([b, c])
        totals = store.index.totals()
        assert (totals.manifests, totals.chunks, totals.stored_bytes) == (0, 0, 0)
        assert blob_bytes(tmp_path) == 0
        store.close()

    asyncio.run(run())


def test_small_blobs_pass_through_and_old_blobs_still_read(tmp_path: Path) -> None:
    async def run() -> None:
        plain = LocalBlobStore(tmp_path, fsync=False)
        w = plain.new_writer()
        await w.write(b"RS3GWDD1 looks like a manifest but is not")
        await w.close()
        plain._open_gate()  # as if its process had stopped
        store = await make(tmp_path, ChunkingAlgorithm.FIXED_SIZE, min_size=1000)
        assert await get(store, w.blob_id) == b"RS3GWDD1 looks like a manifest but is not"
        small = await put(store, b"x" * 999)
        assert store.index.manifest(small) is None
        assert await get(store, small, 10, 5) == b"xxxxx"
        big = await put(store, os.urandom(1000))
        assert store.index.manifest(big) is not None
        store.close()

    asyncio.run(run())


def test_abort_and_crashed_writers_release_their_chunks(tmp_path: Path) -> None:
    async def run() -> None:
        store = await make(tmp_path, ChunkingAlgorithm.FIXED_SIZE)
        w = store.new_writer()
        await w.write(os.urandom(5 << 20))  # past one batch: chunks are stored and pinned
        assert store.index.totals().chunks > 0
        await w.abort()
        assert store.index.totals().chunks == 0
        assert blob_bytes(tmp_path) == 0
        # A writer whose process died: its rows stay behind until the next start's recovery.
        w2 = store.new_writer()
        await w2.write(os.urandom(5 << 20))
        store.index.active.clear()
        store.close()
        assert isinstance(store.inner, LocalBlobStore)
        store.inner._open_gate()
        again = await make(tmp_path, ChunkingAlgorithm.FIXED_SIZE)

        async def nothing() -> set[str]:
            return set()

        await again.sweep_orphans(nothing)
        assert again.index.totals().chunks == 0
        assert blob_bytes(tmp_path) == 0
        again.close()

    asyncio.run(run())


def test_config_bounds() -> None:
    with pytest.raises(ValueError, match="block_size"):
        DedupConfig(block_size=1024)
    with pytest.raises(ValueError, match="block_size"):
        DedupConfig(block_size=2 << 20)
    assert DedupConfig(algorithm="content-defined").algorithm is ChunkingAlgorithm.ContentDefined  # type: ignore[arg-type]


def test_seed_dedup_example_runs_as_written(tmp_path: Path) -> None:
    from rs3gw.storage import DedupConfig as Config
    from rs3gw.storage import DedupManager

    async def run() -> None:
        config = Config(algorithm=ChunkingAlgorithm.ContentDefined)
        dedup = await DedupManager.new(tmp_path / "dedup", config)
        data = random.Random(2).randbytes(1 << 20)
        await dedup.store_object("bucket", "key", data)
        await dedup.store_object("bucket", "copy", data)
        assert await dedup.get_object("bucket", "key") == data
        stats = await dedup.get_stats()
        assert 0.45 < stats.dedup_ratio < 0.55  # two copies, stored once: half saved
        assert stats.buckets["bucket"].logical_bytes == 2 * len(data)
        await dedup.delete_object("bucket", "key")
        await dedup.delete_object("bucket", "copy")
        assert (await dedup.get_stats()).stored_bytes == 0
        await dedup.close()

    asyncio.run(run())


def test_storage_dedup_section_env_and_unknown_keys(tmp_path: Path) -> None:
    from rs3gw.config import ConfigError, load_settings

    cfg = tmp_path / "rs3gw.toml"
    cfg.write_text(
        '[storage.dedup]\nenabled = true\nblock_size = 65536\nalgorithm = "content-defined"\n'
        "min_object_size = 131072\n"
    )
    env = {"RS3GW_ACCESS_KEY": "k" * 16, "RS3GW_SECRET_KEY": "s" * 32}
    s = load_settings({"data_dir": str(tmp_path)}, env, cfg)
    assert (s.dedup_enabled, s.dedup_block_size, s.dedup_algorithm) == (True, 65536, "content-defined")
    s = load_settings({"data_dir": str(tmp_path)}, {**env, "RS3GW_DEDUP_BLOCK_SIZE": "4096"}, cfg)
    assert s.dedup_block_size == 4096
    cfg.write_text("[storage.dedup]\nblock = 4096\n")
    with pytest.raises(ConfigError, match=r"storage\.dedup\.block: unknown key"):
        load_settings({"data_dir": str(tmp_path)}, env, cfg)
    cfg.write_text("[storage.dedup]\nblock_size = 512\n")
    with pytest.raises(ConfigError, match=r"storage\.dedup\.block_size: must be at least 4096"):
        load_settings({"data_dir": str(tmp_path)}, env, cfg)


def test_dedup_over_compression(tmp_path: Path) -> None:
    """The server's order: dedup above compression above the disk; chunks get compressed."""
    from rs3gw.blobs.compressed import CompressedBlobStore, parse_compression

    async def run() -> None:
        local = LocalBlobStore(tmp_path, fsync=False)
        packed = CompressedBlobStore(local, parse_compression("zstd:3"))
        cfg = DedupConfig(block_size=16384, algorithm=ChunkingAlgorithm.CONTENT_DEFINED, min_object_size=0)
        store = DedupBlobStore(packed, tmp_path / "dedup.db", cfg, fsync=False)
        text = b"".join(b"line %d of a repetitive corpus\n" % (i % 5000) for i in range(60000))
        a, b = await put(store, text), await put(store, text)
        assert await get(store, b) == text
        assert await get(store, a, 12345, 70000) == text[12345 : 12345 + 70000]
        assert blob_bytes(tmp_path) < len(text) / 3
        await store.delete([a, b])
        assert blob_bytes(tmp_path) == 0
        store.close()

    asyncio.run(run())
