"""Encryption at rest as a BlobStore wrapper (below compression, right above the backend).

Envelope encryption: each encrypted blob has a random 256-bit data key, wrapped by a KEK from a
``KeyProvider`` (or, for SSE-C, by a key derived from the customer's key, which is never stored).
The body is sealed in fixed-size chunks so a range read opens only the chunks it touches.

Format of an encrypted blob (integers little-endian unless noted); the version byte decides
the header size and the AAD scheme, so blobs of every version below stay readable::

    prefix  24 B   MAGIC (8) | version (1) | cipher (1) | reserved (2) | chunk_size (4) | nonce prefix (4) | 0 (4)
    slot A 224 B   seq (4) | ref_len (1) | ref (128) | wrapped_len (1) | wrapped (84) | 0 (2) | crc32 (4)
    slot B 224 B   the same; the valid slot with the higher seq is the live one
    binding 32 B   (version 2 only) SHA-256 of the blob's binding (``blobs.binding``)
    chunks         chunk i: AEAD(data key, nonce = prefix | i (8, big-endian), plaintext chunk i,
                   AAD = prefix bytes | binding (v2) | blob id | i (8) | final flag (1)) = ciphertext | tag (16)

Version 2 (every new blob) binds each chunk to what the bytes are: bucket, key and version id for
an object; bucket, key, upload id and part number for a multipart part; the content hash for a
shared dedup chunk; plus the blob id and the chunk's index, with the last chunk sealed as final.
So swapping, reordering or truncating chunks, moving a blob's file to another blob's path, or
pointing an object's metadata at another object's blob fails authentication (an integrity
error, 500) instead of returning wrong bytes. The engine tells a read which binding each blob
must carry (``binding.EXPECTED``); a read without that knowledge (scrub, a dedup chunk) still
authenticates every chunk against the binding in the header, which itself cannot be changed
without breaking the data key's wrap and every chunk tag. Version 1 blobs (older releases) bind
chunks to the blob id and position only, and read as before: no data migration.

The data key's wrap is bound to the blob id, and in version 2 to the binding too. Key rotation
writes the other slot in place (``rewrap``): a torn write fails its CRC and the old slot stays
live, so a crash at any point leaves a readable blob.

Blobs not starting with MAGIC are plain; an unencrypted write whose data happens to start with
MAGIC is encrypted under the SSE-S3 key instead, so nothing is ever ambiguous.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import hashlib
import os
import secrets
import struct
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rs3gw import errors
from rs3gw.blobs import binding as bindings
from rs3gw.blobs.base import NO_OPTIONS, BlobStore, BlobWriter, Encryption, Tap, WriteOptions, checked_span
from rs3gw.blobs.keys import SSE_S3_KEY, KeyError_, KeyProvider, unwrap_with, wrap_with

MAGIC = b"\x93RS3GWE\x01"
VERSION = 2  # what new blobs are written as; 1 is still read
VERSIONS = (1, 2)
PREFIX = struct.Struct("<8sBBHI4s4x")
SLOT = struct.Struct("<IB128sB84s2x")
CRC = struct.Struct("<I")
SLOT_SIZE = SLOT.size + CRC.size
BINDING_SIZE = 32
HEADER_SIZE_V1 = PREFIX.size + 2 * SLOT_SIZE
HEADER_SIZE = HEADER_SIZE_V1 + BINDING_SIZE  # version 2; the most any header takes
TAG = 16
CIPHERS = {"aes-256-gcm": 1, "chacha20-poly1305": 2}
CIPHER_NAMES = {v: k for k, v in CIPHERS.items()}
DEFAULT_CHUNK = 64 * 1024
_V = TypeVar("_V")
CUSTOMER_REF = "sse-c"  # the slot's ref for data keys wrapped by a customer's key
BATCH = 1 << 20  # plaintext per worker-thread hop
INLINE = 64 * 1024

#: The SSE-C key of the read in progress: reads go through dedup and compression layers that have
#: no place for it, so the engine sets it around each step of a body it has authorized.
CUSTOMER_KEY: contextvars.ContextVar[bytes | None] = contextvars.ContextVar("rs3gw_sse_c_key", default=None)


def _aead(cipher: int, key: bytes) -> AESGCM | ChaCha20Poly1305:
    return ChaCha20Poly1305(key) if cipher == CIPHERS["chacha20-poly1305"] else AESGCM(key)


def customer_kek(customer_key: bytes) -> bytes:
    """The KEK an SSE-C key stands for (HKDF, so the raw customer key never touches a blob)."""
    return HKDF(hashes.SHA256(), 32, salt=None, info=b"rs3gw sse-c kek v1").derive(customer_key)


def _wrap_aad(blob_id: str, cipher: int, binding: bytes) -> bytes:
    """``binding`` is the header's digest (b"" in version 1, which bound the wrap to the blob id only)."""
    return b"rs3gw-dek\x00" + blob_id.encode() + bytes([cipher]) + binding


