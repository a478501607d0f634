"""The engine: S3 semantics over a metadata store and a blob store, the only API handlers call.

Every write is: stream into a new blob (fsynced, published) → one metadata transaction → free
the blobs that transaction unreferenced. A crash at any point leaves the old object or the new one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from rs3gw import errors
from rs3gw.blobs.base import BlobStore, Encryption, WriteOptions
from rs3gw.blobs.plainfile import FileSpan
from rs3gw.codecs.mlformats import SNIFF_BYTES
from rs3gw.engine import ml_detect
from rs3gw.engine import object_lock as lock_rules
from rs3gw.engine import sse as sse_config
from rs3gw.engine.archive import VERSION_STATE, Tiers
from rs3gw.engine.conditions import Conditions, check_copy_source, check_read
from rs3gw.engine.ingest import BodyChecks, ingest
from rs3gw.engine.names import check_bucket_name, check_key, check_user_meta
from rs3gw.engine.object_lock import LockConfig, ObjectLock, without_lock
from rs3gw.engine.quarantine import check_readable
from rs3gw.engine.ranges import ByteRange, parse_range
from rs3gw.engine.sse import (
    NO_SSE,
    LazyBindings,
    SseRequest,
    read_bindings,
    with_customer_key,
    without_sse,
    write_binding,
)
from rs3gw.engine.sse import check_read as check_sse_read
from rs3gw.engine.verify_read import ReadVerifier
from rs3gw.engine.zerocopy import ZeroCopy
from rs3gw.meta.store import (
    DeleteOutcome,
    ListQuery,
    MetadataStore,
    VersionQuery,
    WriteCondition,
    check_delete_match,
    new_version_id,
)
from rs3gw.model import (
    NULL_VERSION,
    Bucket,
    ObjectListing,
    ObjectMeta,
    ObjectVersion,
    Segment,
    VersionListing,
)
from rs3gw.timefmt import http_date

log = logging.getLogger("rs3gw.engine")
MAX_OBJECT_SIZE = 5 * 1024**4
CLASSIC_REGION = "us-east-1"  # AWS's default region, whose buckets have no LocationConstraint
NO_CONDITION = WriteCondition()
COMPRESSION = "compression"  # bucket config: a bucket's compression override (``write_options``)
# The bucket configuration documents every PutObject reads, fetched together (``put_config``).
PUT_CONFIGS = (lock_rules.CONFIG, sse_config.CONFIG_NAME, COMPRESSION)


# System metadata a copy never takes from its source: the ACL (S3 never copies it), the state of
# the source version (VERSION_STATE: archive tier, restore, access tier and counts) and the part
# checksums of a multipart source (engine/multipart.py PART_CHECKSUMS; a copy is one part).
_NOT_COPIED = frozenset(("acl", "part-checksums", *VERSION_STATE))


@dataclass(frozen=True)
class PutConfig:
    """A bucket's write-time configuration as one PutObject sees it: read once per request (one
    store query) and shared by the handler's Object Lock digest check and the engine."""

    lock: LockConfig | None = None  # Object Lock configuration; None: lock not enabled
    encryption: str | None = None  # default-encryption document (engine.sse.BucketEncryption)
    compression: str | None = None  # compression override (WriteOptions.compression)

    @property
    def lock_default(self) -> bool:
        """Whether new versions get a default retention (PutObject then needs a body digest)."""
        return lock_rules.has_default(self.lock)


@dataclass(frozen=True)
class PutResult:
    etag: str
    version_id: str | None  # None when the bucket never had versioning
    checksums: dict[str, str]
    checksum_type: str
    size: int
    last_modified: float = 0.0
    encryption: dict[str, str] = field(default_factory=dict)  # the object's sse-* system metadata


@dataclass(frozen=True)
class ReadResult:
    obj: ObjectVersion
    range: ByteRange | None
    body: AsyncIterator[bytes] | None  # None for HEAD
    versioned: bool = False  # the bucket has (or had) versioning: S3 then reports version ids
    file: FileSpan | None = None  # [storage.zerocopy]: the same bytes as an open file span (body reads it)


