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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rs3gw import errors
from rs3gw.model import (
    Bucket,
    ObjectListing,
    ObjectMeta,
    ObjectVersion,
    Part,
    PartListing,
    Segment,
    Upload,
    UploadListing,
    VersionListing,
)

_HEX = frozenset("0123456789abcdef")


@lru_cache(maxsize=16)
def bucket_with_configs_sql(count: int, mark: str) -> str:
    """The one-query ``get_bucket_with_configs`` of the SQL stores (``mark``: the driver's
    placeholder): the bucket row and one LEFT JOIN per document name, each a lookup of
    bucket_config's primary key (bucket, name); parameters are the names, then the bucket."""
    joins = " ".join(
        f"LEFT JOIN bucket_config c{i} ON c{i}.bucket=b.name AND c{i}.name={mark}" for i in range(count)
    )
    values = "".join(f", c{i}.value" for i in range(count))
    return (
        f"SELECT b.name, b.owner_id, b.created, b.region, b.versioning{values} FROM buckets b {joins} "
        f"WHERE b.name={mark}"
    )


def same_version(cur: ObjectVersion, expect: ObjectVersion | None) -> bool:
    """Whether ``cur`` is still the version ``expect`` was read as (None: no expectation)."""
    return expect is None or (cur.etag == expect.etag and cur.last_modified == expect.last_modified)


def check_delete_match(cur: ObjectVersion | None, key: str, if_match: str) -> None:
    """A conditional delete's rule (If-Match, or <ETag> in DeleteObjects), on the version it names:
    412 unless that version has the ETag (``*`` matches any); an ETag that finds no object is
    NoSuchKey and ``*`` is 412. The stores run it inside the delete's transaction, so a PUT racing
    the delete cannot slip between the check and the removal."""
    if cur is None or cur.delete_marker:
        if if_match != "*":
            raise errors.NoSuchKey(Key=key)
        raise errors.PreconditionFailed(Condition="If-Match")
    if if_match != "*" and if_match.strip('"') != cur.etag:
        raise errors.PreconditionFailed(Condition="If-Match")


def check_replacement(
    cur: ObjectVersion | None, key: str, version_id: str, segments: tuple[Segment, ...], expect: ObjectVersion
) -> list[str]:
    """``replace_segments``' checks, shared by the stores (run inside their transaction, on the
    version as stored); returns the blob ids the version stops using."""
    if cur is None or cur.delete_marker:
        raise errors.NoSuchVersion(Key=key, VersionId=version_id)
    if not same_version(cur, expect) or cur.segments != expect.segments:
        raise errors.PreconditionFailed()
    if sum(s.size for s in segments) != cur.size:
        raise errors.InternalError("replacement segments do not add up to the object's size")
    keep = {s.blob_id for s in segments}
    return list(dict.fromkeys(s.blob_id for s in cur.segments if s.blob_id not in keep))


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
class BlobUse:
    """One blob an object version (or an unfinished upload's part) needs: what fsck checks."""

    bucket: str
    key: str
    version_id: str  # "upload:<id>#<part>" for parts of unfinished multipart uploads
    blob_id: str
    size: int


@dataclass(frozen=True)
class AccessHit:
    """GETs of one object version since the last flush, for ``add_access``.

    ``etag`` and ``last_modified`` are those of the version that was read: a ``null`` version id
    names whatever was written last, so the store adds the hit only while that exact version is
    still stored; one replaced (or deleted) between the GET and the flush drops it."""

    bucket: str
    key: str
    version_id: str
    etag: str
    last_modified: float
    last: float  # time of the latest of these GETs
    count: int


@dataclass(frozen=True)
class AccessStats:
    """A version's recorded GETs: when it was last read and how often."""

    last: float
    count: int


def merged_access(system: Mapping[str, str], row: AccessStats | None) -> AccessStats | None:
    """A version's GETs: the ``object_access`` row plus what an older rs3gw wrote into the metadata
    document (``access-last``/``access-count`` in ``system``), so counts survive the upgrade.
    None when the version was never read."""
    legacy_n = int(system.get("access-count", "0") or "0")
    legacy_last = float(system.get("access-last", "0") or "0")
    if row is None:
        return AccessStats(legacy_last, legacy_n) if legacy_n or legacy_last else None
    return AccessStats(max(row.last, legacy_last), row.count + legacy_n)


@dataclass(frozen=True)
class DeleteOutcome:
    removed: ObjectVersion | None  # the version whose data went away, if any
    marker: ObjectVersion | None  # the delete marker created, if any
    freed_blobs: list[str]


