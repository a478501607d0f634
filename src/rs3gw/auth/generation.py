"""A counter every process of one data directory shares, bumped after each IAM change.

With ``serve --workers N`` each worker has its own key map (``auth.users.KeyRing``), and the
``rs3gw admin user|key`` commands write the metadata store from yet another process. Whoever
changes users, keys or identity policies bumps ``DATA_DIR/.rs3gw/iam-generation`` (8 bytes,
little-endian) after the store commit; every serving process maps that file read-only and compares
it with the value its key map was loaded at before each signature check. Reading a mapped page
is a memory load, not a system call, so the request path pays nothing until the counter moves.

Writers serialise on an ``flock`` of the file (read, add one, ``pwrite``); the kernel's page cache
is the mapping, so the new value is visible in every process as soon as ``pwrite`` returns. The
counter is not synced to disk: it only has to move while the processes reading it are running.
Processes on other hosts (sharing a PostgreSQL store) cannot see it and keep relying on the
periodic reload (``--iam-refresh-interval``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
import struct
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("rs3gw.iam")

GENERATION_RELPATH = Path(".rs3gw") / "iam-generation"
_COUNTER = struct.Struct("<Q")


class IamGeneration:
    """The data directory's IAM change counter: ``current()`` for readers, ``bump()`` for writers."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / GENERATION_RELPATH
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            with _locked(fd):
                if os.fstat(fd).st_size < _COUNTER.size:  # new (or cut short): zeros, then counted up
                    os.ftruncate(fd, _COUNTER.size)
            self._map = mmap.mmap(fd, _COUNTER.size, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)  # the mapping keeps the file open

    def current(self) -> int:
        """The counter as this process sees it now (no system call). A read racing a bump may mix
        old and new bytes; any value other than the last one loaded only costs one extra reload."""
        value: int = _COUNTER.unpack_from(self._map, 0)[0]
        return value

    def bump(self) -> int:
        """Count one change, after its store commit; returns the new value. Opened by path, so a
        writer always reaches the file the serving processes mapped (unless it was replaced)."""
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


def open_generation(data_dir: Path) -> IamGeneration | None:
    """The counter of ``data_dir``, or None (with a warning) where it cannot be made, such as a
    read-only data directory: IAM changes then reach other processes within the refresh interval.
    None, silently, for a data dir that does not exist: no server runs on it to be told."""
    if not data_dir.is_dir():
        return None
    try:
        return IamGeneration(data_dir)
    except OSError as exc:
        log.warning(
            "IAM generation file under %s unusable (%s): other processes see IAM changes only on "
            "their periodic reload",
            data_dir,
            exc,
        )
        return None
