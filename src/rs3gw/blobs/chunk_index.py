"""The dedup layer's chunk index as a protocol: chunks with refcounts, manifests, in-flight writers
and the chunk GC queue.

Two implementations keep the same semantics: ``SqliteChunkIndex`` (``DATA_DIR/dedup.db``, one
gateway or the workers of one data directory) and ``PostgresChunkIndex`` (``dedup_*`` tables in the
metadata database, several gateways on several machines sharing one upstream). Every method that
changes state is one transaction, so a crash between two calls leaves a state the next start (or
another gateway) can finish or roll back.

Invariant: a chunk's ``refs`` = references from committed manifests (minus those already released)
+ references held by live writers. A chunk leaves the table in the same transaction that drops its
count to zero, and its blob is queued for deletion in that transaction.

A manifest records its own references in the index (``manifest_refs``: hash and count, the
writer's refs kept at commit; such a manifest is "tracked"), so freeing it never depends on its
bytes: a damaged or lost manifest blob would otherwise name hashes it never held (leaking the real
chunk's reference, or worse, dropping another manifest's) or nothing at all. Manifests committed
before this existed carry no rows and are still released from their bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class IndexTotals:
    manifests: int
    logical_bytes: int
    chunks: int
    stored_bytes: int


class ChunkIndex(Protocol):
    """What ``DedupBlobStore``, fsck, repair, statistics and metrics use of the index."""

    # -- writers -------------------------------------------------------------------------------
    def begin_writer(self, writer: str) -> None:
        """Register an in-flight writer (and where it runs) before it takes any reference."""

    def take_refs(self, writer: str, counts: Counter[bytes]) -> list[bytes]:
        """Pin chunks already stored (one ref per use); returns the hashes that must be written."""

    def add_intents(self, writer: str, blob_ids: Iterable[str]) -> None:
        """Record blobs before they exist, so a crash mid-write leaves nothing unaccounted for."""

    def publish(self, writer: str, new: Sequence[tuple[bytes, str, int, int]]) -> list[str]:
        """Insert freshly written chunks (hash, blob id, size, uses); returns our blobs that lost a
        race to a concurrent writer of the same hash (garbage now, the caller deletes them)."""

    def commit_manifest(self, writer: str, blob_id: str, size: int, count: int) -> None:
        """The writer's refs become the manifest's, atomically."""

    def end_writer(self, writer: str) -> list[str]:
        """Abort: release the writer's refs; returns blobs to delete (also queued for GC)."""

    def stale_writers(self, at_start: bool) -> list[str]:
        """Writers whose process is gone (``at_start``: this process's own earlier writers too)."""

    # -- manifests -----------------------------------------------------------------------------
    def manifest(self, blob_id: str) -> tuple[int, int, int] | None:
        """(size, chunk count, records released so far), or None for a blob that is no manifest."""

    def release(self, blob_id: str, start: int, hashes: Sequence[bytes]) -> list[str]:
        """Drop one batch of a manifest's refs, resumable after a crash (``released`` advances).
        For a tracked manifest only the refs it holds among ``hashes`` go (its rows shrink)."""

    def tracks_refs(self, blob_id: str) -> bool:
        """Whether the manifest's references are rows of the index (then ``drop_manifest`` alone
        releases them; its bytes need not be read)."""

    def held_refs(self, blob_id: str) -> dict[bytes, int] | None:
        """The references a tracked manifest holds (its ``manifest_refs`` rows: hash -> count),
        None for an untracked manifest or a blob that is no manifest. fsck counts a tracked
        manifest from these (they are what releasing it drops) and checks its bytes against them."""

    def drop_manifest(self, blob_id: str) -> list[str]:
        """Forget a manifest and queue its blob for deletion, releasing in the same transaction
        every reference a tracked manifest still holds; returns the chunk blobs that freed."""

    def blob_ids(self, hashes: Sequence[bytes]) -> dict[bytes, str]:
        """The inner blob of each stored chunk among ``hashes``."""

    def manifest_ids(self) -> list[str]: ...

    def chunk_blob_ids(self) -> set[str]:
        """Every inner blob that holds a chunk (not an outer blob)."""

    def private_ids(self) -> set[str]:
        """Inner blobs the index owns besides chunks and manifests: queued garbage, writers' intents."""

    def protected_ids(self) -> set[str]:
        """Inner blobs that are not outer blobs: chunks, queued garbage, writers' intents, manifests."""

    def chunk_refs(self) -> list[tuple[bytes, int]]:
        """(hash, stored refcount) of every chunk, for fsck's mark phase."""

    def writer_refs(self) -> list[tuple[bytes, int]]:
        """(hash, uses) held by in-flight writers, for fsck's mark phase."""

    # -- garbage -------------------------------------------------------------------------------
    def pending_gc(self) -> list[str]:
        """Up to 1000 queued blobs to delete."""

    def gc_done(self, blob_ids: Sequence[str]) -> None: ...

    def totals(self) -> IndexTotals: ...

    def set_refs(self, fixes: dict[bytes, int]) -> list[str]:
        """fsck: force refcounts; chunks that nothing references are unlinked and queued. Where a
        count is below the references the index records (rows and writers), the tracked
        manifests holding that chunk are untracked (released from their bytes from then on, as
        such a count from bytes saw them), so no later release frees a chunk a good manifest
        holds. fsck itself counts a tracked manifest from its rows (``held_refs``), so its
        counts never fall below them."""

    def swap_chunk(self, h: bytes, old_blob: str, new_blob: str) -> bool:
        """Scrub repair: the chunk's bytes now live in ``new_blob``; ``old_blob`` is queued.
        False (nothing changed) when the chunk moved or went meanwhile."""

    def close(self) -> None: ...