@dataclass(frozen=True)
class DeleteResult:
    version_id: str | None
    delete_marker: bool


class ObjectEngine:
    """Buckets and objects; ``engine.multipart.Engine`` extends it with multipart uploads."""

    def __init__(
        self, store: MetadataStore, blobs: BlobStore, region: str, max_object_size: int = MAX_OBJECT_SIZE
    ):
        self.store = store
        self.blobs = blobs
        self.region = region
        self.max_object_size = max_object_size
        self._gc_tasks: set[asyncio.Task[None]] = set()
        self._to_free: list[str] = []  # freed blobs waiting for the one deleting task (``free``)
        self._freeing: asyncio.Task[None] | None = None
        self._reading: Counter[str] = Counter()  # blob id → reads in progress in this process
        self._deferred: set[str] = set()  # freed while being read
        self.sse_c_over_http = False  # [encryption] sse_c_over_http: customer keys without TLS
        self.default_sse = ""  # [encryption] default: "AES256" encrypts writes that ask for nothing
        self.object_lock = ObjectLock(self)
        self.tiers = Tiers(self)  # archival tiers, restores, access tracking
        self.read_check = ReadVerifier()  # [storage] verify_on_read (engine.verify_read)
        self.zerocopy = ZeroCopy()  # [storage.zerocopy] (engine.zerocopy)
        self.read_cache: BlobStore | None = None  # [cache] predictive cache over ``blobs``, for reads only

    async def start(self) -> None:
        await self.store.open()
        await self._drain_gc()
        # After the queue drains, an unreferenced blob is debris of a crash between publish and commit.
        if swept := await self.blobs.sweep_orphans(self.store.referenced_blobs):
            log.warning("removed %d orphan blobs left by an earlier crash", swept)

    async def stop(self) -> None:
        if self._gc_tasks:
            if self.store.gc_grace:  # deletions still in their grace wait stay queued for a later start
                for task in self._gc_tasks:
                    task.cancel()
            await asyncio.gather(*self._gc_tasks, return_exceptions=True)
        await self.store.close()

    # -- garbage -------------------------------------------------------------------------------
    def free(self, blob_ids: Sequence[str]) -> None:
        """Delete unreferenced blobs in the background; the store's queue retries after a crash."""
        if not blob_ids:
            return
        # One task drains a queue instead of a task per call: under load the blobs freed by many
        # overwrites share one delete (one thread hop per blob store) and one gc_done commit.
        self._to_free.extend(blob_ids)
        loop, running = asyncio.get_running_loop(), self._freeing
        if running is None or running.done() or running.get_loop() is not loop:  # none, or a dead loop's
            task = self._freeing = loop.create_task(self._free_queued())
            self._gc_tasks.add(task)
            task.add_done_callback(self._gc_tasks.discard)

    async def _free_queued(self) -> None:
        try:
            while self._to_free:
                batch, self._to_free = self._to_free, []
                await self._free(batch, self.store.gc_grace)
        finally:
            if self._freeing is asyncio.current_task():
                self._freeing = None

    async def _free(self, blob_ids: list[str], grace: float = 0.0) -> None:
        if grace:  # another gateway may have looked these up just before they were freed
            await asyncio.sleep(grace)
        busy = {b for b in blob_ids if self._reading[b] > 0}
        if busy:  # read_segments frees these when its last reader finishes
            self._deferred.update(busy)
            blob_ids = [b for b in blob_ids if b not in busy]
            if not blob_ids:
                return
        try:
            await self.blobs.delete(blob_ids)
            await self.store.gc_done(blob_ids)
        except Exception:  # deletion is retried from the queue at the next start
            log.exception("blob deletion failed; will retry")

    async def _drain_gc(self) -> None:
        while pending := await self.store.pending_gc():
            await self._free(pending)
            if len(pending) < 1000:
                break

    # -- buckets -------------------------------------------------------------------------------
    async def create_bucket(
        self, name: str, owner_id: str, location: str | None = None, object_lock: bool = False
    ) -> Bucket:
        """``object_lock``: x-amz-bucket-object-lock-enabled, which also enables versioning."""
        check_bucket_name(name)
        if location == CLASSIC_REGION:
            # us-east-1 is never a LocationConstraint on AWS (the classic region is the absence of
            # one): 400 InvalidLocationConstraint, even on a us-east-1 endpoint. Tools then omit it.
            raise errors.InvalidLocationConstraint(LocationConstraint=location)
        if location and location != self.region:
            raise errors.error_class("IllegalLocationConstraintException")(
                f"The {location} location constraint is incompatible for the region specific endpoint "
                "this request was sent to."
            )
        region = self.region
        bucket = Bucket(name, owner_id, time.time(), region, "Enabled" if object_lock else "")
        await self.store.create_bucket(bucket)
        if object_lock:
            await self.object_lock.enable_on_new_bucket(name)
        return bucket

    async def get_bucket(self, name: str, known: Bucket | None = None) -> Bucket:
        """``known``: the record this request already read (its authorization does), reused
        instead of a second store read; ignored when it names another bucket."""
        if known is not None and known.name == name:
            return known
        bucket = await self.store.get_bucket(name)
        if bucket is None:
            raise errors.NoSuchBucket(BucketName=name)
        return bucket

    async def list_buckets(self, owner_id: str) -> list[Bucket]:
        return await self.store.list_buckets(owner_id)

    async def delete_bucket(self, name: str) -> None:
        await self.get_bucket(name)
        self.free(await self.store.delete_bucket(name))

    async def get_bucket_versioning(self, name: str) -> str:
        return (await self.get_bucket(name)).versioning

    async def put_bucket_versioning(self, name: str, status: str) -> None:
        await self.get_bucket(name)
        await self.object_lock.check_versioning_change(name, status)
        await self.store.set_versioning(name, status)

    async def get_bucket_config(self, bucket: str, name: str) -> str | None:
        """A bucket's stored configuration document; NoSuchBucket when the bucket is missing."""
        await self.get_bucket(bucket)
        return await self.store.get_bucket_config(bucket, name)

    async def put_bucket_config(self, bucket: str, name: str, value: str | None) -> None:
        await self.get_bucket(bucket)
        await self.store.put_bucket_config(bucket, name, value)

    async def write_options(self, bucket: str) -> WriteOptions:
        """How the bucket wants new data stored; read per write so an override applies at once,
        in every worker process."""
        return WriteOptions(compression=await self.store.get_bucket_config(bucket, COMPRESSION))

    async def put_config(self, bucket: str) -> PutConfig:
        """The configuration a PutObject into ``bucket`` needs, in one store read; per request, so a
        change applies at once in every worker process (as ``write_options`` is)."""
        return self.put_config_of(await self.store.get_bucket_configs(bucket, PUT_CONFIGS))

    @staticmethod
    def put_config_of(docs: Mapping[str, str]) -> PutConfig:
        """``put_config`` from the ``PUT_CONFIGS`` documents already read (name -> text)."""
        lock = docs.get(lock_rules.CONFIG)
        return PutConfig(
            None if lock is None else LockConfig.loads(lock),
            docs.get(sse_config.CONFIG_NAME),
            docs.get(COMPRESSION),
        )

    async def update_object_meta(
        self,
        bucket: str,
        key: str,
        version_id: str | None,
        meta: ObjectMeta,
        expect: ObjectVersion | None = None,
    ) -> ObjectVersion:
        """Metadata-only change of one version (tagging, restore state): no data is rewritten.

        Object Lock state is never changed here (only ``object_lock`` changes it): the stored
        version's is kept, so a concurrent retention change cannot be lost to a stale ``meta``.
        """
        await self.get_bucket(bucket)
        async with self.object_lock.guard(bucket, key):
            meta = await self.object_lock.keep_state(bucket, key, version_id, meta)
            updated = await self.store.update_object_meta(bucket, key, version_id, meta, expect)
        await self.tiers.settle(updated)  # a transition to an archival class moves the bytes
        return updated

    # -- object writes -------------------------------------------------------------------------
    async def put_object(
        self,
        bucket: str,
        key: str,
        body: AsyncIterator[bytes],
        meta: ObjectMeta,
        checks: BodyChecks,
        owner_id: str,
        cond: WriteCondition = NO_CONDITION,
        sse: SseRequest = NO_SSE,
        known: Bucket | None = None,
        config: PutConfig | None = None,
    ) -> PutResult:
        """``config``: the bucket's ``put_config`` when the caller already read it (one read per
        request); read here otherwise."""
        check_key(key)
        check_user_meta(meta.user_meta)
        b = await self.get_bucket(bucket, known)
        if cond.if_none_match_any or cond.if_match is not None:
            await self._precheck(bucket, key, cond)
        cfg = config if config is not None else await self.put_config(bucket)
        meta = lock_rules.apply_default(cfg.lock, meta)
        system, enc = self._sse_settings(cfg.encryption, sse)
        # The version id is chosen before the data is written: encryption binds the blob to it.
        vid = new_version_id() if b.versioning == "Enabled" else NULL_VERSION
        options = WriteOptions(cfg.compression, enc, write_binding(bucket, key, vid))
        head = bytearray()  # the first bytes, for ML model detection
        got = await ingest(self.blobs, body, checks, self.max_object_size, options, head, SNIFF_BYTES)
        meta = replace(meta, checksums=got.checksums, checksum_type="FULL_OBJECT" if got.checksums else "")
        seg = Segment(got.blob_id, got.size)
        ml = {} if sse.customer_key else await ml_detect.detect(self, [seg], got.size, bytes(head))
        meta = replace(meta, system={**ml_detect.without_ml(without_sse(meta.system)), **system, **ml})
        obj = self._new_version(
            b, key, got.size, got.md5_hex, meta, (Segment(got.blob_id, got.size),), owner_id, version_id=vid
        )
        await self._commit(obj, cond, b, [got.blob_id])
        return PutResult(
            got.md5_hex,
            _reported_vid(b, obj),
            meta.checksums,
            meta.checksum_type,
            got.size,
            obj.last_modified,
            system,
        )

    async def sse_for_write(self, bucket: str, sse: SseRequest) -> tuple[dict[str, str], Encryption | None]:
        """The sse-* system metadata and blob encryption of a new object or upload in ``bucket``."""
        doc = None if sse.requested else await self.store.get_bucket_config(bucket, sse_config.CONFIG_NAME)
        return self._sse_settings(doc, sse)

    def _sse_settings(self, doc: str | None, sse: SseRequest) -> tuple[dict[str, str], Encryption | None]:
        """``sse_for_write`` given the bucket's default-encryption document (already read)."""
        default = sse_config.BucketEncryption.load(doc) if doc and not sse.requested else None
        return sse_config.write_settings(sse, default, self.default_sse)

    def _new_version(
        self,
        b: Bucket,
        key: str,
        size: int,
        etag: str,
        meta: ObjectMeta,
        segments: tuple[Segment, ...],
        owner_id: str,
        parts_count: int = 0,
        version_id: str | None = None,
    ) -> ObjectVersion:
        """``version_id``: the id allocated before the data was written (a new one when None)."""
        vid = version_id or (new_version_id() if b.versioning == "Enabled" else NULL_VERSION)
        return ObjectVersion(b.name, key, vid, size, etag, time.time(), meta, segments, owner_id, parts_count)

    async def _precheck(self, bucket: str, key: str, cond: WriteCondition) -> None:
        """Fail early, before any data is written; the store re-checks inside its transaction."""
        cur = await self.store.get_object(bucket, key)
        exists = cur is not None and not cur.delete_marker
        if cond.if_none_match_any and exists:
            raise errors.PreconditionFailed(Condition="If-None-Match")
        if cond.if_match is not None:
            # If-Match: * (RFC 9110) asks only that an object exist: 412 when none does.
            if not exists and cond.if_match != "*":
                raise errors.NoSuchKey(Key=key)
            if cur is None or not exists or cond.if_match not in ("*", cur.etag):
                raise errors.PreconditionFailed(Condition="If-Match")

    async def _commit(
        self, obj: ObjectVersion, cond: WriteCondition, b: Bucket, new_blobs: list[str]
    ) -> None:
        try:
            freed = await self.store.put_object(obj, cond, keep_old=b.versioning == "Enabled")
        except BaseException:
            await self.blobs.delete(new_blobs)
            raise
        self.free(freed)
        await self.tiers.settle(obj)

    # -- object reads --------------------------------------------------------------------------
    async def head_object(
        self,
        bucket: str,
        key: str,
        version_id: str | None = None,
        range_header: str | None = None,
        cond: Conditions | None = None,
        part_number: int | None = None,
        sse: SseRequest = NO_SSE,
        known: Bucket | None = None,
    ) -> ReadResult:
        b = await self.get_bucket(bucket, known)
        obj = await self._resolve_in(b, key, version_id)
        check_sse_read(obj.meta.system, sse)
        if cond is not None:
            check_read(cond, obj.etag, obj.last_modified)
        rng = self._range_for(obj, range_header, part_number)
        return ReadResult(obj, rng, None, bool(b.versioning) or version_id is not None)

    async def get_object(
        self,
        bucket: str,
        key: str,
        version_id: str | None = None,
        range_header: str | None = None,
        cond: Conditions | None = None,
        part_number: int | None = None,
        sse: SseRequest = NO_SSE,
        known: Bucket | None = None,
    ) -> ReadResult:
        res = await self.head_object(bucket, key, version_id, range_header, cond, part_number, sse, known)
        check_readable(res.obj)
        self.tiers.check_readable(res.obj)
        self.tiers.touch(res.obj)
        rng = res.range
        start, length = (rng.start, rng.length) if rng else (0, res.obj.size)
        zc = self.zerocopy
        # Checked here first: below min_size (every small GET) no coroutine is made for span().
        if sse.customer_key is None and not self.read_check.enabled and zc.enabled and length >= zc.min_size:
            span = await zc.span(self.blobs, res.obj, start, length)
            if span is not None:
                return ReadResult(res.obj, rng, span.chunks(), res.versioned, span)
        body = self.read_segments(res.obj.segments, start, length)
        # Each blob must carry the binding of this object (and version, and part): see engine.sse.
        body = with_customer_key(sse.customer_key, body, LazyBindings(res.obj))
        body = self.read_check.wrap(res.obj, body, full=rng is None or rng.length == res.obj.size)
        return ReadResult(res.obj, rng, body, res.versioned)

    async def _resolve(self, bucket: str, key: str, version_id: str | None) -> ObjectVersion:
        return await self._resolve_in(await self.get_bucket(bucket), key, version_id)

    async def resolve_version(self, b: Bucket, key: str, version_id: str | None) -> ObjectVersion:
        """The version a sub-resource request (ACL, ...) names, with the same answers as GET: a
        malformed id is InvalidArgument, a delete marker 404 (latest) or 405 (by id) with its headers."""
        return await self._resolve_in(b, key, version_id)

    async def _resolve_in(self, b: Bucket, key: str, version_id: str | None) -> ObjectVersion:
        """The version a read names; a delete marker answers as S3 does (404 latest, 405 by id)."""
        bucket = b.name
        _check_vid(version_id)
        obj = await self.store.get_object(bucket, key, version_id)
        if obj is None:
            if version_id is not None:
                raise errors.NoSuchVersion(Key=key, VersionId=version_id)
            raise errors.NoSuchKey(Key=key)
        if obj.delete_marker:
            err = errors.NoSuchKey(Key=key) if version_id is None else errors.MethodNotAllowed()
            err.headers["x-amz-delete-marker"] = "true"
            err.headers["x-amz-version-id"] = obj.version_id
            # The GetObject page: a marker named by version id answers 405 with its Last-Modified.
            err.headers["last-modified"] = http_date(obj.last_modified)
            raise err
        return obj

    async def _resolve_source(self, bucket: str, key: str, version_id: str | None) -> ObjectVersion:
        """A copy's source: as a read, except that a marker named by id is InvalidRequest (400)."""
        try:
            src = await self._resolve(bucket, key, version_id)
            check_readable(src)
            self.tiers.check_readable(src)
            return src
        except errors.MethodNotAllowed:
            raise errors.InvalidRequest(
                "The source of a copy request may not specifically refer to a delete marker by version id."
            ) from None

    def _range_for(self, obj: ObjectVersion, header: str | None, part_number: int | None) -> ByteRange | None:
        if part_number is None:
            return parse_range(header, obj.size)
        if header:
            raise errors.InvalidRequest("Cannot specify both Range header and partNumber query parameter")
        count = obj.parts_count or 1
        if part_number < 1 or part_number > count:
            raise errors.InvalidPartNumber(PartNumberRequested=str(part_number), ActualPartCount=str(count))
        if obj.parts_count == 0:
            return ByteRange(0, obj.size - 1) if obj.size else None
        start = sum(s.size for s in obj.segments[: part_number - 1])
        seg = obj.segments[part_number - 1]
        return ByteRange(start, start + seg.size - 1) if seg.size else None

    async def read_segments(
        self, segments: Sequence[Segment], start: int, length: int
    ) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes from ``start`` across the object's segments."""
        pos = 0
        end = start + length
        ids = [seg.blob_id for seg in segments]
        self._reading.update(ids)  # an overwrite meanwhile must not delete the later segments
        try:
            for seg in segments:
                seg_start, seg_end = pos, pos + seg.size
                pos = seg_end
                if seg_end <= start or seg.size == 0:
                    continue
                if seg_start >= end:
                    break
                lo = max(start, seg_start) - seg_start
                hi = min(end, seg_end) - seg_start
                async for chunk in (self.read_cache or self.blobs).read(seg.blob_id, lo, hi - lo):
                    yield chunk
        finally:
            self._reading.subtract(ids)
            idle = {b for b in ids if self._reading[b] <= 0}
            for b in idle:
                del self._reading[b]
            if done := idle & self._deferred:
                self._deferred -= done
                self.free(sorted(done))

    # -- deletes -------------------------------------------------------------------------------
    async def delete_object(
        self,
        bucket: str,
        key: str,
        version_id: str | None = None,
        bypass_governance: bool = False,
        if_match: str | None = None,
    ) -> DeleteResult:
        """Removing a version for good is refused with AccessDenied while Object Lock protects it
        (``bypass_governance``: x-amz-bypass-governance-retention); adding a delete marker never is.
        ``if_match``: a conditional delete (If-Match, or <ETag> in DeleteObjects), see _check_delete."""
        b = await self.get_bucket(bucket)
        _check_vid(version_id)
        if if_match is not None:
            if_match = if_match.strip()
            await self._check_delete(bucket, key, version_id, if_match)
        marker = None
        if version_id is None and b.versioning:
            vid = new_version_id() if b.versioning == "Enabled" else NULL_VERSION
            marker = ObjectVersion(
                bucket, key, vid, 0, "", time.time(), ObjectMeta(), (), b.owner_id, delete_marker=True
            )
        async with self.object_lock.guard(bucket, key):
            if marker is None:
                await self.object_lock.check_removal(bucket, key, version_id, bypass_governance)
            out: DeleteOutcome = await self.store.delete_object(bucket, key, version_id, marker, if_match)
        self.free(out.freed_blobs)
        if out.marker is not None:
            return DeleteResult(out.marker.version_id, True)
        removed = out.removed
        if version_id is None:
            return DeleteResult(None, False)
        return DeleteResult(version_id, bool(removed and removed.delete_marker))

    async def _check_delete(self, bucket: str, key: str, version_id: str | None, if_match: str) -> None:
        """412 unless the object the delete names (the current one, or ``version_id``) has the ETag;
        ``*`` matches any. As for conditional PutObject, an ETag that finds no object is NoSuchKey
        and ``*`` is 412. Checked early here (412 before an Object Lock refusal), and again by the
        store inside the delete's transaction, which is what makes it safe against a racing PUT."""
        check_delete_match(await self.store.get_object(bucket, key, version_id), key, if_match)

    # -- copy ----------------------------------------------------------------------------------
    async def copy_object(
        self,
        src_bucket: str,
        src_key: str,
        src_version: str | None,
        dst_bucket: str,
        dst_key: str,
        meta: ObjectMeta | None,
        owner_id: str,
        src_cond: Conditions,
        cond: WriteCondition = NO_CONDITION,
        storage_class: str | None = None,
        tags: dict[str, str] | None = None,
        lock: dict[str, str] | None = None,
        sse: SseRequest = NO_SSE,
        src_sse: SseRequest = NO_SSE,
        acl: str | None = None,
        checksum_algorithm: str | None = None,
    ) -> tuple[PutResult, ObjectVersion]:
        """Copy an object; ``meta`` None keeps the source's metadata (directive COPY).

        ``storage_class`` is the requested class under COPY; a new class makes a self-copy legal.
        ``tags`` None keeps the source's tags (x-amz-tagging-directive COPY, whatever ``meta`` says).
        ``lock``: the request's Object Lock headers as system metadata; as on S3 the source's
        retention and legal hold never carry over (the destination's default retention may apply).
        ``acl``: the ACL the request declares (system "acl"); S3 never copies the source's ACL.
        ``checksum_algorithm``: x-amz-checksum-algorithm, the checksum to compute for the copy.
        """
        check_key(dst_key)
        src = await self._resolve_source(src_bucket, src_key, src_version)
        check_sse_read(src.meta.system, src_sse)
        check_copy_source(src_cond, src.etag, src.last_modified)
        if meta is None:
            # Naming a source version makes a self-copy legal: it is how S3 restores an old version.
            same = src_bucket == dst_bucket and src_key == dst_key and src_version is None
            if same and storage_class in (None, src.meta.storage_class) and not sse.requested:
                raise errors.InvalidRequest(
                    "This copy request is illegal because it is trying to copy an object to itself without "
                    "changing the object's metadata, storage class, website redirect location or encryption attributes."
                )
            # Like S3, a copy is STANDARD unless the request names a class; the rest is kept.
            meta = replace(src.meta, storage_class=storage_class or "STANDARD")
        check_user_meta(meta.user_meta)
        meta = replace(
            meta,
            tags=src.meta.tags if tags is None else tags,
            system={
                **{k: v for k, v in without_lock(meta.system).items() if k not in _NOT_COPIED},
                **(lock or {}),
                **({"acl": acl} if acl else {}),
            },
        )
        # The copy (a single-part object) gets a full-object checksum: of the algorithm the request
        # names (x-amz-checksum-algorithm), else of the source's own, composite or not.
        alg = checksum_algorithm or next((a for a, v in src.meta.checksums.items() if v), None)
        checks = BodyChecks(content_length=src.size, trailer_algorithms=(), sdk_algorithm=alg)
        # Never a shared blob: the copy is re-encrypted into a new blob bound to the destination.
        body = with_customer_key(
            src_sse.customer_key, self.read_segments(src.segments, 0, src.size), read_bindings(src)
        )
        res = await self.put_object(dst_bucket, dst_key, body, meta, checks, owner_id, cond, sse)
        return res, src

    # -- listings ------------------------------------------------------------------------------
    async def list_objects(self, bucket: str, q: ListQuery, known: Bucket | None = None) -> ObjectListing:
        await self.get_bucket(bucket, known)
        if q.max_keys == 0:
            return ObjectListing([], [], False, None)
        return await self.store.list_objects(bucket, q)

    async def list_object_versions(self, bucket: str, q: VersionQuery) -> VersionListing:
        await self.get_bucket(bucket)
        if q.max_keys == 0:
            return VersionListing([], [], False, None, None)
        return await self.store.list_versions(bucket, q)


def _check_vid(version_id: str | None) -> None:
    """Malformed ids are InvalidArgument; well-formed unknown ones are the caller's NoSuchVersion."""
    if version_id is None or version_id == NULL_VERSION:
        return
    if not version_id:
        raise errors.InvalidArgument(
            "Version id cannot be the empty string", ArgumentName="versionId", ArgumentValue=""
        )
    if len(version_id) > 64 or not version_id.isascii() or not version_id.isalnum():
        raise errors.InvalidArgument(
            "Invalid version id specified", ArgumentName="versionId", ArgumentValue=version_id
        )


def _reported_vid(b: Bucket, obj: ObjectVersion) -> str | None:
    return obj.version_id if b.versioning else None