def _corrupt() -> errors.S3Error:
    return errors.InternalError("object data failed its integrity check")


@dataclass(frozen=True)
class Slot:
    seq: int
    ref: str
    wrapped: bytes

    def pack(self) -> bytes:
        body = SLOT.pack(self.seq, len(self.ref), self.ref.encode(), len(self.wrapped), self.wrapped)
        return body + CRC.pack(zlib.crc32(body))


def _parse_slot(raw: bytes) -> Slot | None:
    body, (crc,) = raw[: SLOT.size], CRC.unpack(raw[SLOT.size :])
    if zlib.crc32(body) != crc:
        return None
    seq, rlen, ref, wlen, wrapped = SLOT.unpack(body)
    if seq == 0 or rlen > 128 or wlen > 84:
        return None
    return Slot(seq, ref[:rlen].decode(errors="replace"), wrapped[:wlen])


@dataclass(frozen=True)
class Header:
    prefix: bytes  # the 24 prefix bytes, part of every chunk's AAD
    cipher: int
    chunk_size: int
    nonce_prefix: bytes
    slots: tuple[Slot | None, Slot | None]
    version: int = VERSION
    binding: bytes = b""  # version 2: SHA-256 of the blob's binding, part of every chunk's AAD

    @property
    def size(self) -> int:
        """Bytes before the first chunk."""
        return HEADER_SIZE_V1 + len(self.binding)

    @property
    def live(self) -> tuple[int, Slot]:
        """(index, slot) of the live slot."""
        best = max(((i, s) for i, s in enumerate(self.slots) if s is not None), key=lambda t: t[1].seq)
        return best


def parse_header(raw: bytes) -> Header | None:
    """None for a plain blob; raises when the blob claims to be encrypted but its header is bad."""
    if len(raw) < len(MAGIC) or raw[: len(MAGIC)] != MAGIC:
        return None
    if len(raw) < HEADER_SIZE_V1:
        raise _corrupt()
    _magic, version, cipher, _, chunk_size, nonce_prefix = PREFIX.unpack(raw[: PREFIX.size])
    if version not in VERSIONS or cipher not in CIPHER_NAMES or not 4096 <= chunk_size <= 16 << 20:
        raise _corrupt()
    if version >= 2 and len(raw) < HEADER_SIZE:
        raise _corrupt()
    a = _parse_slot(raw[PREFIX.size : PREFIX.size + SLOT_SIZE])
    b = _parse_slot(raw[PREFIX.size + SLOT_SIZE : HEADER_SIZE_V1])
    if a is None and b is None:
        raise _corrupt()
    binding = raw[HEADER_SIZE_V1:HEADER_SIZE] if version >= 2 else b""
    return Header(raw[: PREFIX.size], cipher, chunk_size, nonce_prefix, (a, b), version, binding)


@dataclass(frozen=True)
class BlobInfo:
    header: Header
    plain_size: int
    chunks: int


