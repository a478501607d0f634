"""Block-level deduplication as a BlobStore wrapper: blobs above a size threshold become a manifest
of SHA-256-addressed chunks kept once in the inner store, with refcounts in a chunk index
(``dedup.db`` beside SQLite metadata, ``dedup_*`` tables beside PostgreSQL metadata: chunk_index.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import struct
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from pyfastcdc import FastCDC

from rs3gw import errors
from rs3gw.blobs.base import NO_OPTIONS, BlobStore, BlobWriter, Tap, WriteOptions
from rs3gw.blobs.binding import dedup_chunk_binding
from rs3gw.blobs.chunk_index import ChunkIndex, IndexTotals
from rs3gw.blobs.chunk_index_sqlite import SqliteChunkIndex

__all__ = [
    "ChunkIndex",
    "ChunkingAlgorithm",
    "DedupBlobStore",
    "DedupConfig",
    "IndexTotals",
    "SqliteChunkIndex",
]

MAGIC = b"RS3GWDD1"
HEADER = struct.Struct(">8sQ")  # magic, format version
RECORD = struct.Struct(">Q32s")  # end offset of the chunk in the blob, its SHA-256
MIN_BLOCK, MAX_BLOCK = 4096, 1 << 20
MAX_MIN_OBJECT_SIZE = 64 << 20  # the undecided prefix is buffered, so this bounds memory
RECORD_BATCH = 256
PARALLEL_CHUNKS = 16


class ChunkingAlgorithm(StrEnum):
    FIXED_SIZE = "fixed-size"
    CONTENT_DEFINED = "content-defined"
    # The seed's Rust spellings, as aliases.
    FixedSize = "fixed-size"
    ContentDefined = "content-defined"


@dataclass(frozen=True)
class DedupConfig:
    """The seed's ``DedupConfig``; ``block_size`` is the fixed chunk size or the CDC average."""

    enabled: bool = True
    block_size: int = 65536
    algorithm: ChunkingAlgorithm = ChunkingAlgorithm.FIXED_SIZE
    min_object_size: int = 131072

    def __post_init__(self) -> None:
        if not MIN_BLOCK <= self.block_size <= MAX_BLOCK:
            raise ValueError(f"block_size must be within {MIN_BLOCK}..{MAX_BLOCK}, got {self.block_size}")
        if not 0 <= self.min_object_size <= MAX_MIN_OBJECT_SIZE:
            raise ValueError(f"min_object_size must be within 0..{MAX_MIN_OBJECT_SIZE}")
        object.__setattr__(self, "algorithm", ChunkingAlgorithm(self.algorithm))