class MetadataStore(ABC):
    """Bucket, object-version and multipart metadata. Raises S3Error subclasses for S3 semantics."""

    # Seconds a freed blob must stay readable before deletion. Nonzero for stores that several
    # gateway processes share: another gateway may have looked the blob up just before a write
    # here freed it, and is about to open it. ``pending_gc`` then returns only blobs queued at
    # least this long ago, and the engine waits this long before deleting what a write freed.
    gc_grace: float = 0.0

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

    async def list_all_buckets(self) -> list[Bucket]:
        """Every bucket of every owner, by name: background workers and admin commands must also see
        buckets of store-managed users, whose owner ids no configuration lists. Not abstract so
        stores written against the older interface keep loading; the bundled stores answer in one query."""
        raise NotImplementedError(f"{type(self).__name__} cannot list all buckets")

    @abstractmethod
    async def delete_bucket(self, name: str) -> list[str]:
        """Raises BucketNotEmpty; aborts the bucket's unfinished uploads and returns their blobs."""

    @abstractmethod
    async def set_versioning(self, name: str, status: str) -> None: ...

    @abstractmethod
    async def get_bucket_config(self, bucket: str, name: str) -> str | None:
        """A stored configuration document (e.g. "tagging", "cors", "lifecycle") or None."""

    async def get_bucket_with_config(self, bucket: str, name: str) -> tuple[Bucket | None, str | None]:
        """``get_bucket`` and ``get_bucket_config`` together (config None when the bucket is
        missing): authorization reads both on every request, and a store may answer in one query."""
        rec = await self.get_bucket(bucket)
        return rec, (await self.get_bucket_config(bucket, name) if rec is not None else None)

    async def get_bucket_with_configs(
        self, bucket: str, names: tuple[str, ...]
    ) -> tuple[Bucket | None, tuple[str | None, ...]]:
        """``get_bucket`` and several ``get_bucket_config`` together, the documents in ``names``
        order (all None when the bucket is missing): the authorization read of GET/HEAD/PUT also
        needs the lifecycle document (x-amz-expiration), and a store may answer in one query."""
        rec = await self.get_bucket(bucket)
        if rec is None:
            return None, (None,) * len(names)
        docs = await self.get_bucket_configs(bucket, names)
        return rec, tuple(docs.get(n) for n in names)

    async def get_bucket_configs(self, bucket: str, names: Sequence[str]) -> dict[str, str]:
        """Several configuration documents of one bucket, by name (missing ones absent): every
        PutObject needs three (object lock, encryption, compression), and a store may answer in one
        query. Not abstract, so stores written against the older interface keep loading."""
        out: dict[str, str] = {}
        for name in names:
            if (value := await self.get_bucket_config(bucket, name)) is not None:
                out[name] = value
        return out

    @abstractmethod
    async def put_bucket_config(self, bucket: str, name: str, value: str | None) -> None:
        """Store (or with None, delete) a configuration document; raises NoSuchBucket."""

    # server-wide documents (store-managed users and access keys): shared by every gateway on the store
    @abstractmethod
    async def get_server_doc(self, kind: str, name: str) -> str | None: ...

    @abstractmethod
    async def list_server_docs(self, kind: str) -> dict[str, str]:
        """Every document of ``kind``, by name."""

    @abstractmethod
    async def put_server_doc(self, kind: str, name: str, value: str | None, create: bool = False) -> bool:
        """Store (or with None, delete) a document; with ``create``, only when none exists yet.

        True when a row was written or deleted: False tells "already exists" / "did not exist"."""

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
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        marker: ObjectVersion | None,
        if_match: str | None = None,
    ) -> DeleteOutcome:
        """Delete a version, or (version_id None) the current null version; with ``marker`` given,
        insert it as the new latest version instead of removing data (versioned delete).
        ``if_match``: checked by ``check_delete_match`` in the same transaction."""

    @abstractmethod
    async def update_object_meta(
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        meta: ObjectMeta,
        expect: ObjectVersion | None = None,
    ) -> ObjectVersion:
        """Replace one version's metadata in place (tags, restore state); raises NoSuchKey.

        ``meta`` is usually derived from a version read earlier; pass that version as ``expect``
        and the write is refused with PreconditionFailed when the stored version is no longer it
        (same etag and last-modified). A ``null`` version id names whatever was written last, so
        without this check an overwrite in between would get the older object's metadata."""

    @abstractmethod
    async def replace_segments(
        self,
        bucket: str,
        key: str,
        version_id: str,
        segments: tuple[Segment, ...],
        meta: ObjectMeta,
        expect: ObjectVersion,
    ) -> list[str]:
        """Point one version at new blobs holding the same bytes, with ``meta``, in one transaction:
        the scrubber's repair of a corrupt version from a backup copy. Returns the old blob ids the
        version no longer uses, queued for GC (the caller frees them).

        Refused with PreconditionFailed unless the stored version is still ``expect`` (same etag,
        last-modified and segments), so a version overwritten or deleted during the repair is never
        given blobs written for its predecessor; with InternalError when the new segments do not
        add up to the version's size. NoSuchVersion when the version is gone."""

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

    # GET counts: a table of their own, never the metadata document (which LIST shares parsed
    # between versions while their texts are identical). Rows go with their version: the
    # transaction that removes a version deletes its row.
    @abstractmethod
    async def add_access(self, hits: Sequence[AccessHit]) -> int:
        """Add a flush's GET counts in one transaction (count += n, last = max); a hit whose
        version is gone or was replaced (etag / last-modified differ) is dropped. Returns the
        number of hits recorded."""

    @abstractmethod
    async def get_access(self, bucket: str, key: str, version_id: str) -> AccessStats | None:
        """One version's recorded GETs (not including legacy document counts: see ``merged_access``)."""

    @abstractmethod
    async def bucket_access(self, bucket: str) -> dict[tuple[str, str], AccessStats]:
        """Every recorded version of a bucket, by (key, version id): one query for a whole-bucket
        pass (the storage report, the INTELLIGENT_TIERING scan) instead of one per version."""

    # blob garbage queue
    @abstractmethod
    async def pending_gc(self, limit: int = 1000) -> list[str]: ...

    @abstractmethod
    async def gc_done(self, blob_ids: list[str]) -> None: ...

    @abstractmethod
    async def referenced_blobs(self) -> set[str]:
        """Every blob id any version or part still uses (for fsck and orphan sweeps)."""

    # offline checks (fsck, dedup statistics): not abstract, so older third-party stores keep loading
    async def blob_uses(self) -> list[BlobUse]:
        """Every blob every version (delete markers have none) and every unfinished upload's part
        uses, with the size the metadata records: fsck reads the metadata through this, whatever the
        store, instead of opening a database file itself."""
        raise NotImplementedError(f"{type(self).__name__} cannot list blob uses")

    async def queued_blobs(self) -> set[str]:
        """Every blob in the GC queue, however recently queued (``pending_gc`` holds back those
        inside ``gc_grace``): they are freed, not orphans, and go at the next collection."""
        raise NotImplementedError(f"{type(self).__name__} cannot list its GC queue")

    # registry: small JSON documents (datasets, models) kept beside the object metadata
    @abstractmethod
    async def registry_get(self, kind: str, name: str) -> tuple[str, int] | None:
        """(document, revision) of one entry, or None."""

    @abstractmethod
    async def registry_put(self, kind: str, name: str, doc: str, expect_revision: int) -> int:
        """Write an entry if its revision is still ``expect_revision`` (0: must not exist yet);
        returns the new revision, raises RegistryConflict otherwise (optimistic concurrency)."""

    @abstractmethod
    async def registry_list(self, kind: str, prefix: str = "") -> list[tuple[str, str, int]]:
        """(name, document, revision) of every entry of ``kind`` whose name starts with ``prefix``."""

    # statistics (not abstract: a portable default, which stores may replace with one query)
    async def bucket_usage(self, bucket: str) -> tuple[int, int]:
        """(object versions, bytes) stored in a bucket, delete markers excluded, for metrics.

        The default pages through the version listing; it runs periodically, never per request.
        """
        count = size = 0
        q = VersionQuery(max_keys=1000)
        while True:
            page = await self.list_versions(bucket, q)
            for v in page.versions:
                if not v.delete_marker:
                    count, size = count + 1, size + v.size
            if not page.is_truncated:
                return count, size
            q = VersionQuery(
                key_marker=page.next_key_marker or "",
                version_id_marker=page.next_version_id_marker or "",
                max_keys=1000,
            )


async def all_buckets(store: MetadataStore, owner_ids: Sequence[str] = ()) -> list[Bucket]:
    """Every bucket, by name; a store without ``list_all_buckets`` falls back to ``owner_ids``' buckets."""
    try:
        return await store.list_all_buckets()
    except NotImplementedError:
        seen: dict[str, Bucket] = {}
        for owner in owner_ids:
            for b in await store.list_buckets(owner):
                seen.setdefault(b.name, b)
        return [seen[n] for n in sorted(seen)]
