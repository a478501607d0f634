"""Room that appends to the data directory must leave free, so that a full disk stays recoverable.

The local blob store refuses blob writes that would cut into a reserve of free space (2% of the
filesystem, 256 KiB to 64 MiB; ``rs3gw.blobs.local``), so that the metadata store can still commit
the deletes that make room again. Writers that append to the data directory as a side effect of
requests (the audit chain, the analytics files) must not use that reserve up either: each HEAD or
GET appends an audit record, so reads alone would otherwise eat it, and then DeleteObject fails with
507 and nothing in the S3 API can free space. They stop at HALF the reserve, leaving the other half
to the metadata commits. This module imports nothing from rs3gw, so every layer may use it.
"""

from __future__ import annotations

import os

RESERVE_MIN = 256 << 10
RESERVE_MAX = 64 << 20


def reserve_bytes(st: os.statvfs_result) -> int:
    """The blob store's reserve for a filesystem (the same formula as ``rs3gw.blobs.local``)."""
    return min(RESERVE_MAX, max(RESERVE_MIN, st.f_blocks * st.f_frsize // 50))


def free_bytes(st: os.statvfs_result) -> int:
    return st.f_bavail * st.f_frsize


def has_room(st: os.statvfs_result, nbytes: int, low: bool) -> bool:
    """Whether appending ``nbytes`` leaves at least half the reserve free.

    ``nbytes`` counts in whole blocks: an append of a few bytes may take a new block, and a
    writer that checked bytes stopped a block short of its limit (seen on a 4 KiB-page tmpfs).

    ``low``: the writer is already refusing (its episode began). It then waits until the whole
    reserve is free again, as blob writes do: a writer resuming at the very edge would flip between
    refusing and appending (and log each flip) while the free space hovers around it."""
    reserve = reserve_bytes(st)
    blocks = -(-nbytes // st.f_frsize)
    return free_bytes(st) - blocks * st.f_frsize >= (reserve if low else reserve // 2)