# -- chunking ------------------------------------------------------------------------------------
class _Chunker:
    """Cuts a growing buffer; without ``final`` the tail is held back (it may not be a true cut)."""

    def __init__(self, cfg: DedupConfig) -> None:
        self.bs = cfg.block_size
        self.cdc = FastCDC(cfg.block_size) if cfg.algorithm == ChunkingAlgorithm.CONTENT_DEFINED else None
        # A batch holds several maximal chunks so each pass makes progress.
        self.batch = max(4 << 20, 2 * (self.cdc.max_size if self.cdc else self.bs))

    def cut(self, buf: bytes | bytearray | memoryview, final: bool) -> list[int]:
        if self.cdc is None:
            sizes = [self.bs] * (len(buf) // self.bs)
            rest = len(buf) % self.bs
            return [*sizes, rest] if final and rest else sizes
        sizes = [c.length for c in self.cdc.cut_buf(buf)]
        return sizes if final else sizes[:-1]


async def _read_exact(inner: BlobStore, blob_id: str, offset: int, length: int) -> bytes:
    out = b"".join([c async for c in inner.read(blob_id, offset, length)])
    if len(out) != length:
        raise errors.InternalError("dedup manifest is truncated")
    return out


class DedupBlobStore(BlobStore):
    """Wraps any BlobStore; blobs written before (or below the threshold) pass through unchanged."""

    def __init__(
        self,
        inner: BlobStore,
        index: ChunkIndex | Path | Callable[[], ChunkIndex],
        config: DedupConfig,
        fsync: bool = True,
    ) -> None:
        """``index``: the chunk index, a factory of one, or the path of a SQLite ``dedup.db``."""
        self.inner = inner
        self.config = config
        if isinstance(index, Path):
            self.index: ChunkIndex = SqliteChunkIndex(index, fsync)
        elif callable(index):
            self.index = index()
        else:
            self.index = index
        self.verify_blocks = False  # [storage] verify_on_read: hash every chunk served, Range GETs too

    def new_writer(self, options: WriteOptions = NO_OPTIONS) -> BlobWriter:
        return _DedupWriter(self, options)

    async def size(self, blob_id: str) -> int:
        info = await asyncio.to_thread(self.index.manifest, blob_id)
        return info[0] if info is not None else await self.inner.size(blob_id)

    async def sweep_orphans(self, referenced: Callable[[], Awaitable[set[str]]]) -> int:
        """Recover from a crash: roll back dead writers, drain the chunk queue, then let the inner
        store sweep while keeping every chunk; orphan manifests go through ``delete`` so their
        chunk references are released too. Only when the inner store says it is alone (it asks)."""
        await self.gc(at_start=True)
        outer: set[str] | None = None

        async def keep() -> set[str]:
            nonlocal outer
            outer = await referenced()
            return outer | await asyncio.to_thread(self.index.protected_ids)

        n = await self.inner.sweep_orphans(keep)
        if outer is None:
            return n
        live = outer
        orphans = [b for b in await asyncio.to_thread(self.index.manifest_ids) if b not in live]
        await self.delete(orphans)
        return n + len(orphans)

    async def read(self, blob_id: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        info = await asyncio.to_thread(self.index.manifest, blob_id)
        if info is None:
            async for c in self.inner.read(blob_id, offset, length):
                yield c
            return
        size, count, _ = info
        end = size if length is None else min(size, offset + length)
        if offset >= end:
            return
        head = await _read_exact(self.inner, blob_id, 0, HEADER.size)
        if HEADER.unpack(head)[0] != MAGIC:
            raise errors.InternalError("dedup manifest header is damaged")
        i = await self._find(blob_id, count, offset)
        start = 0 if i == 0 else RECORD.unpack(await self._record_bytes(blob_id, i - 1, 1))[0]
        while start < end and i < count:
            n = min(RECORD_BATCH, count - i)
            recs = [
                RECORD.unpack_from(b, k * RECORD.size)
                for b in [await self._record_bytes(blob_id, i, n)]
                for k in range(n)
            ]
            ids = await asyncio.to_thread(self.index.blob_ids, [h for _, h in recs])
            for stop, h in recs:
                if start >= end:
                    break
                lo, hi = max(offset, start), min(end, stop)
                if h not in ids:
                    raise errors.InternalError("deduplicated chunk is missing")
                if self.verify_blocks:
                    yield await self._verified_chunk(ids[h], h, lo - start, hi - lo)
                else:
                    async for c in self.inner.read(ids[h], lo - start, hi - lo):
                        yield c
                start = stop
            i += n

    async def _verified_chunk(self, chunk_blob: str, h: bytes, lo: int, n: int) -> bytes:
        """The whole chunk is read and hashed (at most the 1 MiB block size), so even a Range GET
        never serves bytes whose block fails its SHA-256."""
        data = b"".join([c async for c in self.inner.read(chunk_blob)])
        digest = await asyncio.to_thread(lambda: hashlib.sha256(data).digest())
        if digest != h:
            raise errors.InternalError(f"deduplicated chunk {h.hex()} does not match its SHA-256")
        return data[lo : lo + n]

    async def chunk_intact(self, h: bytes) -> bool:
        """Whether the chunk ``h`` is stored and reads back with that SHA-256 (scrub repair)."""
        blob = (await asyncio.to_thread(self.index.blob_ids, [h])).get(h)
        if blob is None:
            return False
        try:
            data = b"".join([c async for c in self.inner.read(blob)])
        except Exception:  # an undecodable frame, a missing file: damaged
            return False
        return await asyncio.to_thread(lambda: hashlib.sha256(data).digest()) == h

    async def replace_chunk(self, h: bytes, data: bytes, options: WriteOptions = NO_OPTIONS) -> bool:
        """Rewrite a damaged chunk from a good copy of its bytes (their SHA-256 must be ``h``): a new
        inner blob, made durable, then swapped in by one index transaction, so every manifest that
        shares the chunk reads the good bytes. False when the chunk is not in the index."""
        if hashlib.sha256(data).digest() != h:
            raise ValueError("replacement bytes do not match the chunk's SHA-256")
        old = (await asyncio.to_thread(self.index.blob_ids, [h])).get(h)
        if old is None:
            return False
        w = self.inner.new_writer(replace(options, binding=dedup_chunk_binding(h)))
        try:
            await w.write(data)
            await w.close()
        except BaseException:
            await w.abort()
            raise
        if not await asyncio.to_thread(self.index.swap_chunk, h, old, w.blob_id):
            await self.inner.delete([w.blob_id])
            return False
        await self._discard([old])
        return True

    async def _record_bytes(self, blob_id: str, i: int, n: int) -> bytes:
        return await _read_exact(self.inner, blob_id, HEADER.size + i * RECORD.size, n * RECORD.size)

    async def _find(self, blob_id: str, count: int, offset: int) -> int:
        """Binary search over fixed-size records: the first chunk that ends after ``offset``."""
        lo, hi = 0, count
        while lo < hi:
            mid = (lo + hi) // 2
            if RECORD.unpack(await self._record_bytes(blob_id, mid, 1))[0] <= offset:
                lo = mid + 1
            else:
                hi = mid
        return lo

    async def manifest_hashes(self, blob_id: str, start: int = 0) -> AsyncIterator[list[tuple[int, bytes]]]:
        """Batches of (end offset, hash) records; streamed so huge manifests stay out of memory."""
        info = await asyncio.to_thread(self.index.manifest, blob_id)
        if info is None:
            return
        i, count = start, info[1]
        while i < count:
            n = min(RECORD_BATCH * 16, count - i)
            raw = await self._record_bytes(blob_id, i, n)
            yield [RECORD.unpack_from(raw, k * RECORD.size) for k in range(n)]
            i += n

    async def delete(self, blob_ids: Sequence[str]) -> None:
        plain: list[str] = []
        for b in blob_ids:
            info = await asyncio.to_thread(self.index.manifest, b)
            if info is None:
                plain.append(b)
                continue
            if not await asyncio.to_thread(self.index.tracks_refs, b):
                # A manifest from before the index kept its refs: its bytes are all there is.
                pos = info[2]
                async for recs in self.manifest_hashes(b, info[2]):
                    freed = await asyncio.to_thread(self.index.release, b, pos, [h for _, h in recs])
                    pos += len(recs)
                    await self._discard(freed)
            # A tracked manifest's refs go here, from the index, in one transaction: its blob may
            # be damaged, truncated or gone (a repair frees exactly such manifests).
            freed = await asyncio.to_thread(self.index.drop_manifest, b)
            await self._discard([*freed, b])
        await self.inner.delete(plain)

    async def _discard(self, blob_ids: Sequence[str]) -> None:
        """Delete blobs already queued in chunk_gc; a crash before gc_done retries them later."""
        if blob_ids:
            await self.inner.delete(blob_ids)
            await asyncio.to_thread(self.index.gc_done, blob_ids)

    async def exists(self, blob_id: str) -> bool:
        return await self.inner.exists(blob_id)

    async def list_ids(self) -> AsyncIterator[str]:
        """The outer view: inner blobs that are not chunks (manifests and pass-through blobs)."""
        chunk_ids = await asyncio.to_thread(self.chunk_blob_ids)
        async for b in self.inner.list_ids():
            if b not in chunk_ids:
                yield b

    def chunk_blob_ids(self) -> set[str]:
        return self.index.chunk_blob_ids()

    async def gc(self, at_start: bool = False) -> int:
        """Roll back writers that died (crash) and delete queued chunk blobs; returns blobs freed."""
        n = 0
        for w in await asyncio.to_thread(self.index.stale_writers, at_start):
            await asyncio.to_thread(self.index.end_writer, w)
        while pending := await asyncio.to_thread(self.index.pending_gc):
            await self._discard(pending)
            n += len(pending)
            if len(pending) < 1000:
                break
        return n

    def close(self) -> None:
        self.index.close()


class _DedupWriter(BlobWriter):
    def __init__(self, store: DedupBlobStore, options: WriteOptions) -> None:
        self.store = store
        self.options = options
        self.index = store.index
        self.blob_id = ""
        self.raw: BlobWriter | None = None
        self.manifest: BlobWriter | None = None
        self.writer = ""
        self.chunker = _Chunker(store.config)
        self.buf = bytearray()
        self.size = 0
        self.count = 0
        self.taps: Sequence[Tap] = ()
        self.done = False
        # SSE-C blobs are never shared: only their own customer's key opens them.
        self.threshold = store.config.min_object_size if store.config.enabled and options.shareable else -1
        # One inner writer: it becomes the manifest, or carries the bytes raw for small blobs.
        self.manifest = store.inner.new_writer(options)
        self.blob_id = self.manifest.blob_id
        if self.threshold < 0:
            self.raw, self.manifest = self.manifest, None

    async def write(self, data: bytes | bytearray | memoryview, taps: Sequence[Tap] = ()) -> None:
        if self.raw is not None:
            await self.raw.write(data, taps)
            return
        self.buf += data
        self.size += len(data)
        self.taps = taps
        if not self.writer and self.size >= self.threshold and self.size:
            await self._start_dedup()
        if self.writer and len(self.buf) >= self.chunker.batch:
            await self._flush(final=False)

    async def _start_dedup(self) -> None:
        assert self.manifest is not None
        self.writer = secrets.token_hex(16)
        await asyncio.to_thread(self.index.begin_writer, self.writer)
        await asyncio.to_thread(self.index.add_intents, self.writer, [self.manifest.blob_id])
        await self.manifest.write(HEADER.pack(MAGIC, 1))

    def _cut(self, final: bool) -> list[tuple[bytes, int, int]]:
        """On a worker thread: taps, cut points and SHA-256 of each chunk (hashlib drops the GIL)."""
        sizes = self.chunker.cut(self.buf, final)
        used = sum(sizes)
        view = memoryview(self.buf)[:used]
        for t in self.taps:
            t.update(view)
        out, pos = [], 0
        for s in sizes:
            out.append((hashlib.sha256(view[pos : pos + s]).digest(), pos, s))
            pos += s
        view.release()
        return out

    async def _flush(self, final: bool) -> None:
        cuts = await asyncio.to_thread(self._cut, final)
        counts = Counter(h for h, _, _ in cuts)
        missing = set(await asyncio.to_thread(self.index.take_refs, self.writer, counts))
        new: dict[bytes, BlobWriter] = {}
        for h, _, _ in cuts:
            if h in missing and h not in new:
                # Shared by every object holding these bytes: bound to their hash, not to this key.
                new[h] = self.store.inner.new_writer(replace(self.options, binding=dedup_chunk_binding(h)))
        if new:
            await asyncio.to_thread(self.index.add_intents, self.writer, [w.blob_id for w in new.values()])
        jobs = [(h, w, pos, s) for h, pos, s in cuts if (w := new.pop(h, None)) is not None]
        for i in range(0, len(jobs), PARALLEL_CHUNKS):
            group = jobs[i : i + PARALLEL_CHUNKS]
            # Several chunk files in flight: their fsyncs overlap instead of queueing one by one.
            done = await asyncio.gather(
                *(self._put_chunk(w, pos, s) for _, w, pos, s in group), return_exceptions=True
            )
            for err in done:
                if isinstance(err, BaseException):
                    raise err
        published = [(h, w.blob_id, s, counts[h]) for h, w, _, s in jobs]
        if published:
            dupes = await asyncio.to_thread(self.index.publish, self.writer, published)
            await self.store.inner.delete(dupes)
        records = bytearray()
        end = self.size - len(self.buf)
        for h, _, s in cuts:
            end += s
            records += RECORD.pack(end, h)
        self.count += len(cuts)
        del self.buf[: sum(s for _, _, s in cuts)]
        assert self.manifest is not None
        await self.manifest.write(records)

    async def _put_chunk(self, w: BlobWriter, pos: int, size: int) -> None:
        try:
            await w.write(bytes(self.buf[pos : pos + size]))
            await w.close()
        except BaseException:
            await w.abort()
            raise

    async def close(self, taps: Sequence[Tap] = ()) -> int:
        self.taps = taps or self.taps
        try:
            if self.raw is None and not self.writer:
                self.raw, self.manifest = self.manifest, None
                assert self.raw is not None
                await self.raw.write(self.buf, self.taps)
                self.buf = bytearray()
            if self.raw is not None:
                size = await self.raw.close(taps)
                self.done = True
                return size
            await self._flush(final=True)
            assert self.manifest is not None
            await self.manifest.close()
            await asyncio.to_thread(
                self.index.commit_manifest, self.writer, self.blob_id, self.size, self.count
            )
        except BaseException:
            await self.abort()
            raise
        self.done = True
        return self.size

    async def abort(self) -> None:
        if self.done:
            return
        self.done = True
        for w in (self.raw, self.manifest):
            if w is not None:
                await w.abort()
        if self.writer:
            freed = await asyncio.to_thread(self.index.end_writer, self.writer)
            await self.store._discard(freed)
