"""Reading a data directory's metadata offline: the blobs it references, and dedup statistics.

Everything goes through the ``MetadataStore`` interface, so ``rs3gw fsck``, ``rs3gw dedup stats``
and the Python API work the same over SQLite and PostgreSQL (``--metadata postgresql://...``).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass

from rs3gw.blobs.dedup import DedupBlobStore
from rs3gw.meta.store import BlobUse, MetadataStore

Use = BlobUse  # one blob an object version (or an unfinished upload's part) needs


# -- dedup statistics ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BucketDedupStats:
    blobs: int  # deduplicated blobs: one per single-part object version, one per part
    logical_bytes: int  # bytes of this bucket's deduplicated object data, as clients see them
    stored_bytes: int  # distinct chunks they use (a chunk shared with another bucket counts in both)
    dedup_ratio: float


@dataclass(frozen=True)
class DedupStats:
    """``dedup_ratio`` is the fraction of logical bytes saved (the seed prints it as a percentage)."""

    logical_bytes: int
    stored_bytes: int
    dedup_ratio: float
    chunks: int
    manifests: int
    buckets: dict[str, BucketDedupStats]

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _ratio(logical: int, stored: int) -> float:
    return 1.0 - stored / logical if logical else 0.0


async def dedup_stats(meta: MetadataStore, store: DedupBlobStore) -> DedupStats:
    """``meta`` is the data directory's opened metadata store (the server's own, inside a server)."""
    totals = await asyncio.to_thread(store.index.totals)
    per: dict[str, tuple[int, int, dict[bytes, int]]] = {}
    manifests = set(await asyncio.to_thread(store.index.manifest_ids))
    uses = [u for u in await meta.blob_uses() if u.blob_id in manifests]
    for use in uses:
        if use.version_id.startswith("upload:"):
            continue
        n, logical, chunks = per.get(use.bucket, (0, 0, {}))
        prev = 0
        async for recs in store.manifest_hashes(use.blob_id):
            for end, h in recs:
                chunks[h] = end - prev
                prev = end
        per[use.bucket] = (n + 1, logical + use.size, chunks)
    buckets = {
        b: BucketDedupStats(n, lg, sum(c.values()), _ratio(lg, sum(c.values())))
        for b, (n, lg, c) in sorted(per.items())
    }
    return DedupStats(
        totals.logical_bytes,
        totals.stored_bytes,
        _ratio(totals.logical_bytes, totals.stored_bytes),
        totals.chunks,
        totals.manifests,
        buckets,
    )
