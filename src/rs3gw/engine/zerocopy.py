"""``[storage.zerocopy]``: GETs of plain blobs on the local backend leave the bytes to the kernel.

The engine hands the protocol an open file span (``blobs.plainfile``) instead of a byte stream; the
HTTP server sends it with ``sendfile(2)`` when the connection allows (plain HTTP; TLS needs the bytes
in user space) and otherwise reads it the ordinary way. Objects below ``min_size`` are cheaper to
read inline than to detect as plain, and reads that need the bytes in hand (verify_on_read, SSE-C)
never take this path. With ``mmap`` the ordinary read of a span (TLS) slices one mapping of the file.
"""

from __future__ import annotations

from dataclasses import dataclass

from rs3gw.blobs.base import BlobStore
from rs3gw.blobs.plainfile import FileSpan, open_span
from rs3gw.model import ObjectVersion


@dataclass
class ZeroCopy:
    enabled: bool = True
    min_size: int = 1 << 20
    mmap: bool = False  # [storage.zerocopy] mmap: spans sendfile cannot send are read through a mapping

    async def span(self, blobs: BlobStore, obj: ObjectVersion, start: int, length: int) -> FileSpan | None:
        """The file span serving ``length`` bytes from ``start``, when they lie in one plain blob."""
        if not self.enabled or length < max(self.min_size, 1):
            return None
        pos = 0
        for seg in obj.segments:
            if pos <= start and start + length <= pos + seg.size:
                return await open_span(blobs, seg.blob_id, seg.size, start - pos, length, self.mmap)
            pos += seg.size
        return None
