"""The Python API, shaped like the seed's examples: ``StorageEngine(root)`` with async methods.

It drives the same engine, metadata store and blob store as the server, so a data directory
written here is served by ``rs3gw serve --data-dir root`` and vice versa (stop the server first:
the SQLite store takes one writer at a time, but caches bucket state per process). With
``metadata="postgresql://..."`` the metadata lives in that database instead, as with the server's
``--metadata``; object data stays under ``root``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from rs3gw.blobs.base import BlobStore
from rs3gw.blobs.compressed import CompressedBlobStore
from rs3gw.blobs.dedup import ChunkingAlgorithm, DedupBlobStore, DedupConfig
from rs3gw.blobs.encrypted import EncryptedBlobStore
from rs3gw.blobs.keys import LocalKeyProvider
from rs3gw.blobs.local import LocalBlobStore
from rs3gw.codecs import mlformats
from rs3gw.codecs.mlformats import MlMetadata
from rs3gw.datadir import DedupStats, dedup_stats
from rs3gw.engine import Engine, ml_detect
from rs3gw.engine.ingest import BodyChecks
from rs3gw.engine.multipart import CompletedPartRef
from rs3gw.engine.registry import Registry
from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import ListQuery, MetadataStore, VersionQuery
from rs3gw.model import ObjectListing, ObjectMeta, ObjectVersion, Owner
from rs3gw.transform import Step, TransformService

__all__ = [
    "ChunkingAlgorithm",
    "DatasetRegistry",
    "DatasetSplit",
    "DedupConfig",
    "DedupManager",
    "DedupStats",
    "MlMetadata",
    "ModelRegistry",
    "ModelStage",
    "ObjectMetadata",
    "PartInfo",
    "StorageEngine",
    "detect_ml_model_format",
    "extract_ml_metadata",
]

ObjectMetadata = ObjectVersion


def _encrypted(root: Path, fsync: bool) -> EncryptedBlobStore:
    """The server's bottom two layers over a data dir (SSE objects are then readable here too)."""
    return EncryptedBlobStore(LocalBlobStore(root, fsync), LocalKeyProvider(root))


def _metadata_store(root: Path, metadata: str, fsync: bool) -> MetadataStore:
    """The server's choice of store for the same ``metadata`` value (``wiring.build_store``, which
    this layer cannot import): SQLite in the data dir, or a PostgreSQL database."""
    if metadata.startswith(("postgresql://", "postgres://")):
        from rs3gw.meta.postgres import PostgresStore  # psycopg loads only when asked for

        return PostgresStore(metadata)
    if metadata != "sqlite" and not metadata.startswith("sqlite:"):
        raise ValueError(f"metadata must be 'sqlite' or a postgresql:// URL, got {metadata!r}")
    return SqliteStore(root / "meta.db", fsync)


@dataclass(frozen=True)
class PartInfo:
    """What ``upload_part`` returns and ``complete_multipart_upload`` takes back."""

    part_number: int
    etag: str


