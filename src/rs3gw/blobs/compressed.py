"""Transparent compression as a BlobStore wrapper: independently compressed frames plus a frame index,
so a range read decompresses only the frames it touches; incompressible data stays a plain blob.

Format of a framed blob (all integers little-endian)::

    header  16 B   MAGIC (8) | codec (1) | level (1) | reserved (2) | frame_size (4)
    frames         frame i holds decoded bytes [i*frame_size, (i+1)*frame_size), compressed or raw
    index   8 B/frame  physical end offset of frame i; the top bit marks a frame stored raw
    trailer 32 B   logical_size (8) | frame_count (8) | index_offset (8) | TRAILER_MAGIC (8)

Any blob not starting with MAGIC is plain (written before compression existed, with compression
off, or found incompressible). A plain write whose data happens to start with MAGIC is framed with
raw frames instead, so nothing this code writes is ever ambiguous.
"""

from __future__ import annotations

import asyncio
import struct
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import lz4.block
import zstandard

from rs3gw import errors
from rs3gw.blobs.base import NO_OPTIONS, BlobStore, BlobWriter, Tap, WriteOptions, checked_span

MAGIC = b"\x93RS3GW\x1a\x01"  # binary bytes + version: text and common formats never start so
TRAILER_MAGIC = b"RS3GWIX\x01"
HEADER = struct.Struct("<8sBBHI")
TRAILER = struct.Struct("<QQQ8s")
ENTRY = struct.Struct("<Q")
RAW_BIT = 1 << 63
CODEC_IDS = {"none": 0, "zstd": 1, "lz4": 2}
CODEC_NAMES = {v: k for k, v in CODEC_IDS.items()}
DEFAULT_FRAME_SIZE = 256 * 1024
MIN_FRAME_SIZE, MAX_FRAME_SIZE = 4096, 64 * 1024 * 1024
MIN_RATIO = 1.1  # below this, compression is not worth the CPU on every read
BATCH = 1 << 20  # plaintext per worker-thread hop
INLINE = 64 * 1024  # smaller jobs run on the event loop: cheaper than a thread hop
INDEX_BATCH = 1024  # frames whose index entries one read fetches
ZSTD_DEFAULT_LEVEL = 3


@dataclass(frozen=True)
class Compression:
    """A parsed compression setting; ``str()`` gives the canonical spelling stored in config."""

    codec: str  # "none" | "zstd" | "lz4"
    level: int = 0

    def __str__(self) -> str:
        return f"zstd:{self.level}" if self.codec == "zstd" else self.codec


NONE = Compression("none")


def parse_compression(text: str) -> Compression:
    """Parse ``none | lz4 | zstd[:LEVEL]``; raises ValueError with a message naming what is accepted."""
    word = text.strip().lower()
    codec, _, level = word.partition(":")
    if codec in ("none", "lz4") and not level:
        return Compression(codec)
    if codec == "zstd":
        if not level:
            return Compression("zstd", ZSTD_DEFAULT_LEVEL)
        if level.isdigit() and 1 <= int(level) <= 22:
            return Compression("zstd", int(level))
    raise ValueError(f'expected "none", "lz4" or "zstd[:LEVEL]" with LEVEL 1..22, got {text!r}')


# --------------------------------------------------------------------------- frame codecs


class _FrameCodec:
    """Compresses and decompresses single frames; one per writer or read, never shared by threads."""

    def __init__(self, codec: str, level: int = 0) -> None:
        self.codec = codec
        self._cctx = zstandard.ZstdCompressor(level=level) if codec == "zstd" else None
        self._dctx = zstandard.ZstdDecompressor() if codec == "zstd" else None

    def compress(self, data: bytes | memoryview) -> bytes:
        if self._cctx is not None:
            return self._cctx.compress(data)
        out: bytes = lz4.block.compress(data, store_size=False)
        return out

    def decompress(self, data: bytes | memoryview, size: int) -> bytes:
        try:
            if self._dctx is not None:
                out = self._dctx.decompress(data, max_output_size=size)
            else:
                out = lz4.block.decompress(data, uncompressed_size=size)
        except (zstandard.ZstdError, lz4.block.LZ4BlockError):
            raise errors.InternalError("object data is corrupt") from None
        if len(out) != size:
            raise errors.InternalError("object data is corrupt")
        return out


