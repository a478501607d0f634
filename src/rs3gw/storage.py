"""The Python API, shaped like the seed's examples: ``StorageEngine(root)`` with async methods.

It drives the same engine, metadata store and blob store as the server, so a data directory
written here is served by ``rs3gw serve --data-dir root`` and vice versa (stop the server first:
the SQLite store takes one writer at a time, but caches bucket state per process).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from rs3gw.blobs.local import LocalBlobStore
from rs3gw.engine import Engine
from rs3gw.engine.ingest import BodyChecks
from rs3gw.engine.multipart import CompletedPartRef
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import ListQuery
from rs3gw.model import ObjectListing, ObjectMeta, ObjectVersion, Owner

__all__ = ["ObjectMetadata", "PartInfo", "StorageEngine"]

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

    def __init__(self, root: str | Path, owner: str = "admin", fsync: bool = True, region: str = "us-east-1"):
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        self.owner = Owner.for_account(owner)
        self._engine = Engine(SqliteStore(root / "meta.db", fsync), LocalBlobStore(root, fsync), region)
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

    async def delete_object(self, bucket: str, key: str) -> None:
        await (await self._e()).delete_object(bucket, key)

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
