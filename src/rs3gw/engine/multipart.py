"""Multipart uploads: parts are blobs of their own, and completion only writes metadata.

A completed object's segments are its parts' blobs, so CompleteMultipartUpload costs one
transaction whatever the object's size, and GET ?partNumber=N is a segment lookup.
"""

from __future__ import annotations

import binascii
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from rs3gw import errors
from rs3gw.codecs.checksums import ALGORITHMS, combine_full_object, composite, is_valid_b64_digest
from rs3gw.engine import ml_detect
from rs3gw.engine.conditions import Conditions, check_copy_source
from rs3gw.engine.core import NO_CONDITION, ObjectEngine, PutResult
from rs3gw.engine.ingest import BodyChecks, ingest
from rs3gw.engine.names import check_key, check_user_meta
from rs3gw.engine.ranges import ByteRange
from rs3gw.engine.sse import (
    BIND_UPLOAD,
    NO_SSE,
    SseRequest,
    encryption_of,
    multipart_bindings,
    part_binding,
    read_bindings,
    with_customer_key,
    without_sse,
)
from rs3gw.engine.sse import check_read as check_sse_read
from rs3gw.meta.store import WriteCondition
from rs3gw.model import ObjectMeta, Part, PartListing, Segment, Upload, UploadListing

MIN_PART_SIZE = 5 * 1024 * 1024
PART_CHECKSUMS = "part-checksums"  # system metadata: the parts' checksums, comma-separated, in order
MAX_PARTS = 10_000


@dataclass(frozen=True)
class CompletedPartRef:
    part_number: int
    etag: str
    checksums: dict[str, str]


