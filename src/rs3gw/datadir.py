"""Reading a data directory offline: the blobs its metadata references, and dedup statistics.

Reads ``meta.db`` through a read-only SQLite connection, so it works while a server runs.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from rs3gw.blobs.dedup import DedupBlobStore


@dataclass(frozen=True)
class Use:
    """One blob an object version (or an in-progress upload's part) needs."""

    bucket: str
    key: str
    version_id: str  # "upload:<id>#<part>" for parts of unfinished multipart uploads
    blob_id: str
    size: int


def _key(raw: object) -> str:
    return raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else str(raw)


def iter_uses(data_dir: Path) -> Iterator[Use]:
    """Every blob the metadata references, streamed from a read-only connection."""
    path = data_dir / "meta.db"
    if not path.exists():
        return
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT bucket, key, version_id, segments FROM objects WHERE delete_marker=0")
        for bucket, key, vid, segs in rows:
            for blob_id, size in json.loads(segs):
                yield Use(bucket, _key(key), vid, blob_id, size)
        rows = db.execute(
            "SELECT u.bucket, u.key, p.upload_id, p.part_number, p.blob_id, p.size "
            "FROM parts p LEFT JOIN uploads u ON u.upload_id = p.upload_id"
        )
        for bucket, key, upload_id, part, blob_id, size in rows:
            yield Use(bucket or "", _key(key or ""), f"upload:{upload_id}#{part}", blob_id, size)
    finally:
        db.close()


def queued_blobs(data_dir: Path) -> set[str]:
    path = data_dir / "meta.db"
    if not path.exists():
        return set()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {r[0] for r in db.execute("SELECT blob_id FROM blob_gc")}
    finally:
        db.close()


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


async def dedup_stats(data_dir: Path, store: DedupBlobStore) -> DedupStats:
    totals = await asyncio.to_thread(store.index.totals)
    per: dict[str, tuple[int, int, dict[bytes, int]]] = {}
    manifests = set(await asyncio.to_thread(store.index.manifest_ids))
    # Off the event loop: the admin API calls this inside a running server.
    uses = await asyncio.to_thread(lambda: [u for u in iter_uses(data_dir) if u.blob_id in manifests])
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