async def _once(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


def _bytes_reader(data: bytes) -> mlformats.ReadAt:
    async def read(offset: int, length: int) -> bytes:
        return data[offset : offset + length]

    return read


async def detect_ml_model_format(data: bytes) -> str | None:
    """The seed's ``detect_ml_model_format``: "safetensors", "onnx", "pytorch-zip", ... or None.

    Parsing only: a pickle inside is disassembled, never loaded."""
    return await mlformats.detect_format(_bytes_reader(data), len(data))


async def extract_ml_metadata(fmt: str | None, data: bytes) -> MlMetadata | None:
    """Framework, versions, parameter count and tensors; None unless ``data`` is a ``fmt`` model
    (``fmt`` None: any format)."""
    meta = await mlformats.extract(_bytes_reader(data), len(data))
    return meta if meta is not None and fmt in (None, meta.format) else None


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
        metadata: str = "sqlite",
    ):
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        self.owner = Owner.for_account(owner)
        # Always through the compression and encryption readers: the data dir may hold such blobs.
        blobs = CompressedBlobStore(_encrypted(root, fsync)) if blobs is None else blobs
        self._engine = Engine(_metadata_store(root, metadata, fsync), blobs, region)
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

    # ML models
    async def detect_ml_model_format(self, data: bytes) -> str | None:
        return await detect_ml_model_format(data)

    async def extract_ml_metadata(self, fmt: str | None, data: bytes) -> MlMetadata | None:
        return await extract_ml_metadata(fmt, data)

    async def ml_metadata(self, bucket: str, key: str, version_id: str | None = None) -> MlMetadata | None:
        """Full metadata (every tensor) of a stored object, read with ranged reads, not whole."""
        engine = await self._e()
        obj = (await engine.head_object(bucket, key, version_id)).obj
        return await ml_detect.inspect(engine, obj.segments, obj.size)

    async def registry(self) -> Registry:
        """The dataset and model registries of this data directory."""
        return Registry(await self._e())

    # transformations and Object Lambda (the server's GET ?x-rs3gw-transform=<chain>, in process)
    @property
    def transformations(self) -> TransformService:
        """Steps, custom registrations and result cache of this engine (created on first use)."""
        svc: TransformService | None = getattr(self, "_transforms", None)
        if svc is None:
            svc = self._transforms = TransformService()
        return svc

    def register_transformation(
        self, name: str, fn: Callable[..., bytes], content_type: str | None = None
    ) -> None:
        """A custom step usable in any chain: ``fn(data)`` or ``fn(data, params)`` returns the new bytes
        (``name:k=v`` passes ``{"k": "v"}``); ``content_type`` names its output (default: unchanged)."""
        takes_params = len(inspect.signature(fn).parameters) >= 2
        self.transformations.register(name, fn if takes_params else lambda d, _p: fn(d), content_type)

    async def apply_transformation(self, data: bytes, spec: str) -> bytes:
        """Run a chain (``"redact|gzip"``, one step name, ...) over bytes, in a worker thread."""
        svc = self.transformations
        return (await svc.run_async(svc.plan(spec), data, "application/octet-stream")).body

    async def transform_chain(self, data: bytes, steps: list[tuple[str, Mapping[str, str]]]) -> bytes:
        """The seed's ``transform_chain(data, &[(name, params), ...])``."""
        spec = "|".join(Step(n, tuple(p.items())).canonical() for n, p in steps)
        return await self.apply_transformation(data, spec)

    async def get_object_transformed(self, bucket: str, key: str, spec: str) -> tuple[bytes, str]:
        """(bytes, content type) of the object as the chain transforms it, as a GET with
        ``?x-rs3gw-transform=spec`` would return it (same size limits and errors)."""
        svc = self.transformations
        plan = svc.plan(spec)
        head = await self.head_object(bucket, key)
        svc.check_size(plan, head.size)
        data, obj = await self.get_object(bucket, key)
        result = await svc.run_async(plan, data, obj.meta.content_type)
        return result.body, result.content_type


class DatasetSplit(StrEnum):
    TRAIN = "train"
    TEST = "test"
    VALIDATION = "validation"


class ModelStage(StrEnum):
    DEVELOPMENT = "Development"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"


class _RegistryFront:
    def __init__(self, root: str | Path | StorageEngine) -> None:
        self.storage = root if isinstance(root, StorageEngine) else StorageEngine(root)

    @classmethod
    async def new(cls, root: str | Path | StorageEngine) -> Any:
        """``Registry::new(path).await`` in the seed: ``path`` is the gateway's data directory."""
        return cls(root)

    async def close(self) -> None:
        await self.storage.close()


