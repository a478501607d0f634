"""Local-filesystem blob store: temp file, fsync, rename, fsync of the directory.

Blobs live at ``blobs/<aa>/<id>`` where ``id`` is random hex, so no client-chosen name ever becomes
a path. Writes are buffered to 1 MiB and done on worker threads; small blobs cost one thread hop.
The event loop only collects the body's chunks (no copy); hashing and ``writev`` of a batch happen on
the worker thread, where hashlib and the write syscall release the GIL.
Blobs up to ``SMALL_MAX`` are rows of ``smallblobs.db`` instead (``blobs.smallpack``: no inode
per small blob). Optional (``[storage.zerocopy]``): O_DIRECT writes above a threshold
(``blobs.directio``) and mmap reads of long spans (``blobs.mmapread``).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import secrets
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

from rs3gw import errors
from rs3gw.blobs.base import NO_OPTIONS, BlobStore, BlobWriter, Tap, WriteOptions
from rs3gw.blobs.directio import ALIGN, DirectIO, DirectSink
from rs3gw.blobs.mmapread import mappable, mapped_chunks
from rs3gw.blobs.smallpack import SMALL_MAX, SmallPack
from rs3gw.diskspace import free_bytes, reserve_bytes

FLUSH_AT = 1 << 20
SMALL_CHUNK = 16 << 10  # chunks shorter than this are coalesced (a list entry per tiny chunk costs more)
_IOV_MAX = 1024  # Linux's limit on buffers per writev
READ_CHUNK = 1 << 20
_HEX = frozenset("0123456789abcdef")
GATE_WAIT = 30.0
INLINE_CLOSE_MAX = 32 << 10  # without fsync, blobs up to this size are written on the event loop
INLINE_UNLINKS = 4  # freed blobs deleted on the event loop itself (more: one worker-thread hop)


def _new_id() -> str:
    return secrets.token_hex(16)


def _owner_alive(name: str) -> bool:
    """True when the temp file ``<id>.<pid>.tmp`` belongs to another process that is still running."""
    parts = name.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    return pid != os.getpid() and pid_alive(pid)


def pid_alive(pid: int) -> bool:
    """Whether a process exists (signal 0 probes without signalling; EPERM still means alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _writev_all(fd: int, views: list[memoryview]) -> None:
    """Write every buffer in order with as few syscalls as possible, resuming after short writes."""
    while views:
        batch = views[:_IOV_MAX]
        n = os.writev(fd, batch)
        k = 0
        while k < len(batch) and n >= len(batch[k]):
            n -= len(batch[k])
            k += 1
        views = views[k:]
        if n:
            views[0] = views[0][n:]


def _unlink_all(paths: Sequence[str]) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def _close_all(fds: dict[str, int]) -> None:
    while fds:
        os.close(fds.popitem()[1])


def _span(data: bytes, offset: int, length: int | None) -> bytes:
    end = len(data) if length is None else offset + length
    if offset > len(data) or end > len(data):
        raise errors.InternalError("object data is truncated")
    return data if (offset, end) == (0, len(data)) else data[offset:end]


def _reserve_bytes(root: Path) -> int:
    """Free space that blob writes leave alone (2% of the filesystem, 256 KiB to 64 MiB), so that on
    a full disk the metadata store can still commit the deletes that make room again."""
    return reserve_bytes(os.statvfs(root))


class LocalBlobStore(BlobStore):
    def __init__(
        self,
        root: Path,
        fsync: bool = True,
        direct_io: DirectIO | None = None,
        mmap_reads: bool = False,
        small_max: int = SMALL_MAX,
    ) -> None:
        """``small_max``: blobs up to this size become rows of ``smallblobs.db`` (0: never). Rows
        already there stay readable whatever it is set to."""
        self.root = root
        self.blob_dir = root / "blobs"
        self.tmp_dir = root / "tmp"
        self.fsync = fsync
        self.direct_io = direct_io  # None: every write goes through the page cache
        self.mmap_reads = mmap_reads
        self.small_max = small_max
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        self.small = SmallPack(root / "smallblobs.db", fsync)
        weakref.finalize(self, self.small.close)
        self.reserve = _reserve_bytes(root)
        # The same directories as strings: per-blob paths are joined as str, not pathlib (whose
        # parsing cost several µs per path on every write and delete).
        self._blob_dir_s = os.fspath(self.blob_dir)
        self._tmp_dir_s = os.fspath(self.tmp_dir)
        self._made: set[str] = set()
        # Open directory fds of blobs/<aa>/, for the directory fsync after each publish: an open and
        # a close fewer per durable write (each a GIL release and reacquire on a busy worker).
        self._dir_fds: dict[str, int] = {}
        self._dir_lock = threading.Lock()
        weakref.finalize(self, _close_all, self._dir_fds)
        self._alone = self._lock()

    def _lock(self) -> bool:
        """Every process holds ``blobs.lock`` shared while it lives; one that can take it exclusively
        is alone, and keeps ``blobs.gate`` until its orphan sweep is done so that no sibling starts
        writing meanwhile. The kernel drops both when a process dies, even by kill -9."""
        self._fds: dict[str, int] = {}  # closed when the store is collected: tests make many
        weakref.finalize(self, _close_all, self._fds)
        self._fds["gate"] = os.open(self.root / "blobs.gate", os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + GATE_WAIT
        while True:
            try:
                fcntl.flock(self._fds["gate"], fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:  # a holder that never sweeps: just don't sweep
                    self._open_gate()
                    break
                time.sleep(0.05)
        users = self._fds["users"] = os.open(self.root / "blobs.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except BlockingIOError:
            alone = False
        fcntl.flock(users, fcntl.LOCK_SH)  # not atomic, but the gate keeps others out
        if not alone:
            self._open_gate()
        return alone

    def _open_gate(self) -> None:
        if (fd := self._fds.pop("gate", None)) is not None:
            os.close(fd)

    async def sweep_orphans(self, referenced: Callable[[], Awaitable[set[str]]]) -> int:
        try:
            if not self._alone:
                return 0
            keep = await referenced()
            orphans = [b async for b in self.list_ids() if b not in keep]
            await self.delete(orphans)
            return len(orphans)
        finally:
            self._alone = False
            self._open_gate()

    def clean_tmp(self) -> int:
        """Remove temp files left by a crash; they were never published, so nothing refers to them.

        Each temp name carries its writer's pid: with ``--workers N`` a (re)starting worker must not
        delete the files of uploads that a live sibling process is still writing.
        """
        n = 0
        for p in self.tmp_dir.iterdir():
            if p.is_dir() or _owner_alive(p.name):
                continue
            p.unlink(missing_ok=True)
            n += 1
        return n

    def has_room(self, nbytes: int) -> bool:
        """Whether a blob write of ``nbytes`` (a file's or a row's) leaves the reserve free."""
        return free_bytes(os.statvfs(self._tmp_dir_s)) >= nbytes + self.reserve

    def path(self, blob_id: str) -> Path:
        return Path(self._path_s(blob_id))

    def _path_s(self, blob_id: str) -> str:
        if len(blob_id) < 3 or not _HEX.issuperset(blob_id):
            raise errors.InternalError("invalid blob reference")
        return f"{self._blob_dir_s}/{blob_id[:2]}/{blob_id}"

    def new_writer(self, options: WriteOptions = NO_OPTIONS) -> BlobWriter:
        return _LocalWriter(self, _new_id())

    async def size(self, blob_id: str) -> int:
        try:
            return os.stat(self._path_s(blob_id)).st_size
        except FileNotFoundError:
            n = self.small.size(blob_id)
            if n is None:
                raise errors.InternalError("object data is missing") from None
            return n

    async def read(self, blob_id: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        # Rows first while packing is on: small objects are where per-request cost shows, and a row
        # miss (an index probe, a few µs) is nothing next to reading a blob over SMALL_MAX; files
        # first otherwise, so a store that never packed pays no query.
        if self.small_max and (row := self.small.get(blob_id)) is not None:
            yield _span(row, offset, length)
            return
        try:
            fd = os.open(self._path_s(blob_id), os.O_RDONLY)
        except FileNotFoundError:
            if self.small_max:
                raise errors.InternalError("object data is missing") from None
            yield self._small_span(blob_id, offset, length)
            return
        try:
            if length is None:
                length = os.fstat(fd).st_size - offset
            if self.mmap_reads and mappable(fd, offset, length):
                for data in mapped_chunks(fd, offset, length, READ_CHUNK):
                    yield data
                return
            pos, end = offset, offset + length
            while pos < end:
                # Page-cache reads of 1 MiB take ~0.1 ms: cheaper inline than a thread hop.
                data = os.pread(fd, min(READ_CHUNK, end - pos), pos)
                if not data:
                    raise errors.InternalError("object data is truncated")
                pos += len(data)
                yield data
        finally:
            os.close(fd)

    def _small_span(self, blob_id: str, offset: int, length: int | None) -> bytes:
        data = self.small.get(blob_id)
        if data is None:
            raise errors.InternalError("object data is missing")
        return _span(data, offset, length)

    def read_small(self, blob_id: str) -> bytes | None:
        """A packed blob's bytes (None: a file, or no such blob), for copies that work on files."""
        return self.small.get(blob_id)

    async def delete(self, blob_ids: Sequence[str]) -> None:
        # A stat (dentry cache, microseconds) first: stores that hold none of them (archival tiers
        # are asked about every freed blob) skip the thread hop, which costs more than the lookup.
        paths: list[str] = []
        rest: list[str] = []
        for b in blob_ids:
            p = self._path_s(b)
            if os.path.lexists(p):
                paths.append(p)
            else:
                rest.append(b)
        # Files first: an unlink works on a full disk, a row delete (a WAL append) may not, and
        # deleting objects to make room must free their files even then.
        if len(paths) <= INLINE_UNLINKS:
            # A few unlinks of files just written (inode and directory cached) are cheaper on the
            # loop than a thread hop, which costs more CPU than the syscalls (~35 µs plus wake-ups).
            _unlink_all(paths)
        else:
            await asyncio.to_thread(_unlink_all, paths)
        if rest and (held := self.small.held(rest)):
            await self.small.delete(held)

    async def exists(self, blob_id: str) -> bool:
        return self.path(blob_id).exists() or self.small.size(blob_id) is not None

    async def list_ids(self) -> AsyncIterator[str]:
        for sub in sorted(self.blob_dir.iterdir()):
            for p in sorted(sub.iterdir()):
                yield p.name
        for blob_id in self.small.ids():
            yield blob_id

    def _dir_fd(self, sub: str, path: str) -> int:
        """A kept-open fd of ``blobs/<sub>`` (for fsync; called on worker threads)."""
        fd = self._dir_fds.get(sub)
        if fd is None:
            with self._dir_lock:
                fd = self._dir_fds.get(sub)
                if fd is None:
                    fd = self._dir_fds[sub] = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        return fd

    def ensure_dir(self, sub: str) -> Path:
        return Path(self._ensure_dir_s(sub))

    def _ensure_dir_s(self, sub: str) -> str:
        d = f"{self._blob_dir_s}/{sub}"
        if sub not in self._made:
            os.makedirs(d, exist_ok=True)
            self._made.add(sub)
        return d


class _LocalWriter(BlobWriter):
    def __init__(self, store: LocalBlobStore, blob_id: str) -> None:
        self.store = store
        self.blob_id = blob_id
        self.tmp = f"{store._tmp_dir_s}/{blob_id}.{os.getpid()}.tmp"
        self.buf = bytearray()  # with direct_io: the bytes not yet written
        self.parts: list[bytes | bytearray] = []  # without: the chunks not yet written, uncopied
        self.pending = 0  # bytes in ``parts``
        self.fd: int | None = None
        self.sink: DirectSink | None = None  # with direct_io: whole blocks, O_DIRECT past the threshold
        self.size = 0
        self.done = False
        self._in_thread: asyncio.Future[None] | None = None

    def _flush_sync(self, data: Sequence[bytes | bytearray | memoryview], taps: Sequence[Tap]) -> None:
        """Hash then write ``data`` (one batch of chunks), on a worker thread: one pass per chunk
        over all taps while it is still in cache, then one ``writev`` for the batch."""
        views = [memoryview(d) for d in data if len(d)]
        total = 0
        for view in views:
            total += len(view)
            for t in taps:
                t.update(view)
        if not self.store.has_room(total):
            raise OSError(errno.ENOSPC, "blob writes keep a reserve free for metadata commits")
        if self.fd is None:
            self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            if self.store.direct_io is not None:
                self.sink = DirectSink(self.fd, self.store.direct_io)
        if self.sink is not None:
            for view in views:
                self.sink.write(view)
            return
        _writev_all(self.fd, views)

    async def write(self, data: bytes | bytearray | memoryview, taps: Sequence[Tap] = ()) -> None:
        self.size += len(data)
        if self.store.direct_io is None:
            self._collect(data)
            # Strictly more: a body of exactly FLUSH_AT (1 MiB objects) is hashed, written and
            # fsync'd by close() in one thread hop instead of two.
            if self.pending > FLUSH_AT:
                parts, self.parts, self.pending = self.parts, [], 0
                await self._run(self._flush_sync, parts, taps)
            return
        self.buf += data
        if len(self.buf) >= FLUSH_AT:
            buf = self.buf
            # O_DIRECT wants whole blocks: the unaligned rest waits for the next flush
            cut = len(buf) - len(buf) % ALIGN
            self.buf = buf[cut:]
            del buf[cut:]
            await self._run(self._flush_sync, (buf,), taps)

    def _collect(self, data: bytes | bytearray | memoryview) -> None:
        """Keep a reference to immutable chunks (the ASGI body's bytes: no copy on the event loop);
        copy mutable ones, which the caller may reuse, and coalesce small ones into one buffer."""
        n = len(data)
        if not n:
            return
        self.pending += n
        last = self.parts[-1] if self.parts else None
        if n < SMALL_CHUNK:
            if isinstance(last, bytearray):  # only buffers made here are bytearrays in ``parts``
                last += data
            else:
                self.parts.append(bytearray(data))
        else:
            self.parts.append(data if isinstance(data, bytes) else bytes(data))

    async def _run(self, fn: object, *args: object) -> None:
        try:
            # run_in_executor, not to_thread: no context copy, and it already returns a future.
            loop = asyncio.get_running_loop()
            self._in_thread = loop.run_in_executor(None, fn, *args)  # type: ignore[arg-type]
            # Shielded: a cancelled request must not leave a thread writing to an fd abort() closes.
            await asyncio.shield(self._in_thread)
        except OSError as e:
            await self.abort()
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise errors.InsufficientStorage() from None
            raise

    def _close_sync(self, taps: Sequence[Tap]) -> None:
        self._flush_sync([self.buf, *self.parts], taps)
        assert self.fd is not None
        if self.store.fsync:
            os.fsync(self.fd)
        self._close_fd()
        final_dir = self.store._ensure_dir_s(self.blob_id[:2])
        os.rename(self.tmp, f"{final_dir}/{self.blob_id}")
        if self.store.fsync:
            os.fsync(self.store._dir_fd(self.blob_id[:2], final_dir))

    async def close(self, taps: Sequence[Tap] = ()) -> int:
        if self._packed():
            await self._close_packed(taps)
        elif self._inline_close():
            try:
                self._close_sync(taps)
            except OSError as e:
                await self.abort()
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise errors.InsufficientStorage() from None
                raise
        else:
            await self._run(self._close_sync, taps)
        self.done = True
        return self.size

    def _packed(self) -> bool:
        """A blob never flushed to a file and small enough becomes a row of ``smallblobs.db``."""
        store = self.store
        return (
            self.fd is None
            and store.direct_io is None
            and store.small_max > 0
            and self.pending <= store.small_max
        )

    async def _close_packed(self, taps: Sequence[Tap]) -> None:
        data = b"".join(self.parts) if len(self.parts) != 1 else bytes(self.parts[0])
        for t in taps:
            t.update(data)
        if not self.store.has_room(len(data)):
            raise errors.InsufficientStorage()
        await self.store.small.put(self.blob_id, data)

    def _inline_close(self) -> bool:
        """Whether ``close`` does its work on the event loop: only without fsync (``--no-fsync``),
        for a small blob never flushed before. Then create + write + rename touch only the page
        cache (tens of µs), less than the worker-thread hop and its wake-ups would cost. With
        fsync the hop stays: an fsync waits for the disk."""
        return (
            not self.store.fsync
            and self.fd is None
            and self.store.direct_io is None
            and self.pending <= INLINE_CLOSE_MAX
        )

    async def abort(self) -> None:
        if self.done:
            return
        self.done = True
        if self._in_thread is not None and not self._in_thread.done():
            # The fd number could be reused by another open() the moment we close it.
            await asyncio.wait([self._in_thread])
        if self._in_thread is not None and not self._in_thread.cancelled():
            self._in_thread.exception()  # retrieved: the caller already has the error that matters
        self._close_fd()
        _unlink_all((self.tmp,))

    def _close_fd(self) -> None:
        if self.sink is not None:
            self.sink.close()
            self.sink = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