class Engine(ObjectEngine):
    async def create_multipart_upload(
        self, bucket: str, key: str, meta: ObjectMeta, owner_id: str, sse: SseRequest = NO_SSE
    ) -> Upload:
        """``sse``: the upload's encryption, fixed here; its parts are written with it."""
        check_key(key)
        check_user_meta(meta.user_meta)
        await self.get_bucket(bucket)
        system, _ = await self.sse_for_write(bucket, sse)
        meta = replace(meta, system={**without_sse(meta.system), **system})
        # Lock state (explicit or the bucket default) is fixed at initiation: S3 dates a multipart
        # object's creation, which starts a default retention period, from its initiation.
        meta = await self.object_lock.for_new_version(bucket, meta)
        alg = meta.checksum_type and next(iter(meta.checksums), "")
        if alg and alg not in ALGORITHMS:
            raise errors.InvalidRequest(f"Checksum algorithm {alg} is not supported")
        upload = Upload(secrets.token_urlsafe(32), bucket, key, time.time(), owner_id, meta)
        await self.store.create_upload(upload)
        return upload

    async def upload_encryption(self, bucket: str, key: str, upload_id: str) -> dict[str, str]:
        """The upload's sse-* system metadata (UploadPart answers with it)."""
        up = await self._upload(bucket, key, upload_id)
        return {k: v for k, v in up.meta.system.items() if k.startswith("sse-")}

    async def _upload(self, bucket: str, key: str, upload_id: str) -> Upload:
        await self.get_bucket(bucket)
        up = await self.store.get_upload(upload_id)
        if up is None or up.bucket != bucket or up.key != key:
            raise errors.NoSuchUpload(UploadId=upload_id)
        return up

    async def upload_part(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        body: AsyncIterator[bytes],
        checks: BodyChecks,
        sse: SseRequest = NO_SSE,
    ) -> Part:
        """``sse``: an SSE-C upload's parts each need its key (checked as for a read)."""
        _check_part_number(part_number)
        up = await self._upload(bucket, key, upload_id)
        check_sse_read(up.meta.system, sse)
        alg = _upload_algorithm(up)
        if alg:
            _check_part_algorithm(alg, checks)
            checks = replace(checks, sdk_algorithm=alg)
        enc = encryption_of(up.meta.system, sse.customer_key)
        bound = part_binding(bucket, key, upload_id, part_number)  # completion keeps this blob as is
        options = replace(await self.write_options(bucket), encryption=enc, binding=bound)
        got = await ingest(self.blobs, body, checks, 5 * 1024**3, options)
        part = Part(part_number, got.size, got.md5_hex, time.time(), got.blob_id, got.checksums)
        try:
            freed = await self.store.put_part(upload_id, part)
        except BaseException:
            await self.blobs.delete([got.blob_id])
            raise
        self.free(freed)
        return part

    async def upload_part_copy(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        part_number: int,
        src_bucket: str,
        src_key: str,
        src_version: str | None,
        src_range: str | None,
        src_cond: Conditions,
        sse: SseRequest = NO_SSE,
        src_sse: SseRequest = NO_SSE,
    ) -> tuple[Part, str]:
        """Returns the part and the source version id."""
        _check_part_number(part_number)
        up = await self._upload(bucket, key, upload_id)
        check_sse_read(up.meta.system, sse)
        src = await self._resolve_source(src_bucket, src_key, src_version)
        check_sse_read(src.meta.system, src_sse)
        check_copy_source(src_cond, src.etag, src.last_modified)
        rng = _copy_range(src_range, src.size)
        start, length = (rng.start, rng.length) if rng else (0, src.size)
        body = with_customer_key(
            src_sse.customer_key, self.read_segments(src.segments, start, length), read_bindings(src)
        )
        alg = _upload_algorithm(up)
        part = await self.upload_part(
            bucket,
            key,
            upload_id,
            part_number,
            body,
            BodyChecks(content_length=length, sdk_algorithm=alg or None),
            sse,
        )
        return part, src.version_id

    async def complete_multipart_upload(
        self,
        bucket: str,
        key: str,
        upload_id: str,
        parts: list[CompletedPartRef],
        cond: WriteCondition = NO_CONDITION,
        expected: dict[str, str] | None = None,
        checksum_type: str | None = None,
    ) -> PutResult:
        """``expected``: whole-object checksums the client sent (x-amz-checksum-*), verified here."""
        try:
            up = await self._upload(bucket, key, upload_id)
        except errors.NoSuchUpload:
            return await self._retry_answer(bucket, key, upload_id)
        b = await self.get_bucket(bucket)
        stored = await self.store.get_parts(upload_id)
        if not stored and await self.store.get_upload(upload_id) is None:  # a concurrent completion won
            return await self._retry_answer(bucket, key, upload_id)
        chosen = _validate_parts(parts, stored, _upload_algorithm(up), up.meta.checksum_type)
        md5s = b"".join(binascii.unhexlify(p.etag) for p in chosen)
        etag = f"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-{len(chosen)}"
        meta = _final_checksums(up, chosen)
        _check_expected(up, meta, expected or {}, checksum_type)
        if cond.if_none_match_any or cond.if_match is not None:
            await self._precheck(bucket, key, cond)
        segments = tuple(Segment(p.blob_id, p.size) for p in chosen)
        size = sum(p.size for p in chosen)
        # Which upload and parts the segments' blobs are bound to, so that reads can check them.
        bound = multipart_bindings(upload_id, [p.part_number for p in chosen])
        meta = replace(meta, system={**meta.system, **bound})
        if "sse-c-alg" not in meta.system:  # SSE-C bytes cannot be read without the customer's key
            ml = await ml_detect.detect(self, segments, size)
            meta = replace(meta, system={**ml_detect.without_ml(meta.system), **ml})
        obj = self._new_version(b, key, size, etag, meta, segments, up.owner_id, parts_count=len(chosen))
        try:
            freed = await self.store.complete_upload(
                upload_id, obj, {p.part_number for p in chosen}, cond, keep_old=b.versioning == "Enabled"
            )
        except errors.NoSuchUpload:  # a racing complete (a retry, another gateway) committed first
            return await self._retry_answer(bucket, key, upload_id)
        self.free(freed)
        await self.tiers.settle(obj)
        vid = obj.version_id if b.versioning else None
        enc = {k: v for k, v in meta.system.items() if k.startswith("sse-")}
        return PutResult(etag, vid, meta.checksums, meta.checksum_type, size, obj.last_modified, enc)

    async def _retry_answer(self, bucket: str, key: str, upload_id: str) -> PutResult:
        """The answer to a complete whose upload is gone: that completion's result when this
        upload made the key's current object (a retry, or a complete that raced the winner and lost
        the commit), else NoSuchUpload."""
        done = await self._completed_by(bucket, key, upload_id)
        if done is None:
            raise errors.NoSuchUpload(UploadId=upload_id)
        return done

    async def _completed_by(self, bucket: str, key: str, upload_id: str) -> PutResult | None:
        """The key's current object when ``upload_id`` is the upload that created it.

        S3 answers a repeated CompleteMultipartUpload (a client retry after a lost response) with
        the same success, not NoSuchUpload; the completed object records its upload in its
        system metadata (engine.sse.multipart_bindings), which is how a retry is recognised.
        """
        obj = await self.store.get_object(bucket, key, None)
        if obj is None or obj.delete_marker or obj.meta.system.get(BIND_UPLOAD) != upload_id:
            return None
        b = await self.get_bucket(bucket)
        vid = obj.version_id if b.versioning else None
        enc = {k: v for k, v in obj.meta.system.items() if k.startswith("sse-")}
        meta = obj.meta
        return PutResult(obj.etag, vid, meta.checksums, meta.checksum_type, obj.size, obj.last_modified, enc)

    async def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        await self._upload(bucket, key, upload_id)
        self.free(await self.store.abort_upload(upload_id))

    async def list_parts(
        self, bucket: str, key: str, upload_id: str, marker: int, max_parts: int
    ) -> tuple[Upload, PartListing]:
        up = await self._upload(bucket, key, upload_id)
        return up, await self.store.list_parts(upload_id, marker, max_parts)

    async def list_multipart_uploads(
        self,
        bucket: str,
        prefix: str,
        delimiter: str,
        key_marker: str,
        upload_id_marker: str,
        max_uploads: int,
    ) -> UploadListing:
        await self.get_bucket(bucket)
        if max_uploads == 0:
            return UploadListing([], [], False, None, None)
        return await self.store.list_uploads(
            bucket, prefix, delimiter, key_marker, upload_id_marker, max_uploads
        )


