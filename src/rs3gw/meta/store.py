"""The metadata-store contract: every implementation (SQLite, PostgreSQL later) passes one suite.

Writes that must be atomic with a check (conditional PUT, multipart completion, overwrite) are one
method each, so each implementation can run them in a single transaction. Methods that replace or
drop data return the blob ids that became unreferenced; the store has already queued them in its
durable GC queue, so a crash between commit and deletion leaks nothing.
"""

from __future__ import annotations

import secrets
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

from rs3gw.model import (
    Bucket,
    ObjectListing,
    ObjectMeta,
    ObjectVersion,
    Part,
    PartListing,
    Upload,
    UploadListing,
    VersionListing,
)

_HEX = frozenset("0123456789abcdef")


def new_version_id() -> str:
    """A unique version id: 16 hex digits of creation time (ns), then 16 random ones.

    S3's ids are opaque to clients; the time prefix lets a store place a version-id-marker whose
    version was deleted between two listing pages (see ``version_time``).
    """
    return f"{time.time_ns():016x}{secrets.token_hex(8)}"


def version_time(version_id: str) -> int | None:
    """The creation time (ns) in an id ``new_version_id`` made, or None for any other string."""
    if len(version_id) != 32 or not set(version_id) <= _HEX:
        return None
    return int(version_id[:16], 16)


@dataclass(frozen=True)
class WriteCondition:
    """Preconditions checked inside the write transaction (S3 conditional writes)."""

    if_none_match_any: bool = False  # If-None-Match: * -> fail when a current object exists
    if_match: str | None = None  # etag the current object must have


@dataclass(frozen=True)
class ListQuery:
    prefix: str = ""
    delimiter: str = ""
    start_after: str = ""  # exclusive; a key or a common prefix
    max_keys: int = 1000


@dataclass(frozen=True)
class VersionQuery:
    prefix: str = ""
    delimiter: str = ""
    key_marker: str = ""
    version_id_marker: str = ""
    max_keys: int = 1000


@dataclass(frozen=True)
class DeleteOutcome:
    removed: ObjectVersion | None  # the version whose data went away, if any
    marker: ObjectVersion | None  # the delete marker created, if any
    freed_blobs: list[str]


class MetadataStore(ABC):
    """Bucket, object-version and multipart metadata. Raises S3Error subclasses for S3 semantics."""

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    # buckets
    @abstractmethod
    async def create_bucket(self, bucket: Bucket) -> None:
        """Raises BucketAlreadyOwnedByYou / BucketAlreadyExists."""

    @abstractmethod
    async def get_bucket(self, name: str) -> Bucket | None: ...

    @abstractmethod
    async def list_buckets(self, owner_id: str) -> list[Bucket]: ...

    @abstractmethod
    async def delete_bucket(self, name: str) -> list[str]:
        """Raises BucketNotEmpty; aborts the bucket's unfinished uploads and returns their blobs."""

    @abstractmethod
    async def set_versioning(self, name: str, status: str) -> None: ...

    @abstractmethod
    async def get_bucket_config(self, bucket: str, name: str) -> str | None:
        """A stored configuration document (e.g. "tagging", "cors", "lifecycle") or None."""

    @abstractmethod
    async def put_bucket_config(self, bucket: str, name: str, value: str | None) -> None:
        """Store (or with None, delete) a configuration document; raises NoSuchBucket."""

    # objects
    @abstractmethod
    async def get_object(self, bucket: str, key: str, version_id: str | None = None) -> ObjectVersion | None:
        """The latest version (which may be a delete marker) or the given version."""

    @abstractmethod
    async def put_object(self, obj: ObjectVersion, cond: WriteCondition, keep_old: bool) -> list[str]:
        """Make ``obj`` the latest version; ``keep_old`` keeps prior versions (versioning Enabled),
        otherwise the ``null`` version is replaced. Raises PreconditionFailed / NoSuchBucket."""

    @abstractmethod
    async def delete_object(
        self, bucket: str, key: str, version_id: str | None, marker: ObjectVersion | None
    ) -> DeleteOutcome:
        """Delete a version, or (version_id None) the current null version; with ``marker`` given,
        insert it as the new latest version instead of removing data (versioned delete)."""

    @abstractmethod
    async def update_object_meta(
        self, bucket: str, key: str, version_id: str | None, meta: ObjectMeta
    ) -> ObjectVersion:
        """Replace one version's metadata in place (tags, restore state); raises NoSuchKey."""

    @abstractmethod
    async def list_objects(self, bucket: str, q: ListQuery) -> ObjectListing: ...

    @abstractmethod
    async def list_versions(self, bucket: str, q: VersionQuery) -> VersionListing: ...

    # multipart
    @abstractmethod
    async def create_upload(self, upload: Upload) -> None: ...

    @abstractmethod
    async def get_upload(self, upload_id: str) -> Upload | None: ...

    @abstractmethod
    async def put_part(self, upload_id: str, part: Part) -> list[str]:
        """Raises NoSuchUpload (the caller then frees the part's blob)."""

    @abstractmethod
    async def get_parts(self, upload_id: str) -> dict[int, Part]: ...

    @abstractmethod
    async def list_parts(self, upload_id: str, marker: int, max_parts: int) -> PartListing: ...

    @abstractmethod
    async def complete_upload(
        self, upload_id: str, obj: ObjectVersion, used_parts: set[int], cond: WriteCondition, keep_old: bool
    ) -> list[str]:
        """Atomically turn the upload into ``obj``; unused parts' blobs are freed."""

    @abstractmethod
    async def abort_upload(self, upload_id: str) -> list[str]: ...

    @abstractmethod
    async def list_uploads(
        self,
        bucket: str,
        prefix: str,
        delimiter: str,
        key_marker: str,
        upload_id_marker: str,
        max_uploads: int,
    ) -> UploadListing: ...

    # blob garbage queue
    @abstractmethod
    async def pending_gc(self, limit: int = 1000) -> list[str]: ...

    @abstractmethod
    async def gc_done(self, blob_ids: list[str]) -> None: ...

    @abstractmethod
    async def referenced_blobs(self) -> set[str]:
        """Every blob id any version or part still uses (for fsck and orphan sweeps)."""
