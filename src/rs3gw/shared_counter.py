"""A counter every process of one host shares through a small file, bumped after a change.

Processes that cache what another process may change (``serve --workers N``, the ``rs3gw admin``
commands) map the file read-only and compare it with the value their cache was loaded at: reading a
mapped page is a memory load, not a system call, so a reader pays nothing until the counter moves.

Writers serialise on an ``flock`` of the file (read, add one, ``pwrite``); the kernel's page cache
is the mapping, so the new value is visible in every process as soon as ``pwrite`` returns. The
counter is not synced to disk: it only has to move while the processes reading it are running.
Processes on other hosts cannot see it.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import struct
from collections.abc import Iterator
from pathlib import Path

_COUNTER = struct.Struct("<Q")


class SharedCounter:
    """``current()`` for readers, ``bump()`` for writers (8 bytes, little-endian)."""

    def __init__(self, path: Path, owner_like: Path | None = None) -> None:
        """``owner_like``: made by root (``rs3gw admin`` run as root), the file goes to that
        file's owner (the database's, the data directory's), so a server running as that user can
        open it too."""
        self.path = path
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            with _locked(fd):
                if os.fstat(fd).st_size < _COUNTER.size:  # new (or cut short): zeros, then counted up
                    os.ftruncate(fd, _COUNTER.size)
                if owner_like is not None and os.geteuid() == 0:
                    with contextlib.suppress(OSError):
                        st = os.stat(owner_like)
                        os.fchown(fd, st.st_uid, st.st_gid)
            self._map = mmap.mmap(fd, _COUNTER.size, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)  # the mapping keeps the file open

    def current(self) -> int:
        """The counter as this process sees it now (no system call). A read racing a bump may mix
        old and new bytes; any value other than the last one loaded only costs one extra reload."""
        value: int = _COUNTER.unpack_from(self._map, 0)[0]
        return value

    def bump(self) -> int:
        """Count one change, after its commit; returns the new value. Opened by path, so a writer
        always reaches the file the readers mapped (unless it was replaced)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            with _locked(fd):
                raw = os.pread(fd, _COUNTER.size, 0)
                value = (_COUNTER.unpack(raw)[0] if len(raw) == _COUNTER.size else 0) + 1
                os.pwrite(fd, _COUNTER.pack(value & 0xFFFF_FFFF_FFFF_FFFF), 0)
                return value
        finally:
            os.close(fd)

    def close(self) -> None:
        with contextlib.suppress(BufferError):
            self._map.close()


@contextlib.contextmanager
def _locked(fd: int) -> Iterator[None]:
    """Writers of the counter one at a time (creation included)."""
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