def _check_part_number(n: int) -> None:
    if not 1 <= n <= MAX_PARTS:
        raise errors.InvalidArgument(
            "Part number must be an integer between 1 and 10000, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=str(n),
        )


def _upload_algorithm(up: Upload) -> str:
    return next(iter(up.meta.checksums), "") if up.meta.checksum_type else ""


def _copy_range(header: str | None, size: int) -> ByteRange | None:
    if header is None:
        return None
    try:
        unit, _, spec = header.partition("=")
        a, _, b = spec.partition("-")
        start, end = int(a), int(b)
    except ValueError:
        raise errors.InvalidArgument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are "
            "the zero-based offsets of the first and last bytes to copy",
            ArgumentName="x-amz-copy-source-range",
            ArgumentValue=header,
        ) from None
    if unit.strip() != "bytes" or start < 0 or end < start:
        raise errors.InvalidArgument(ArgumentName="x-amz-copy-source-range", ArgumentValue=header)
    if end >= size:
        raise errors.InvalidRange(ActualObjectSize=str(size))
    return ByteRange(start, end)


def _check_part_algorithm(alg: str, checks: BodyChecks) -> None:
    """A part must carry the upload's algorithm (or none): S3 refuses a mismatch rather than
    storing a part whose checksum cannot join the object's."""
    declared = {a.upper() for a in checks.checksums} | {a.upper() for a in checks.trailer_algorithms}
    if checks.sdk_algorithm:
        declared.add(checks.sdk_algorithm.upper())
    other = sorted(declared - {alg})
    if other:
        raise errors.InvalidRequest(
            f"Checksum Type mismatch occurred, expected checksum Type: {alg.lower()}, "
            f"actual checksum Type: {other[0].lower()}"
        )


