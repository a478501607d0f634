"""The one writer thread per process that appends to the chain, so the event loop never touches disk.

Several server processes (``--workers N``) share one chain: every batch is appended under an
exclusive ``flock`` on ``audit.lock``, and the writer re-reads the chain's tail whenever the file
changed since its own last append. Records from all workers therefore form one totally ordered
chain; ``seq`` order is append order, not request-time order.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rs3gw.audit.chain import (
    CURRENT,
    GENESIS,
    HEAD,
    HEAD_SIZE,
    LOCK,
    closed_name,
    compress_segment,
    head_bytes,
    read_head,
    read_lines,
    segments,
)
from rs3gw.audit.record import Members, RequestLike, dict_members, request_members, seal_members
from rs3gw.diskspace import free_bytes, has_room
from rs3gw.timefmt import iso8601

log = logging.getLogger("rs3gw.audit")
BATCH_MAX = 1000
# Group commit: a batch stays open this long after its first record, so the records of a burst share
# one append, fsync and head write. Without it a busy server wrote batches of one or two records, and
# that per-batch work (about 0.3 ms of CPU each, fsync included) cost more than the request itself.
# 50 ms rather than 5: each batch also wakes this thread, which then takes the GIL from the event
# loop, and at a few thousand requests per second 200 such wake-ups a second cost the loop more than
# the records' encoding did (HEAD 4 KiB at c=16, medians of 8 runs: 2,864/s at 5 ms, 3,287 at
# 20 ms, 3,416 at 50 ms, 3,589 at 100 ms; docs/benchmarks.md). Records reach the disk at most this
# much later; queries and ``flush`` do not wait for it (a flush marker starts a batch at once).
LINGER = 0.05
_TAIL_READ = 1 << 20

Record = dict[str, Any]
# What the writer's queue holds: a record dict (system, alert), a request event whose record is
# encoded on the writer thread, a flush marker (set once everything before it is written) or None
# (stop).
Item = Record | RequestLike | threading.Event | None


class DiskNearlyFull(OSError):
    """A batch not appended because it would leave less than half the blob store's reserve free
    (see ``rs3gw.diskspace``): every audited read appends, so without this, reads alone used up the
    space that the metadata store needs to commit the deletes that free space again."""

    def __init__(self, free: int) -> None:
        super().__init__(f"{free} bytes free")
        self.free = free


class ChainWriter(threading.Thread):
    """Drains its queue in batches: one lock, one append and one fsync per batch (group commit,
    a batch collecting records for ``LINGER`` seconds).

    The queue is a deque and an Event rather than a queue.Queue: a submit is one append and one
    attribute read (the Event is set at most once per batch, when the writer sleeps), where
    queue.Queue took two locks and notified a condition per record on the request path."""

    def __init__(
        self,
        directory: Path,
        key: bytes,
        *,
        rotate_bytes: int,
        rotate_seconds: int,
        compression: str,
        fsync: bool,
        queue_size: int,
        on_written: Callable[[list[str]], None],
    ) -> None:
        super().__init__(name="rs3gw-audit-writer", daemon=True)
        self.directory = directory
        self.key = key
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.compression = compression
        self.fsync = fsync
        self.on_written = on_written
        self.queue_size = queue_size
        self._pending: deque[Item] = deque()
        self._wake = threading.Event()
        self._urgent = threading.Event()  # a flush, a close or a filling queue: cut the linger short
        self._hurry_at = max(1, min(BATCH_MAX, queue_size // 2))
        self.dropped = 0
        self.written = 0
        self.errors = 0
        self._low = False  # appends refused for lack of space since the last one that got through
        self._tail: tuple[int, int, int, str] | None = None  # (inode, size, seq, mac) after our last append
        self._first_ts: tuple[int, float] | None = None  # (inode, time of the segment's first record)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        self._seg_fd: int | None = None  # the current segment, kept open (writer thread only)
        self._seg_ino = 0
        self._head_fd: int | None = None
        self._head_ino = 0

    def submit(self, record: Record | RequestLike) -> bool:
        """Never blocks: a full queue drops the record and counts it. ``record`` is a record dict or
        a request event (its record is built and encoded on the writer thread, not the caller's)."""
        pending = self._pending
        n = len(pending)
        if n >= self.queue_size:
            self.dropped += 1
            return False
        pending.append(record)
        if n >= self._hurry_at and not self._urgent.is_set():  # a full queue must not wait out the linger
            self._urgent.set()
        if not self._wake.is_set():
            self._wake.set()
        return True

    def queued(self) -> int:
        return len(self._pending)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted so far is on disk (for read-your-writes queries)."""
        if not self.is_alive():  # not started, or closed: nothing more will be written
            return not self._pending
        marker = threading.Event()
        self._pending.append(marker)
        self._urgent.set()
        self._wake.set()
        return marker.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        self._pending.append(None)
        self._urgent.set()
        self._wake.set()
        self.join(timeout)

    def run(self) -> None:
        pending, wake = self._pending, self._wake
        stop = False
        while not stop:
            wake.clear()  # before looking: a submit from here on sets it again
            if not pending:
                wake.wait()
            first = pending[0] if pending else None
            if first is not None and not isinstance(first, threading.Event) and len(pending) < BATCH_MAX:
                # No wake-up per record meanwhile (submits only append); a flush or close ends it.
                self._urgent.wait(LINGER)
            self._urgent.clear()
            batch: list[Record | RequestLike] = []
            markers: list[threading.Event] = []
            while pending and len(batch) < BATCH_MAX:
                item = pending.popleft()
                if item is None:
                    stop = True
                    break
                if isinstance(item, threading.Event):
                    markers.append(item)
                else:
                    batch.append(item)
            if batch:
                self._write_batch(batch)
            for marker in markers:
                marker.set()
        for fd in (self._seg_fd, self._head_fd):
            if fd is not None:
                os.close(fd)
        self._seg_fd = self._head_fd = None

    def _write_batch(self, batch: list[Record | RequestLike]) -> None:
        """A batch that cannot be appended still reaches the sinks. Refusals for lack of space are
        expected while the disk stays full (one per batch, every few ms on a busy server), so they
        log one warning line per episode, not a traceback per batch."""
        lines: list[str] = []
        try:
            members = _members(batch)
            lines = self._append_locked(members)
            self.written += len(batch)
            if self._low:
                self._low = False
                log.warning("audit: disk space is back, appending records again")
        except DiskNearlyFull as e:
            self.errors += 1
            if not self._low:
                self._low = True
                log.warning("audit: disk nearly full (%d bytes free), records not appended", e.free)
        except Exception:
            self.errors += 1
            log.exception("audit: could not append %d records", len(batch))
        if not lines:
            try:  # the sinks still get what the requests did, without chain fields
                lines = ["{" + ",".join(p for p in m if p) + "}" for m in _members(batch)]
            except Exception:
                lines = []
        if lines:
            try:
                self.on_written(lines)
            except Exception:
                log.exception("audit: forwarding failed")

    def _append_locked(self, members: list[Members]) -> list[str]:
        """Seal and append the batch under the writers' lock; returns the lines (no newlines)."""
        key = self.key
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            path = self.directory / CURRENT
            fd, st = self._segment_fd(path)
            seq, mac = self._tail_of(fd, path, st)
            lines = []
            for m in members:
                seq += 1
                line, mac = seal_members(key, m, seq, mac)
                lines.append(line)
            lines.append("")
            data = memoryview("\n".join(lines).encode())
            lines.pop()
            # Checked here, under the lock and with the batch's size known, so no batch (from this
            # worker or another) cuts into the half of the reserve left to metadata commits. Nothing
            # is written before it: seq and mac only advance in ``_tail`` after a successful append.
            vfs = os.fstatvfs(fd)
            if not has_room(vfs, len(data), self._low):
                raise DiskNearlyFull(free_bytes(vfs))
            while data:
                data = data[os.write(fd, data) :]
            if self.fsync:
                os.fsync(fd)
            st = os.fstat(fd)
            self._tail = (st.st_ino, st.st_size, seq, mac)
            self._write_head(seq, mac)
            self._maybe_rotate(path, st.st_ino, st.st_size, seq, lines[0])
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        return lines

    def _segment_fd(self, path: Path) -> tuple[int, os.stat_result]:
        """The current segment, opened once and kept while it stays the current segment.

        One ``stat`` per batch (under the lock) tells whether a writer rotated it since (renamed:
        gone or another inode); opening and closing it per batch were two more syscalls, each a
        release and re-take of the GIL that the request path competes for."""
        if self._seg_fd is not None:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                st = None
            if st is not None and st.st_ino == self._seg_ino:
                return self._seg_fd, st
            os.close(self._seg_fd)
            self._seg_fd = None
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        st = os.fstat(fd)
        self._seg_fd, self._seg_ino = fd, st.st_ino
        return fd, st

    def _write_head(self, seq: int, mac: str) -> None:
        """``write_head`` with the head file kept open: a ``stat`` checks it is still the same file."""
        path = self.directory / HEAD
        if self._head_fd is not None:
            try:
                same = os.stat(path).st_ino == self._head_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(self._head_fd)
                self._head_fd = None
        if self._head_fd is None:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            st = os.fstat(fd)
            if st.st_size > HEAD_SIZE:  # a head written by an older version or by hand
                os.ftruncate(fd, HEAD_SIZE)
            self._head_fd, self._head_ino = fd, st.st_ino
        os.pwrite(self._head_fd, head_bytes(self.key, seq, mac), 0)

    def _tail_of(self, fd: int, path: Path, st: os.stat_result) -> tuple[int, str]:
        """The chain's last (seq, mac): our cache if nobody appended since, else read from disk."""
        if self._tail is not None and self._tail[:2] == (st.st_ino, st.st_size):
            return self._tail[2], self._tail[3]
        if st.st_size > 0:
            os.lseek(fd, max(0, st.st_size - _TAIL_READ), os.SEEK_SET)
            data = os.read(fd, _TAIL_READ)
            if not data.endswith(b"\n"):  # a crash cut the last append short: that line never counted
                cut = data.rfind(b"\n") + 1
                os.ftruncate(fd, st.st_size - (len(data) - cut))
                log.warning("audit: dropped a partial record at the end of %s", path)
                data = data[:cut]
            lines = data.splitlines()
            if lines:
                last = json.loads(lines[-1])
                return int(last["seq"]), str(last["mac"])
        head = read_head(self.directory)
        if head is not None:
            return head.seq, head.mac
        closed = [p for p in segments(self.directory) if p.name != CURRENT]
        if closed:
            last_line = b""
            for _, line in read_lines(closed[-1]):
                last_line = line
            if last_line:
                last = json.loads(last_line)
                return int(last["seq"]), str(last["mac"])
        return 0, GENESIS

    def _maybe_rotate(self, path: Path, ino: int, size: int, seq: int, first: str) -> None:
        if self._first_ts is None or self._first_ts[0] != ino:
            self._first_ts = (ino, self._segment_start(path, first))
        too_old = self.rotate_seconds > 0 and time.time() - self._first_ts[1] >= self.rotate_seconds
        if size < self.rotate_bytes and not too_old:
            return
        first_seq = self._segment_first_seq(path)
        closed = path.with_name(closed_name(first_seq, seq))
        os.rename(path, closed)
        self._tail = None
        if self._seg_fd is not None:  # the closed segment is compressed and unlinked below
            os.close(self._seg_fd)
            self._seg_fd = None
        # Also any segment a crash left uncompressed; done under the lock so no two workers race on one.
        for seg in segments(self.directory):
            if seg.name.endswith(".log") and seg.name != CURRENT:
                try:
                    compress_segment(seg, self.compression, self.fsync)
                except OSError:
                    log.exception("audit: could not compress %s (left uncompressed)", seg)

    @staticmethod
    def _segment_first_seq(path: Path) -> int:
        for _, line in read_lines(path):
            return int(json.loads(line)["seq"])
        return 0

    @staticmethod
    def _segment_start(path: Path, fallback: str) -> float:
        for _, line in read_lines(path):
            return float(json.loads(line).get("ts", time.time()))
        return float(json.loads(fallback).get("ts", time.time()))


def _members(batch: list[Record | RequestLike]) -> list[Members]:
    """Each record's encoded members: dicts member by member, request events by template."""
    pid = os.getpid()
    return [
        dict_members(item) if isinstance(item, dict) else request_members(item, pid, iso8601(item.started))
        for item in batch
    ]