def _worth_it(raw: int, packed: int) -> bool:
    return packed * MIN_RATIO <= raw


# --------------------------------------------------------------------------- store


@dataclass(frozen=True)
class FrameInfo:
    """What a framed blob's header and trailer say; cached per blob id (blobs are immutable)."""

    codec: str
    frame_size: int
    logical_size: int
    frame_count: int
    index_offset: int


class CompressedBlobStore(BlobStore):
    """Wraps any BlobStore; reads both framed and plain blobs whatever ``default`` is now, so
    compression can be switched on and off between restarts over the same data."""

    def __init__(
        self,
        inner: BlobStore,
        default: Compression = NONE,
        frame_size: int = DEFAULT_FRAME_SIZE,
        cache_entries: int = 4096,
    ) -> None:
        if not MIN_FRAME_SIZE <= frame_size <= MAX_FRAME_SIZE:
            raise ValueError(f"frame size must be {MIN_FRAME_SIZE}..{MAX_FRAME_SIZE}")
        self.inner = inner
        self.default = default
        self.frame_size = frame_size
        self._cache: OrderedDict[str, FrameInfo | None] = OrderedDict()
        self._cache_entries = cache_entries
        # Told (codec, logical bytes, stored bytes) after each blob is written: metrics hook.
        self.on_written: Callable[[str, int, int], None] | None = None

    def compression_for(self, options: WriteOptions) -> Compression:
        if options.compression is None:
            return self.default
        try:
            return parse_compression(options.compression)
        except ValueError:  # validated when stored; an unreadable value must not fail writes
            return self.default

    def new_writer(self, options: WriteOptions = NO_OPTIONS) -> BlobWriter:
        inner = self.inner.new_writer(options)
        writer = _CompressingWriter(inner, self.compression_for(options), self.frame_size)
        writer.on_written = self.on_written
        return writer

    async def delete(self, blob_ids: Sequence[str]) -> None:
        for b in blob_ids:
            self._cache.pop(b, None)
        await self.inner.delete(blob_ids)

    async def exists(self, blob_id: str) -> bool:
        return await self.inner.exists(blob_id)

    async def list_ids(self) -> AsyncIterator[str]:
        async for b in self.inner.list_ids():
            yield b

    async def sweep_orphans(self, referenced: Callable[[], Awaitable[set[str]]]) -> int:
        return await self.inner.sweep_orphans(referenced)  # same ids below: nothing to translate

    async def size(self, blob_id: str) -> int:
        info = await self.info(blob_id)
        return await self.inner.size(blob_id) if info is None else info.logical_size

    async def is_plain(self, blob_id: str) -> bool:
        """True when this layer did not frame the blob. It reads through the layers below, so an
        encrypted blob counts as plain here: zero-copy asks each layer instead (blobs.plainfile)."""
        return await self.info(blob_id) is None

    async def info(self, blob_id: str) -> FrameInfo | None:
        """The frame layout of a framed blob, None for a plain one."""
        if blob_id in self._cache:
            self._cache.move_to_end(blob_id)
            return self._cache[blob_id]
        info = await self._probe(blob_id)
        self._cache[blob_id] = info
        if len(self._cache) > self._cache_entries:
            self._cache.popitem(last=False)
        return info

    async def _probe(self, blob_id: str) -> FrameInfo | None:
        physical = await self.inner.size(blob_id)
        if physical < HEADER.size + TRAILER.size:
            return None
        head = await self._read_exact(blob_id, 0, HEADER.size)
        magic, codec_id, _level, _, frame_size = HEADER.unpack(head)
        if magic != MAGIC:
            return None
        tail = await self._read_exact(blob_id, physical - TRAILER.size, TRAILER.size)
        logical, count, index_offset, tmagic = TRAILER.unpack(tail)
        ok = (
            tmagic == TRAILER_MAGIC
            and codec_id in CODEC_NAMES
            and MIN_FRAME_SIZE <= frame_size <= MAX_FRAME_SIZE
            and count == -(-logical // frame_size)
            and index_offset + count * ENTRY.size + TRAILER.size == physical
        )
        if not ok:
            raise errors.InternalError("object data is corrupt")
        return FrameInfo(CODEC_NAMES[codec_id], frame_size, logical, count, index_offset)

    async def _read_exact(self, blob_id: str, offset: int, length: int) -> bytes:
        parts = [c async for c in self.inner.read(blob_id, offset, length)]
        data = b"".join(parts)
        if len(data) != length:
            raise errors.InternalError("object data is truncated")
        return data

    async def read(self, blob_id: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        info = await self.info(blob_id)
        if info is None:
            async for chunk in self.inner.read(blob_id, offset, length):
                yield chunk
            return
        length = checked_span(offset, length, info.logical_size)
        if length == 0:
            return
        fs = info.frame_size
        first, last = offset // fs, (offset + length - 1) // fs
        codec = _FrameCodec(info.codec)
        for a in range(first, last + 1, INDEX_BATCH):
            b = min(last + 1, a + INDEX_BATCH)
            async for piece in self._read_frames(blob_id, info, codec, a, b):
                f, data = piece
                lo = max(offset - f * fs, 0)
                hi = min(offset + length - f * fs, len(data))
                yield data[lo:hi] if (lo, hi) != (0, len(data)) else data

    async def _read_frames(
        self, blob_id: str, info: FrameInfo, codec: _FrameCodec, a: int, b: int
    ) -> AsyncIterator[tuple[int, bytes]]:
        """Decoded frames ``a..b-1``, decompressed in groups of about BATCH bytes per thread hop."""
        lo_entry = a - 1 if a else 0
        raw_index = await self._read_exact(
            blob_id, info.index_offset + lo_entry * ENTRY.size, (b - lo_entry) * ENTRY.size
        )
        ends = [e for (e,) in ENTRY.iter_unpack(raw_index)]
        start = (ends.pop(0) & ~RAW_BIT) if a else HEADER.size
        spans: list[tuple[int, int, bool]] = []  # (frame, stored length, raw)
        pos = start
        for i, e in enumerate(ends):
            end = e & ~RAW_BIT
            if end < pos:
                raise errors.InternalError("object data is corrupt")
            spans.append((a + i, end - pos, bool(e & RAW_BIT)))
            pos = end
        buf = bytearray()
        group: list[tuple[int, bytes, bool]] = []
        todo = iter(spans)
        nxt = next(todo, None)
        async for chunk in self.inner.read(blob_id, start, pos - start):
            buf += chunk
            while nxt is not None and len(buf) >= nxt[1]:
                group.append((nxt[0], bytes(buf[: nxt[1]]), nxt[2]))
                del buf[: nxt[1]]
                nxt = next(todo, None)
                if len(group) * info.frame_size >= BATCH:
                    for item in await _decode(codec, info, group):
                        yield item
                    group = []
        if nxt is not None:
            raise errors.InternalError("object data is truncated")
        for item in await _decode(codec, info, group):
            yield item


async def _decode(
    codec: _FrameCodec, info: FrameInfo, group: list[tuple[int, bytes, bool]]
) -> list[tuple[int, bytes]]:
    def size_of(f: int) -> int:
        return min(info.frame_size, info.logical_size - f * info.frame_size)

    def run() -> list[tuple[int, bytes]]:
        return [(f, d if raw else codec.decompress(d, size_of(f))) for f, d, raw in group]

    work = sum(size_of(f) for f, _, raw in group if not raw)
    return run() if work <= INLINE else await asyncio.to_thread(run)


# --------------------------------------------------------------------------- writer


class _CompressingWriter(BlobWriter):
    """Buffers until the first frame is full (or the blob ends) to decide: plain or framed.

    Taps see the plaintext exactly once: in plain mode the inner writer runs them, in framed mode
    they run on the same worker thread as the compression of the batch they belong to.
    """

    def __init__(self, inner: BlobWriter, comp: Compression, frame_size: int) -> None:
        self.inner = inner
        self.blob_id = inner.blob_id
        self.comp = comp
        self.fs = frame_size
        self.codec = _FrameCodec(comp.codec, comp.level) if comp.codec != "none" else None
        self.mode = "undecided"  # -> "plain" | "framed"
        self.buf = bytearray()
        self.size = 0
        self.physical = 0  # bytes handed to the inner writer
        self.ends: list[int] = []
        self.skip = 0  # frames left to store raw without trying, after incompressible ones
        self.misses = 0
        self.first: bytes | bytearray | None = None  # frame 0 compressed while deciding, not compressed twice
        self.on_written: Callable[[str, int, int], None] | None = None

    async def write(self, data: bytes | bytearray | memoryview, taps: Sequence[Tap] = ()) -> None:
        self.size += len(data)
        if self.mode == "plain":
            await self.inner.write(data, taps)
            return
        self.buf += data
        if self.mode == "undecided":
            if len(self.buf) >= (self.fs if self.codec is not None else len(MAGIC)):
                await self._decide(taps, final=False)
        elif len(self.buf) >= BATCH:
            await self._frames(taps, final=False)

    async def close(self, taps: Sequence[Tap] = ()) -> int:
        if self.mode == "undecided":
            await self._decide(taps, final=True)
        if self.mode == "framed":
            await self._frames(taps, final=True)
            index = b"".join(ENTRY.pack(e) for e in self.ends)
            trailer = TRAILER.pack(self.size, len(self.ends), self.physical, TRAILER_MAGIC)
            await self.inner.write(index + trailer)
            await self.inner.close()
            stored = self.physical + len(index) + len(trailer)
        else:
            await self.inner.close(taps)
            stored = self.size
        if self.on_written is not None:
            self.on_written(self.comp.codec, self.size, stored)
        return self.size

    async def abort(self) -> None:
        await self.inner.abort()

    async def _decide(self, taps: Sequence[Tap], final: bool) -> None:
        escape = bytes(self.buf[: len(MAGIC)]) == MAGIC
        if self.codec is None and not escape:
            self.mode = "plain"
            buf, self.buf = self.buf, bytearray()
            await self.inner.write(buf, taps)
            return
        if self.codec is not None and not escape:
            sample = bytes(self.buf[: self.fs])
            packed = await _maybe_thread(len(sample), self.codec.compress, sample)
            self.first = packed if len(sample) == self.fs or final else None
            if not _worth_it(len(sample), len(packed) + HEADER.size + TRAILER.size + ENTRY.size):
                self.mode = "plain"
                buf, self.buf = self.buf, bytearray()
                await self.inner.write(buf, taps)
                return
        self.mode = "framed"
        codec_id = CODEC_IDS[self.comp.codec]
        await self.inner.write(HEADER.pack(MAGIC, codec_id, self.comp.level, 0, self.fs))
        self.physical = HEADER.size
        await self._frames(taps, final)

    async def _frames(self, taps: Sequence[Tap], final: bool) -> None:
        """Turn whole frames of the buffer (all of it when ``final``) into stored frames."""
        n = len(self.buf) if final else len(self.buf) - len(self.buf) % self.fs
        if n == 0:
            return
        if n == len(self.buf):
            plain, self.buf = self.buf, bytearray()
        else:  # a copy: the buffer cannot be resized while views of it are alive on a thread
            plain = self.buf[:n]
            del self.buf[:n]
        out = await _maybe_thread(n, self._pack, memoryview(plain), taps)
        await self.inner.write(out)

    def _pack(self, plain: memoryview, taps: Sequence[Tap]) -> bytearray:
        for t in taps:
            t.update(plain)
        out = bytearray()
        for i in range(0, len(plain), self.fs):
            frame = plain[i : i + self.fs]
            packed = self._try(frame)
            stored = frame if packed is None else packed
            out += stored
            self.physical += len(stored)
            self.ends.append(self.physical | (RAW_BIT if packed is None else 0))
        return out

    def _try(self, frame: memoryview) -> bytes | bytearray | None:
        """Compressed frame, or None to store it raw; backs off after incompressible frames."""
        if self.codec is None:
            return None
        if self.skip:
            self.skip -= 1
            return None
        packed, self.first = self.first or self.codec.compress(frame), None
        if _worth_it(len(frame), len(packed)):
            self.misses = 0
            return packed
        self.misses += 1
        self.skip = min(2**self.misses, 64) - 1
        return None


async def _maybe_thread(size: int, fn: object, *args: object) -> bytearray | bytes:
    if size <= INLINE:
        return fn(*args)  # type: ignore[operator,no-any-return]
    return await asyncio.to_thread(fn, *args)  # type: ignore[arg-type]