def plain_size(physical: int, chunk_size: int, header_size: int = HEADER_SIZE) -> tuple[int, int]:
    """(plaintext size, chunk count) from the stored size; raises when no chunking fits."""
    body = physical - header_size
    stored = chunk_size + TAG
    n = max(1, -(-body // stored))
    last = body - (n - 1) * stored
    if body < TAG or last < TAG:
        raise _corrupt()
    return body - n * TAG, n


class EncryptedBlobStore(BlobStore):
    """Wraps any BlobStore (the local one: ``rewrap`` needs its files); reads plain and encrypted
    blobs alike, so encryption can be used per object and switched on over existing data."""

    def __init__(
        self,
        inner: BlobStore,
        keys: KeyProvider,
        cipher: str = "aes-256-gcm",
        chunk_size: int = DEFAULT_CHUNK,
        cache_entries: int = 4096,
    ) -> None:
        if cipher not in CIPHERS:
            raise ValueError(f"cipher must be one of {', '.join(CIPHERS)}, got {cipher!r}")
        self.inner = inner
        self.keys = keys
        self.cipher = CIPHERS[cipher]
        self.chunk_size = chunk_size
        self._cache: OrderedDict[str, BlobInfo | None] = OrderedDict()
        self._dks: OrderedDict[str, bytes] = OrderedDict()  # server-key data keys only, never SSE-C
        self._cache_entries = cache_entries

    # -- plumbing ----------------------------------------------------------------------------------
    def new_writer(self, options: WriteOptions = NO_OPTIONS) -> BlobWriter:
        return _EncryptingWriter(self, self.inner.new_writer(options), options.encryption, options.binding)

    async def delete(self, blob_ids: Sequence[str]) -> None:
        for b in blob_ids:
            self._cache.pop(b, None)
            self._dks.pop(b, None)
        await self.inner.delete(blob_ids)

    async def exists(self, blob_id: str) -> bool:
        return await self.inner.exists(blob_id)

    async def list_ids(self) -> AsyncIterator[str]:
        async for b in self.inner.list_ids():
            yield b

    async def sweep_orphans(self, referenced: Callable[[], Awaitable[set[str]]]) -> int:
        return await self.inner.sweep_orphans(referenced)

    async def size(self, blob_id: str) -> int:
        info = await self.info(blob_id)
        return await self.inner.size(blob_id) if info is None else info.plain_size

    async def info(self, blob_id: str) -> BlobInfo | None:
        if blob_id in self._cache:
            self._cache.move_to_end(blob_id)
            return self._cache[blob_id]
        physical = await self.inner.size(blob_id)
        head = await self._read_exact(blob_id, 0, min(physical, HEADER_SIZE))
        header = parse_header(head)
        info = None
        if header is not None:
            info = BlobInfo(header, *plain_size(physical, header.chunk_size, header.size))
        self._remember(self._cache, blob_id, info)
        return info

    def _remember(self, cache: OrderedDict[str, _V], key: str, value: _V) -> None:
        cache[key] = value
        if len(cache) > self._cache_entries:
            cache.popitem(last=False)

    async def _read_exact(self, blob_id: str, offset: int, length: int) -> bytes:
        data = b"".join([c async for c in self.inner.read(blob_id, offset, length)])
        if len(data) != length:
            raise errors.InternalError("object data is truncated")
        return data

    async def encryption_of(self, blob_id: str) -> str | None:
        """The live KEK reference of a blob ("sse-c" for customer keys), None when plain."""
        info = await self.info(blob_id)
        return None if info is None else info.header.live[1].ref

    def _data_key(self, blob_id: str, header: Header) -> bytes:
        if (dk := self._dks.get(blob_id)) is not None:
            return dk
        _, slot = header.live
        aad = _wrap_aad(blob_id, header.cipher, header.binding)
        if slot.ref == CUSTOMER_REF:
            ck = CUSTOMER_KEY.get()
            if ck is None:
                raise errors.InvalidRequest(
                    "The object was stored using a form of Server Side Encryption. "
                    "The correct parameters must be provided to retrieve the object."
                )
            try:
                return unwrap_with(customer_kek(ck), slot.wrapped, aad)
            except KeyError_:
                raise errors.AccessDenied() from None
        try:
            dk = self.keys.unwrap(slot.ref, slot.wrapped, aad)
        except KeyError_:
            raise _corrupt() from None
        self._remember(self._dks, blob_id, dk)
        return dk

    # -- reads -------------------------------------------------------------------------------------
    async def read(self, blob_id: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._read(blob_id, offset, length):
                yield chunk
        except errors.S3Error:
            # A failed check may come from a cached header of bytes since replaced (a repaired or
            # restored file): forget it, so the next read looks at the blob afresh.
            self._cache.pop(blob_id, None)
            self._dks.pop(blob_id, None)
            raise

    async def _read(self, blob_id: str, offset: int, length: int | None) -> AsyncIterator[bytes]:
        info = await self.info(blob_id)
        if info is None:
            async for chunk in self.inner.read(blob_id, offset, length):
                yield chunk
            return
        length = checked_span(offset, length, info.plain_size)
        if length == 0:
            return
        h = info.header
        _check_binding(blob_id, h)
        aead = _aead(h.cipher, self._data_key(blob_id, h))
        cs, stored, hs = h.chunk_size, h.chunk_size + TAG, h.size
        first, last = offset // cs, (offset + length - 1) // cs
        start = hs + first * stored
        end = hs + min((last + 1) * stored, info.plain_size + info.chunks * TAG)
        ctx = _Opener(aead, h, blob_id.encode(), info.chunks)
        buf = bytearray()
        group: list[tuple[int, bytes]] = []
        i = first

        async def flush() -> list[tuple[int, bytes]]:
            work = sum(len(c) for _, c in group)
            jobs = list(group)
            group.clear()
            return ctx.open_all(jobs) if work <= INLINE else await asyncio.to_thread(ctx.open_all, jobs)

        async for piece in self.inner.read(blob_id, start, end - start):
            buf += piece
            while i <= last and len(buf) >= (need := min(stored, end - hs - i * stored)):
                group.append((i, bytes(buf[:need])))
                del buf[:need]
                i += 1
                if len(group) * cs >= BATCH or i > last:
                    for idx, plain in await flush():
                        lo = max(offset - idx * cs, 0)
                        hi = min(offset + length - idx * cs, len(plain))
                        yield plain[lo:hi] if (lo, hi) != (0, len(plain)) else plain
        if i <= last or buf:
            raise errors.InternalError("object data is truncated")


def _check_binding(blob_id: str, h: Header) -> None:
    """A version 2 blob must carry the binding the engine expects of it (when it knows one): a
    blob moved under another object's id or named by another object's metadata fails here."""
    expected = bindings.EXPECTED.get()
    want = None if expected is None else expected.get(blob_id)
    if want is not None and h.version >= 2 and bindings.digest(want) != h.binding:
        raise _corrupt()


class _Opener:
    """Opens stored chunks of one blob; pure CPU, safe on a worker thread."""

    def __init__(self, aead: AESGCM | ChaCha20Poly1305, h: Header, blob_id: bytes, chunks: int) -> None:
        self.aead, self.h, self.chunks = aead, h, chunks
        self.aad = h.prefix + h.binding + blob_id  # every chunk's AAD starts so (binding: v2 only)

    def open_all(self, jobs: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        out = []
        for i, sealed in jobs:
            nonce = self.h.nonce_prefix + i.to_bytes(8, "big")
            aad = self.aad + struct.pack(">QB", i, i == self.chunks - 1)
            try:
                out.append((i, self.aead.decrypt(nonce, sealed, aad)))
            except InvalidTag:
                raise _corrupt() from None
        return out


class _EncryptingWriter(BlobWriter):
    """Seals whole chunks as they fill, keeping the last one back until ``close`` (it is sealed
    as final). Taps see the plaintext exactly once, on the thread that seals it."""

    def __init__(
        self, store: EncryptedBlobStore, inner: BlobWriter, enc: Encryption | None, binding: bytes = b""
    ) -> None:
        self.store = store
        self.inner = inner
        self.blob_id = inner.blob_id
        self.enc = enc
        self.binding = bindings.digest(binding)
        self.mode = "undecided" if enc is None else "sealed"  # -> "plain" | "sealed"
        self.buf = bytearray()
        self.size = 0
        self.index = 0
        self.aead: AESGCM | ChaCha20Poly1305 | None = None
        self.prefix = b""
        self.nonce_prefix = b""
        self.taps: Sequence[Tap] = ()

    async def write(self, data: bytes | bytearray | memoryview, taps: Sequence[Tap] = ()) -> None:
        self.size += len(data)
        if self.mode == "plain":
            await self.inner.write(data, taps)
            return
        self.buf += data
        self.taps = taps or self.taps
        if self.mode == "undecided":
            if len(self.buf) >= len(MAGIC):
                await self._decide()
            return
        if len(self.buf) > BATCH:
            await self._seal(final=False)

    async def _decide(self) -> None:
        if bytes(self.buf[: len(MAGIC)]) != MAGIC:
            self.mode = "plain"
            buf, self.buf = self.buf, bytearray()
            await self.inner.write(buf, self.taps)
            return
        self.mode, self.enc = "sealed", Encryption(SSE_S3_KEY)  # escape: see the module docstring

    def _start(self) -> bytes:
        assert self.enc is not None
        st = self.store
        dk = secrets.token_bytes(32)
        aad = _wrap_aad(self.blob_id, st.cipher, self.binding)
        if self.enc.customer_key is not None:
            ref, wrapped = CUSTOMER_REF, wrap_with(customer_kek(self.enc.customer_key), dk, aad)
        else:
            try:
                ref, wrapped = st.keys.wrap(self.enc.key_name, dk, aad)
            except KeyError_ as e:
                raise errors.InvalidArgument(str(e)) from None
        if len(ref) > 128:
            raise errors.InvalidArgument("The KMS key id is too long")
        self.nonce_prefix = secrets.token_bytes(4)
        self.prefix = PREFIX.pack(MAGIC, VERSION, st.cipher, 0, st.chunk_size, self.nonce_prefix)
        self.aead = _aead(st.cipher, dk)
        empty = bytes(SLOT_SIZE)
        return self.prefix + Slot(1, ref, wrapped).pack() + empty + self.binding

    async def _seal(self, final: bool) -> None:
        out = bytearray(self._start()) if self.aead is None else bytearray()
        cs = self.store.chunk_size
        n = len(self.buf) if final else (len(self.buf) - 1) // cs * cs
        if not final and n == 0:
            return
        plain, self.buf = self.buf[:n], self.buf[n:]
        job = (memoryview(plain), final, self.taps)
        out += self._seal_sync(*job) if n <= INLINE else await asyncio.to_thread(self._seal_sync, *job)
        await self.inner.write(out)

    def _seal_sync(self, plain: memoryview, final: bool, taps: Sequence[Tap]) -> bytearray:
        assert self.aead is not None
        for t in taps:
            t.update(plain)
        cs = self.store.chunk_size
        out = bytearray()
        base = self.prefix + self.binding + self.blob_id.encode()
        pieces = [plain[i : i + cs] for i in range(0, len(plain), cs)] or [plain]
        for j, piece in enumerate(pieces):
            last = final and j == len(pieces) - 1
            nonce = self.nonce_prefix + self.index.to_bytes(8, "big")
            aad = base + struct.pack(">QB", self.index, last)
            out += self.aead.encrypt(nonce, bytes(piece), aad)
            self.index += 1
        return out

    async def close(self, taps: Sequence[Tap] = ()) -> int:
        self.taps = taps or self.taps
        if self.mode == "undecided":  # shorter than MAGIC: plain
            self.mode = "plain"
            buf, self.buf = self.buf, bytearray()
            await self.inner.write(buf, self.taps)
        if self.mode == "plain":
            await self.inner.close(self.taps)
            return self.size
        await self._seal(final=True)
        await self.inner.close()
        return self.size

    async def abort(self) -> None:
        await self.inner.abort()


def rewrap_file(keys: KeyProvider, path: str, blob_id: str, fsync: bool = True) -> str:
    """Re-wrap one stored blob's data key under the current version of its KEK, in the spare slot.

    Returns "rewrapped", "current" (nothing to do), "customer" (SSE-C: only the customer's key
    opens it) or "plain". Crash-safe (the live slot is never touched; a torn spare slot fails its
    CRC) and idempotent, so an interrupted rotation is simply run again. Old KEK versions stay in
    the key file, so a server holding a cached header keeps reading."""
    fd = os.open(path, os.O_RDWR)
    try:
        header = parse_header(os.pread(fd, HEADER_SIZE, 0))
        if header is None:
            return "plain"
        idx, slot = header.live
        if slot.ref == CUSTOMER_REF:
            return "customer"
        name = slot.ref.rpartition("#")[0]
        if keys.current_ref(name) == slot.ref:
            return "current"
        aad = _wrap_aad(blob_id, header.cipher, header.binding)
        try:
            dk = keys.unwrap(slot.ref, slot.wrapped, aad)
        except KeyError_:
            raise _corrupt() from None
        ref, wrapped = keys.wrap(name, dk, aad)
        os.pwrite(fd, Slot(slot.seq + 1, ref, wrapped).pack(), PREFIX.size + (1 - idx) * SLOT_SIZE)
        if fsync:
            os.fsync(fd)
        return "rewrapped"
    finally:
        os.close(fd)


def key_md5(key: bytes) -> str:
    """Base64 MD5 of an SSE-C key, as the x-amz-...-customer-key-MD5 header carries it."""
    return base64.b64encode(hashlib.md5(key, usedforsecurity=False).digest()).decode()