def _validate_parts(
    parts: list[CompletedPartRef], stored: dict[int, Part], alg: str, checksum_type: str
) -> list[Part]:
    """The listed parts, in order, each matching what was uploaded (ETag and, if sent, checksum)."""
    if not parts:
        raise errors.MalformedXML()
    chosen: list[Part] = []
    last = 0
    for ref in parts:
        if ref.part_number <= last:
            raise errors.InvalidPartOrder()
        last = ref.part_number
        part = stored.get(ref.part_number)
        if part is None or part.etag != ref.etag.strip('"').lower():
            raise errors.InvalidPart(PartNumber=str(ref.part_number), ETag=ref.etag)
        _check_part_checksum(ref, part, alg, checksum_type)
        chosen.append(part)
    for p in chosen[:-1]:
        if p.size < MIN_PART_SIZE:
            raise errors.EntityTooSmall(
                ProposedSize=str(p.size), MinSizeAllowed=str(MIN_PART_SIZE), PartNumber=str(p.part_number)
            )
    return chosen


def _check_part_checksum(ref: CompletedPartRef, part: Part, alg: str, checksum_type: str) -> None:
    if not alg:
        return
    given = ref.checksums.get(alg)
    if given is None:
        # AWS requires every part's checksum for COMPOSITE uploads (the object's value is built
        # from them); a FULL_OBJECT checksum is combined from what we stored, so it may be omitted.
        if checksum_type == "COMPOSITE":
            raise errors.InvalidRequest(
                f"The upload was created using a {alg.lower()} checksum. The complete request must "
                f"include the checksum for each part. It was missing for part {ref.part_number} in the request."
            )
        return
    if part.checksums.get(alg) != given:
        raise errors.InvalidPart(PartNumber=str(ref.part_number), ETag=ref.etag)


def _check_expected(
    up: Upload, meta: ObjectMeta, expected: dict[str, str], checksum_type: str | None
) -> None:
    """Whole-object checksum and type sent with CompleteMultipartUpload must agree with the upload."""
    alg = _upload_algorithm(up)
    if checksum_type and checksum_type.upper() != up.meta.checksum_type:
        raise errors.InvalidRequest(
            f"The upload was created using the {up.meta.checksum_type or 'null'} checksum mode. "
            f"The complete request must use the same checksum mode."
        )
    for name, value in expected.items():
        if name != alg:
            raise errors.InvalidRequest(
                f"Checksum Type mismatch occurred, expected checksum Type: {(alg or 'null').lower()}, "
                f"actual checksum Type: {name.lower()}"
            )
        # A value that is no digest of this algorithm (with or without the "-N" part count) is
        # refused as malformed (InvalidRequest), as PutObject does; only a well-formed one that
        # differs is BadDigest.
        if not is_valid_b64_digest(alg, value.split("-", 1)[0]):
            raise errors.InvalidRequest(f"Value for x-amz-checksum-{alg.lower()} header is invalid.")
        final = meta.checksums.get(alg, "")
        if value != final and value != final.rsplit("-", 1)[0]:
            raise errors.BadDigest(f"The {alg.lower()} you specified did not match the calculated checksum.")


def _final_checksums(up: Upload, chosen: list[Part]) -> ObjectMeta:
    alg = _upload_algorithm(up)
    meta = replace(up.meta, checksums={}, checksum_type="")
    if not alg or any(alg not in p.checksums for p in chosen):
        return meta
    if up.meta.checksum_type == "FULL_OBJECT":
        value = combine_full_object(alg, [(p.checksums[alg], p.size) for p in chosen])
    else:
        value = composite(alg, [p.checksums[alg] for p in chosen])
    # Each part's own checksum, in part order: GetObjectAttributes reports them after the parts
    # themselves are gone (protocol.handlers.attributes).
    system = {**meta.system, PART_CHECKSUMS: ",".join(p.checksums[alg] for p in chosen)}
    return replace(meta, checksums={alg: value}, checksum_type=up.meta.checksum_type, system=system)