class DatasetRegistry(_RegistryFront):
    """The seed's dataset registry over a data directory; versions are dicts (see engine/registry.py)."""

    async def register_dataset(self, name: str, description: str = "") -> dict[str, Any]:
        return await (await self.storage.registry()).register_dataset(name, description)

    async def create_dataset_version(
        self,
        name: str,
        uri: str,
        parent_version: int | None = None,
        description: str = "",
        transformation: str = "",
        splits: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        reg = await self.storage.registry()
        return await reg.create_dataset_version(
            name,
            uri,
            parent_version,
            description,
            transformation,
            {str(k): v for k, v in (splits or {}).items()},
        )

    async def add_split(
        self, name: str, version: int, split: str, uri: str, object_count: int | None = None
    ) -> dict[str, Any]:
        """``object_count`` (the seed passes one) is checked against what the prefix holds."""
        reg = await self.storage.registry()
        if object_count is not None and (found := (await reg.count_prefix(uri))[0]) != object_count:
            raise ValueError(f"{uri} holds {found} objects, not {object_count}")  # checked before recording
        return await reg.add_split(name, version, str(split), uri)

    async def get_dataset(self, name: str) -> dict[str, Any]:
        return await (await self.storage.registry()).get_dataset(name)

    async def get_dataset_version(self, name: str, version: int) -> dict[str, Any]:
        return await (await self.storage.registry()).get_dataset_version(name, version)

    async def list_datasets(self, prefix: str = "") -> list[dict[str, Any]]:
        return await (await self.storage.registry()).list_datasets(prefix)

    async def lineage(self, name: str, version: int) -> list[dict[str, Any]]:
        return await (await self.storage.registry()).dataset_lineage(name, version)

    async def models_using(self, name: str, version: int | None = None) -> list[dict[str, Any]]:
        return await (await self.storage.registry()).dataset_models(name, version)


class ModelRegistry(_RegistryFront):
    """The seed's model registry over a data directory."""

    async def register_model(
        self, name: str, description: str = "", allow_multiple_production: bool = False
    ) -> dict[str, Any]:
        return await (await self.storage.registry()).register_model(
            name, description, allow_multiple_production
        )

    async def create_model_version(
        self,
        name: str,
        uri: str,
        description: str | None = None,
        version: str | None = None,
        datasets: list[tuple[str, int]] | None = None,
        parent_version: str | None = None,
    ) -> dict[str, Any]:
        reg = await self.storage.registry()
        return await reg.create_model_version(name, uri, description or "", version, datasets, parent_version)

    async def transition_model_stage(
        self, name: str, version: str, stage: str, archive_existing: bool = False
    ) -> dict[str, Any]:
        return await (await self.storage.registry()).transition_model_stage(
            name, version, str(stage), archive_existing
        )

    async def get_latest_version(self, name: str, stage: str | None = None) -> dict[str, Any] | None:
        reg = await self.storage.registry()
        return await reg.get_latest_version(name, None if stage is None else str(stage))

    async def get_model(self, name: str) -> dict[str, Any]:
        return await (await self.storage.registry()).get_model(name)

    async def list_models(self, prefix: str = "") -> list[dict[str, Any]]:
        return await (await self.storage.registry()).list_models(prefix)

    async def lineage(self, name: str, version: str) -> dict[str, Any]:
        return await (await self.storage.registry()).model_lineage(name, version)


class DedupManager:
    """The seed's dedup example over a data directory the server can also serve (with ``--dedup``).

    ``store_object`` creates the bucket on first use; ``get_stats().dedup_ratio`` is the fraction
    of logical bytes saved.
    """

    def __init__(
        self,
        root: str | Path,
        config: DedupConfig | None = None,
        fsync: bool = True,
        metadata: str = "sqlite",
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.config = config or DedupConfig()
        self._blobs = DedupBlobStore(
            CompressedBlobStore(_encrypted(self.root, fsync)), self.root / "dedup.db", self.config, fsync
        )
        self.storage = StorageEngine(self.root, fsync=fsync, blobs=self._blobs, metadata=metadata)
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
        engine = await self.storage._e()  # opening runs crash recovery first
        return await dedup_stats(engine.store, self._blobs)

    async def close(self) -> None:
        await self.storage.close()
        self._blobs.close()

    async def __aenter__(self) -> DedupManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
