"""One SQLite writer at a time across the processes sharing a database file, queued in the kernel.

Why: with ``--workers N`` every worker process has its own group-commit writer on the same
``meta.db`` and ``smallblobs.db``. SQLite makes a writer that finds the file locked *sleep and
retry* (its busy handler waits 1, 2, 5, 10 … up to 100 ms between tries), so under load a commit
waits far longer than the commit in its way takes: measured on 2 cores, 4 KiB PUTs at
concurrency 16 fell from 730/s (1 worker) to 371/s with 8 workers, p99 from 41 ms to 452 ms.
An ``flock`` taken before ``BEGIN IMMEDIATE`` and dropped after ``COMMIT`` makes the next writer
wake the moment the lock is free, in arrival order, and SQLite never sees a busy file.

Within a process the callers already serialize their writes (one writer thread, or a lock), so
one descriptor per database is enough: ``flock`` does not block a holder of the same open file.
Writers that do not take the turn (the CLI, fsck) still work: they meet SQLite's busy handler,
and so does this one if the lock file cannot be made (a full or read-only disk): the turn is an
optimisation, never a reason for a write to fail.

The wait has no timeout: a holder that dies (even by SIGKILL) releases the turn at once, but one
that is stopped (SIGSTOP, a frozen cgroup) holds up the other workers' writes until it runs again,
where SQLite's busy handler would have given up after 30 s with "database is locked".
"""

from __future__ import annotations

import fcntl
import logging
import os
import weakref
from pathlib import Path
from types import TracebackType

log = logging.getLogger("rs3gw.store")


class WriteTurn:
    """Context manager: the exclusive turn to write ``db`` (a lock file beside it, ``<db>-turn``)."""

    def __init__(self, db: Path) -> None:
        self.path = db.with_name(db.name + "-turn")
        self._fd: int | None = None
        self._held = False
        self._closed = False
        self._warned = False
        self._finalizer: weakref.finalize[[int], WriteTurn] | None = None
        self._open(warn=False)  # at start-up, while there is room (the directory may not exist yet)

    def _open(self, warn: bool = True) -> int | None:
        if self._fd is None and not self._closed:
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                if warn and not self._warned:
                    self._warned = True
                    log.warning(
                        "write turn %s unusable (%s): writers wait in SQLite's busy handler", self.path, exc
                    )
                return None
            self._owned_like_db()
            # A store built and dropped without close() must not keep the descriptor.
            self._finalizer = weakref.finalize(self, os.close, self._fd)
        return self._fd

    def _owned_like_db(self) -> None:
        """Made by root (``rs3gw admin`` run as root), the file goes to the database's owner, as
        SQLite does with its -wal and -shm files, so a server running as that user can open it."""
        if self._fd is None or os.geteuid() != 0:
            return
        try:
            st = os.stat(self.path.with_name(self.path.name.removesuffix("-turn")))
            os.fchown(self._fd, st.st_uid, st.st_gid)
        except OSError:
            pass

    def __enter__(self) -> WriteTurn:
        fd = self._open()
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # releases the GIL while it waits
                self._held = True
            except OSError:
                pass
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._held and self._fd is not None:
            self._held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Final: a write after its store closed goes on without the turn, not with a new file."""
        self._closed = True
        if self._finalizer is not None:
            self._finalizer()  # closes the descriptor once
            self._finalizer = None
        self._fd = None
