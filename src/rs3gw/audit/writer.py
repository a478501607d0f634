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
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rs3gw.audit.chain import (
    CURRENT,
    GENESIS,
    LOCK,
    closed_name,
    compress_segment,
    read_head,
    read_lines,
    seal,
    segments,
    write_head,
)

log = logging.getLogger("rs3gw.audit")
BATCH_MAX = 1000
# Group commit: a batch stays open this long after its first record, so the records of a burst share
# one append, fsync and head write. Without it a busy server wrote batches of one or two records, and
# that per-batch work (about 0.3 ms of CPU each, fsync included) cost more than the request itself.
LINGER = 0.005
_TAIL_READ = 1 << 20

Record = dict[str, Any]


class ChainWriter(threading.Thread):
    """Drains a bounded queue in batches: one lock, one append and one fsync per batch (group commit,
    a batch collecting records for ``LINGER`` seconds)."""

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
        on_written: Callable[[list[Record]], None],
    ) -> None:
        super().__init__(name="rs3gw-audit-writer", daemon=True)
        self.directory = directory
        self.key = key
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.compression = compression
        self.fsync = fsync
        self.on_written = on_written
        self.queue: queue.Queue[Record | None] = queue.Queue(queue_size)
        self.dropped = 0
        self.written = 0
        self.errors = 0
        self._submitted = 0
        self._done = 0
        self._cond = threading.Condition()
        self._tail: tuple[int, int, int, str] | None = None  # (inode, size, seq, mac) after our last append
        self._first_ts: tuple[int, float] | None = None  # (inode, time of the segment's first record)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o600)

    def submit(self, record: Record) -> bool:
        """Never blocks: a full queue drops the record and counts it."""
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            return False
        with self._cond:
            self._submitted += 1
        return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted so far is on disk (for read-your-writes queries)."""
        with self._cond:
            target = self._submitted
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def close(self, timeout: float = 10.0) -> None:
        try:
            self.queue.put(None, timeout=timeout)
        except queue.Full:
            return
        self.join(timeout)

    def run(self) -> None:
        stop = False
        while not stop:
            item = self.queue.get()
            if item is not None and self.queue.qsize() < BATCH_MAX:
                time.sleep(LINGER)  # no wake-up per record meanwhile: the queue is drained below
            batch: list[Record] = []
            while True:
                if item is None:
                    stop = True
                    break
                batch.append(item)
                if len(batch) >= BATCH_MAX:
                    break
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write_batch(batch)

    def _write_batch(self, batch: list[Record]) -> None:
        try:
            self._append_locked(batch)
            self.written += len(batch)
        except Exception:
            self.errors += 1
            log.exception("audit: could not append %d records", len(batch))
        with self._cond:
            self._done += len(batch)
            self._cond.notify_all()
        try:
            self.on_written(batch)
        except Exception:
            log.exception("audit: forwarding failed")

    def _append_locked(self, batch: list[Record]) -> None:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            path = self.directory / CURRENT
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                seq, mac = self._tail_of(fd, path)
                lines = []
                for rec in batch:
                    seq += 1
                    lines.append(seal(self.key, rec, seq, mac))
                    mac = rec["mac"]
                os.write(fd, b"".join(lines))
                if self.fsync:
                    os.fsync(fd)
                st = os.fstat(fd)
                self._tail = (st.st_ino, st.st_size, seq, mac)
            finally:
                os.close(fd)
            write_head(self.directory, self.key, seq, mac)
            self._maybe_rotate(path, st.st_ino, st.st_size, seq, batch[0])
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _tail_of(self, fd: int, path: Path) -> tuple[int, str]:
        """The chain's last (seq, mac): our cache if nobody appended since, else read from disk."""
        st = os.fstat(fd)
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

    def _maybe_rotate(self, path: Path, ino: int, size: int, seq: int, first: Record) -> None:
        if self._first_ts is None or self._first_ts[0] != ino:
            self._first_ts = (ino, self._segment_start(path, first))
        too_old = self.rotate_seconds > 0 and time.time() - self._first_ts[1] >= self.rotate_seconds
        if size < self.rotate_bytes and not too_old:
            return
        first_seq = self._segment_first_seq(path)
        closed = path.with_name(closed_name(first_seq, seq))
        os.rename(path, closed)
        self._tail = None
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
    def _segment_start(path: Path, fallback: Record) -> float:
        for _, line in read_lines(path):
            return float(json.loads(line).get("ts", time.time()))
        return float(fallback.get("ts", time.time()))
