"""The Python API, shaped like the seed's examples: ``StorageEngine(root)`` with async methods.

It drives the same engine, metadata store and blob store as the server, so a data directory
written here is served by ``rs3gw serve --data-dir root`` and vice versa (stop the server first:
the SQLite store takes one writer at a time, but caches bucket state per process).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from rs3gw.blobs.base import BlobStore
from rs3gw.blobs.compressed import CompressedBlobStore
from rs3gw.blobs.dedup import ChunkingAlgorithm, DedupBlobStore, DedupConfig
from rs3gw.blobs.local import LocalBlobStore
from rs3gw.datadir import DedupStats, dedup_stats
from rs3gw.engine import Engine
from rs3gw.engine.ingest import BodyChecks
from rs3gw.engine.multipart import CompletedPartRef
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import ListQuery, VersionQuery
from rs3gw.model import ObjectListing, ObjectMeta, ObjectVersion, Owner

__all__ = [
    "ChunkingAlgorithm",
    "DedupConfig",
    "DedupManager",
    "DedupStats",
    "ObjectMetadata",
    "PartInfo",
    "StorageEngine",
]

ObjectMetadata = ObjectVersion


@dataclass(frozen=True)
class PartInfo:
    """What ``upload_part`` returns and ``complete_multipart_upload`` takes back."""

    part_number: int
    etag: str


async def _once(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


class StorageEngine:
    """Embedded object storage over a data directory (the server's layout).

    Methods are async, like the seed's; open lazily on first use or with ``async with``.
    """

    def __init__(
        self,
        root: str | Path,
        owner: str = "admin",
        fsync: bool = True,
        region: str = "us-east-1",
        blobs: BlobStore | None = None,
    ):
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        self.owner = Owner.for_account(owner)
        # Always through the compression reader: the data dir may hold compressed blobs.
        blobs = CompressedBlobStore(LocalBlobStore(root, fsync)) if blobs is None else blobs
        self._engine = Engine(SqliteStore(root / "meta.db", fsync), blobs, region)
        self._open = False

    async def _e(self) -> Engine:
        if not self._open:
            await self._engine.start()
            self._open = True
        return self._engine

    async def close(self) -> None:
        if self._open:
            await self._engine.stop()
            self._open = False

    async def __aenter__(self) -> StorageEngine:
        await self._e()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # buckets
    async def create_bucket(self, bucket: str) -> None:
        await (await self._e()).create_bucket(bucket, self.owner.id)

    async def delete_bucket(self, bucket: str) -> None:
        await (await self._e()).delete_bucket(bucket)

    async def list_buckets(self) -> list[str]:
        return [b.name for b in await (await self._e()).list_buckets(self.owner.id)]

    # objects
    async def put_object(
        self, bucket: str, key: str, content_type: str, metadata: Mapping[str, str], data: bytes
    ) -> str:
        """Store ``data``; returns the ETag (MD5 hex, as S3 clients expect)."""
        meta = ObjectMeta(content_type=content_type, user_meta=dict(metadata))
        res = await (await self._e()).put_object(
            bucket, key, _once(data), meta, BodyChecks(content_length=len(data)), self.owner.id
        )
        return res.etag

    async def get_object(self, bucket: str, key: str) -> tuple[bytes, ObjectMetadata]:
        res = await (await self._e()).get_object(bucket, key)
        assert res.body is not None
        return b"".join([c async for c in res.body]), res.obj

    async def head_object(self, bucket: str, key: str) -> ObjectMetadata:
        return (await (await self._e()).head_object(bucket, key)).obj

    async def delete_object(self, bucket: str, key: str, version_id: str | None = None) -> None:
        """Without ``version_id`` on a versioned bucket this adds a delete marker, as S3 does;
        with one it removes that version (or marker) for good."""
        await (await self._e()).delete_object(bucket, key, version_id)

    # versioning
    async def set_versioning_enabled(self, bucket: str, enabled: bool) -> None:
        """Enable versioning, or suspend it (S3 never lets a bucket return to unversioned)."""
        await (await self._e()).put_bucket_versioning(bucket, "Enabled" if enabled else "Suspended")

    async def get_versioning(self, bucket: str) -> str:
        """ "" (never enabled), "Enabled" or "Suspended"."""
        return await (await self._e()).get_bucket_versioning(bucket)

    async def list_versions(self, bucket: str, key_or_prefix: str = "") -> list[ObjectMetadata]:
        """Every version and delete marker whose key starts with ``key_or_prefix``, in S3's
        order: by key, newest version first (``is_latest`` marks each key's current one)."""
        engine = await self._e()
        out: list[ObjectVersion] = []
        q = VersionQuery(prefix=key_or_prefix)
        while True:
            page = await engine.list_object_versions(bucket, q)
            out += page.versions
            if not page.is_truncated:
                return out
            q = replace(
                q, key_marker=page.next_key_marker or "", version_id_marker=page.next_version_id_marker or ""
            )

    async def get_version(self, bucket: str, key: str, version_id: str) -> tuple[bytes, ObjectMetadata]:
        """One version's bytes and metadata; NoSuchVersion if it never existed, MethodNotAllowed
        if it is a delete marker."""
        res = await (await self._e()).get_object(bucket, key, version_id)
        assert res.body is not None
        return b"".join([c async for c in res.body]), res.obj

    async def list_objects(
        self, bucket: str, prefix: str = "", delimiter: str = "", start_after: str = "", max_keys: int = 1000
    ) -> ObjectListing:
        return await (await self._e()).list_objects(
            bucket, ListQuery(prefix, delimiter, start_after, max_keys)
        )

    # multipart
    async def create_multipart_upload(
        self, bucket: str, key: str, content_type: str, metadata: Mapping[str, str]
    ) -> str:
        meta = ObjectMeta(content_type=content_type, user_meta=dict(metadata))
        return (await (await self._e()).create_multipart_upload(bucket, key, meta, self.owner.id)).upload_id

    async def upload_part(
        self, bucket: str, key: str, upload_id: str, part_number: int, data: bytes
    ) -> PartInfo:
        part = await (await self._e()).upload_part(
            bucket, key, upload_id, part_number, _once(data), BodyChecks(content_length=len(data))
        )
        return PartInfo(part.part_number, part.etag)

    async def complete_multipart_upload(
        self, bucket: str, key: str, upload_id: str, parts: list[PartInfo]
    ) -> str:
        refs = [CompletedPartRef(p.part_number, p.etag, {}) for p in parts]
        return (await (await self._e()).complete_multipart_upload(bucket, key, upload_id, refs)).etag


class DedupManager:
    """The seed's dedup example over a data directory the server can also serve (with ``--dedup``).

    ``store_object`` creates the bucket on first use; ``get_stats().dedup_ratio`` is the fraction
    of logical bytes saved.
    """

    def __init__(self, root: str | Path, config: DedupConfig | None = None, fsync: bool = True) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.config = config or DedupConfig()
        self._blobs = DedupBlobStore(
            CompressedBlobStore(LocalBlobStore(self.root, fsync)), self.root / "dedup.db", self.config, fsync
        )
        self.storage = StorageEngine(self.root, fsync=fsync, blobs=self._blobs)
        self._buckets: set[str] = set()

    @classmethod
    async def new(cls, root: str | Path, config: DedupConfig | None = None) -> DedupManager:
        """``DedupManager::new(path, config).await`` in the seed."""
        return cls(root, config)

    async def store_object(self, bucket: str, key: str, data: bytes) -> str:
        if bucket not in self._buckets:
            if bucket not in await self.storage.list_buckets():
                await self.storage.create_bucket(bucket)
            self._buckets.add(bucket)
        return await self.storage.put_object(bucket, key, "application/octet-stream", {}, data)

    async def get_object(self, bucket: str, key: str) -> bytes:
        return (await self.storage.get_object(bucket, key))[0]

    async def delete_object(self, bucket: str, key: str) -> None:
        """Returns once the chunks are freed: the engine frees blobs in background tasks."""
        await self.storage.delete_object(bucket, key)
        if tasks := list(self.storage._engine._gc_tasks):
            await asyncio.gather(*tasks, return_exceptions=True)

    async def get_stats(self) -> DedupStats:
        await self.storage._e()  # opening runs crash recovery first
        return await dedup_stats(self.root, self._blobs)

    async def close(self) -> None:
        await self.storage.close()
        self._blobs.close()

    async def __aenter__(self) -> DedupManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
