"""``[storage.zerocopy] direct_io``: O_DIRECT writes of large blobs, past the page cache.

A blob written once and read rarely (backups, datasets, model weights) need not evict hotter pages
on its way to disk, nor be copied into the page cache only to be flushed again by the fsync that
publishes it. O_DIRECT asks the kernel to DMA straight from our buffer; it wants the buffer address,
the file offset and the length aligned to the device's logical block size. So:

- the writer flushes whole 4 KiB blocks only; the unaligned rest waits for the next flush;
- bytes are staged in an anonymous ``mmap`` (the kernel hands out whole pages, so its address is
  4096-aligned, which Python's ``bytes`` and ``bytearray`` are not);
- the last, partial block is zero-padded to 4 KiB, written, and the file cut back with
  ``ftruncate`` before the fsync;
- a file starts buffered and is switched to O_DIRECT with ``fcntl(F_SETFL)`` once it reaches the
  threshold: the size of an upload is not known up front, and small blobs gain nothing from it.

When the filesystem refuses O_DIRECT (``EINVAL``: some FUSE and network filesystems, older tmpfs,
block sizes above 4 KiB), the flag is cleared, the bytes are written the ordinary way, and the store
stops trying. Everything else — temp file, fsync, rename, fsync of the directory — is unchanged.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
from dataclasses import dataclass

ALIGN = 4096  # covers 512-byte and 4Kn devices; a larger logical block is refused and falls back
STAGE = 1 << 20  # staging buffer per writer, allocated only once a blob goes direct
_REFUSED = (errno.EINVAL, errno.EOPNOTSUPP)


def set_direct(fd: int, on: bool) -> bool:
    """Turn O_DIRECT on or off for an open file; False when the filesystem refuses it."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    wanted = flags | os.O_DIRECT if on else flags & ~os.O_DIRECT
    if wanted == flags:
        return True
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, wanted)
    except OSError as exc:
        if exc.errno in _REFUSED:
            return False
        raise
    return True


def pwrite_all(fd: int, data: memoryview, pos: int) -> None:
    """Write every byte of ``data`` at ``pos`` (pwrite may write less than asked)."""
    while data:
        n = os.pwrite(fd, data, pos)
        data, pos = data[n:], pos + n


@dataclass
class DirectIO:
    """One store's O_DIRECT policy and what it did (tests and benchmarks read the counters)."""

    threshold: int = 1 << 20  # a blob's bytes go direct from the flush that reaches this size
    supported: bool = True  # False for good after the filesystem refused O_DIRECT once
    direct_bytes: int = 0  # bytes written with O_DIRECT
    fallbacks: int = 0  # times O_DIRECT was refused and the bytes written the ordinary way


class DirectSink:
    """Writes one temp file front to back; every write but the last must be whole blocks long."""

    def __init__(self, fd: int, policy: DirectIO) -> None:
        self.fd = fd
        self.policy = policy
        self.pos = 0
        self.direct = False
        self._stage: mmap.mmap | None = None

    def write(self, data: memoryview) -> None:
        if not data:
            return
        if not self.direct and self._wants_direct(len(data)):
            self.direct = set_direct(self.fd, True)
            if not self.direct:
                self._refused()
        if not self.direct:
            pwrite_all(self.fd, data, self.pos)
            self.pos += len(data)
            return
        if self._stage is None:
            self._stage = mmap.mmap(-1, STAGE)
        stage = memoryview(self._stage)
        try:
            while data:
                n = min(len(data), STAGE)
                padded = -(-n // ALIGN) * ALIGN
                stage[:n] = data[:n]
                if padded > n:  # the blob's last block: zeros past the end, cut off below
                    stage[n:padded] = bytes(padded - n)
                self._put(stage[:padded], data[:n])
                self.pos += n
                data = data[n:]
                if padded > n:
                    os.ftruncate(self.fd, self.pos)
        finally:
            stage.release()

    def _wants_direct(self, n: int) -> bool:
        return self.policy.supported and self.pos % ALIGN == 0 and self.pos + n >= self.policy.threshold

    def _put(self, aligned: memoryview, real: memoryview) -> None:
        """One staged piece with O_DIRECT; if the filesystem turns it down after all, the real
        bytes (not the padding) go the ordinary way from where the direct writes stopped."""
        if not self.direct:  # refused earlier in this same write
            pwrite_all(self.fd, real, self.pos)
            return
        done = 0
        while done < len(aligned):
            try:
                done += os.pwrite(self.fd, aligned[done:], self.pos + done)
            except OSError as exc:
                if exc.errno not in _REFUSED:
                    raise
                set_direct(self.fd, False)
                self.direct = False
                self._refused()
                if done < len(real):
                    pwrite_all(self.fd, real[done:], self.pos + done)
                return
        self.policy.direct_bytes += len(real)

    def _refused(self) -> None:
        self.policy.supported = False
        self.policy.fallbacks += 1

    def close(self) -> None:
        """Release the staging pages (the fd belongs to the writer)."""
        if self._stage is not None:
            self._stage.close()
            self._stage = None
