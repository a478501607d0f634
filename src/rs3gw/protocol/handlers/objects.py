"""Object operations: PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, CopyObject."""

from __future__ import annotations

from collections.abc import AsyncIterator

from rs3gw import errors
from rs3gw.codecs.checksums import ALGORITHMS
from rs3gw.engine.conditions import Conditions
from rs3gw.engine.core import PutResult, ReadResult
from rs3gw.engine.multipart import PART_CHECKSUMS
from rs3gw.engine.sse import NO_SSE
from rs3gw.model import NULL_VERSION, ObjectVersion
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.handlers.common import (
    apply_overrides,
    authorize_copy_source,
    copy_result,
    copy_source,
    expiration_header,
    expiry_rules,
    int_query,
    meta_from_headers,
    object_headers,
    read_conditions,
    write_condition,
)
from rs3gw.protocol.handlers.encryption import CUSTOMER, KMS_KEY, SSE, copy_source_sse, request_sse
from rs3gw.protocol.handlers.encryption import response_headers as sse_headers
from rs3gw.protocol.handlers.object_lock import bypass_governance, lock_state, require_lock_digest
from rs3gw.protocol.handlers.transform_get import transformed_get
from rs3gw.protocol.response import Response, xml_response
from rs3gw.protocol.xml_parse import parse_delete_objects
from rs3gw.protocol.xml_write import XmlBuilder
from rs3gw.transform import PARAM as TRANSFORM

BYPASS_GOVERNANCE = "x-amz-bypass-governance-retention"
# Request headers (folded, lower-case) that make a read conditional or SSE-aware; see _read.
_CONDITION_HEADERS = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")
_READ_SSE_HEADERS = (SSE, KMS_KEY, CUSTOMER + "algorithm", CUSTOMER + "key", CUSTOMER + "key-md5")


def put_headers(res: PutResult) -> dict[str, str]:
    """A write's response headers (ETag, version, the checksums stored); POST Object answers with
    the same ones."""
    h = {"etag": f'"{res.etag}"'}
    if res.version_id is not None:
        h["x-amz-version-id"] = res.version_id
    for alg, value in res.checksums.items():
        h[f"x-amz-checksum-{alg.lower()}"] = value
    if res.checksum_type:
        h["x-amz-checksum-type"] = res.checksum_type
    return h


async def store_body(ctx: Ctx, body: AsyncIterator[bytes]) -> tuple[PutResult, dict[str, str]]:
    """PutObject's write of ``body`` under the request's key, with metadata, conditions and SSE from
    the request's headers (PutObject and POST Object share it); returns the result and the response
    headers beyond ``put_headers``: SSE, and x-amz-expiration when a lifecycle rule will expire it."""
    meta = meta_from_headers(ctx.req.headers)
    # Read once, for the digest check and the write; usually with the bucket, by authorization.
    docs = ctx.access.known_write_docs(ctx.bucket) if ctx.access is not None else None
    config = ctx.engine.put_config_of(docs) if docs is not None else await ctx.engine.put_config(ctx.bucket)
    await require_lock_digest(ctx, meta, config.lock_default)
    sse = request_sse(ctx)
    res = await ctx.engine.put_object(
        ctx.bucket,
        ctx.key,
        body,
        meta,
        ctx.body_checks(),
        ctx.owner_id,
        write_condition(ctx),
        sse,
        ctx.known_bucket(),
        config,
    )
    h = sse_headers(res.encryption, sse)
    h.update(expiration_header(ctx, await expiry_rules(ctx), ctx.key, res.size, meta.tags, res.last_modified))
    return res, h


async def put_object(ctx: Ctx) -> Response:
    if ctx.h("content-length") is None and ctx.h("transfer-encoding") is None:
        raise errors.MissingContentLength()
    res, sse = await store_body(ctx, ctx.body())
    return Response(200, {**put_headers(res), **sse})


def _part_number(ctx: Ctx) -> int | None:
    return int_query(ctx, "partNumber", 0, 1, 10_000) if ctx.q("partNumber") is not None else None


async def _read(ctx: Ctx, head: bool) -> tuple[ReadResult, int, dict[str, str], int]:
    """(result, status, headers, content length) shared by GET and HEAD."""
    read = ctx.engine.head_object if head else ctx.engine.get_object
    query, h = ctx.req.query, ctx.req.headers
    part = _part_number(ctx) if query else None
    # The common plain GET/HEAD carries no SSE-C and no precondition header: skip building the
    # values that would come out empty (NO_SSE equals what request_sse returns then).
    sse = request_sse(ctx, server_side=False) if any(n in h for n in _READ_SSE_HEADERS) else NO_SSE
    cond = read_conditions(ctx) if any(n in h for n in _CONDITION_HEADERS) else None
    res = await read(
        ctx.bucket,
        ctx.key,
        query.get("versionId") if query else None,
        h.get("range"),
        cond,
        part,
        sse=sse,
        known=ctx.known_bucket(),
    )
    obj = res.obj
    checksum_mode = (h.get("x-amz-checksum-mode") or "").upper() == "ENABLED"
    headers = object_headers(obj, checksum_mode, res.versioned)
    if part is None and obj.parts_count:  # AWS sends the parts count only to a partNumber request
        del headers["x-amz-mp-parts-count"]
    if obj.meta.system:  # SSE response headers come from system metadata only
        headers.update(sse_headers(obj.meta.system, sse))
    if obj.is_latest:  # lifecycle Expiration acts on current versions only
        rules = await expiry_rules(ctx)  # no query: authorization read the document with the bucket
        if rules:
            headers.update(expiration_header(ctx, rules, obj.key, obj.size, obj.meta.tags, obj.last_modified))
    if query:  # response-* overrides are query parameters
        apply_overrides(ctx, headers)
    # S3 answers partNumber=1 of a single-part object as a range covering it all: 206.
    if res.range is None:
        return res, 200, headers, obj.size
    headers["content-range"] = res.range.content_range(obj.size)
    whole = res.range.start == 0 and res.range.length == obj.size
    if not whole or (part is not None and obj.parts_count):
        # A range's bytes do not match the whole object's checksum; S3 omits it (clients would fail).
        for name in [k for k in headers if k.startswith("x-amz-checksum-")]:
            del headers[name]
    if checksum_mode and part is not None and obj.parts_count:
        headers.update(_part_checksum(obj, part))
    return res, 206, headers, res.range.length


def _part_checksum(obj: ObjectVersion, part: int) -> dict[str, str]:
    """GET/HEAD ?partNumber=N with checksum mode: that part's own checksum, as recorded at completion."""
    alg = next((a for a, v in obj.meta.checksums.items() if v and a in ALGORITHMS), "")
    sums = obj.meta.system.get(PART_CHECKSUMS, "").split(",") if alg else []
    if len(sums) != obj.parts_count or not sums[part - 1]:
        return {}
    return {f"x-amz-checksum-{alg.lower()}": sums[part - 1]}


async def get_object(ctx: Ctx) -> Response:
    spec = ctx.q(TRANSFORM)
    if spec is not None:  # GET ?x-rs3gw-transform=<chain>: rs3gw.transform (README "Transformations")
        return await transformed_get(ctx, spec)
    try:
        res, status, headers, length = await _read(ctx, head=False)
    except errors.NotModified as e:
        return _not_modified(e)
    return Response(status, headers, stream=res.body, length=length, file=res.file)


async def head_object(ctx: Ctx) -> Response:
    try:
        _res, status, headers, length = await _read(ctx, head=True)
    except errors.NotModified as e:
        return _not_modified(e)
    return Response(status, headers, length=length)


def _not_modified(e: errors.S3Error) -> Response:
    # A 304 has no body (RFC 9110 section 15.4.5), so it must not be rendered as an XML error.
    return Response(304, dict(e.headers))


async def delete_object(ctx: Ctx) -> Response:
    bypass = await bypass_governance(ctx)
    if_match = ctx.h("if-match")
    await _authorize_etag_probe(ctx, ctx.key, if_match)
    res = await ctx.engine.delete_object(ctx.bucket, ctx.key, ctx.q("versionId"), bypass, if_match)
    h: dict[str, str] = {}
    if res.version_id is not None:
        h["x-amz-version-id"] = res.version_id
    if res.delete_marker:
        h["x-amz-delete-marker"] = "true"
    return Response(204, h)


async def delete_objects(ctx: Ctx) -> Response:
    if ctx.h("content-md5") is None and not any(k.startswith("x-amz-checksum-") for k in ctx.req.headers):
        raise errors.InvalidRequest(
            "Missing required header for this request: Content-MD5 or x-amz-checksum-*"
        )
    entries, quiet = parse_delete_objects(await ctx.read_body(2 * 1024 * 1024))
    await ctx.engine.get_bucket(ctx.bucket)
    x = XmlBuilder("DeleteResult")
    for e in entries:
        try:
            if not e.key:
                raise errors.InvalidArgument("Key must not be empty")
            await _authorize_delete(ctx, e.key, e.version_id)
            await _authorize_etag_probe(ctx, e.key, e.etag)
            bypass = await bypass_governance(ctx, e.key)
            res = await ctx.engine.delete_object(ctx.bucket, e.key, e.version_id, bypass, e.etag)
        except errors.S3Error as err:
            x.open("Error").elem("Key", e.key).elem("VersionId", e.version_id)
            x.elem("Code", err.code).elem("Message", err.message).close()
            continue
        if quiet:
            continue
        x.open("Deleted").elem("Key", e.key).elem("VersionId", e.version_id)
        if res.delete_marker:
            x.elem("DeleteMarker", True).elem("DeleteMarkerVersionId", res.version_id)
        x.close()
    return xml_response(x)


async def _authorize_delete(ctx: Ctx, key: str, version_id: str | None) -> None:
    """DeleteObjects needs s3:DeleteObject on each key: a denied key is reported, the rest go on."""
    if ctx.access is None:
        raise errors.AccessDenied()
    await ctx.access.check("DeleteObject", ctx.bucket, key, version_id)


async def _authorize_etag_probe(ctx: Ctx, key: str, if_match: str | None) -> None:
    """A delete conditional on a specific ETag also needs s3:GetObject, as on AWS: otherwise a
    delete-only principal could learn an object's ETag by guessing (412 vs 204). ``*`` needs none."""
    if not if_match or if_match.strip() == "*":
        return
    if ctx.access is None:
        raise errors.AccessDenied()
    await ctx.access.check("GetObject", ctx.bucket, key, None)


def _copy_checksum_algorithm(ctx: Ctx) -> str | None:
    """x-amz-checksum-algorithm of CopyObject: the checksum S3 computes for the copy."""
    alg = (ctx.h("x-amz-checksum-algorithm") or "").upper()
    if alg and alg not in ALGORITHMS:
        raise errors.InvalidRequest(f"Checksum algorithm {alg} is not supported.")
    return alg or None


async def copy_object(ctx: Ctx) -> Response:
    src_bucket, src_key, src_version = copy_source(ctx)
    await authorize_copy_source(ctx, src_bucket)
    directive = (ctx.h("x-amz-metadata-directive") or "COPY").upper()
    if directive not in ("COPY", "REPLACE"):
        raise errors.InvalidArgument(
            "Unknown metadata directive.", ArgumentName="x-amz-metadata-directive", ArgumentValue=directive
        )
    # Parsed under either directive so a bad x-amz-storage-class is refused in both cases.
    requested = meta_from_headers(ctx.req.headers)
    meta = requested if directive == "REPLACE" else None
    storage_class = requested.storage_class if ctx.h("x-amz-storage-class") else None
    tagging = (ctx.h("x-amz-tagging-directive") or "COPY").upper()
    if tagging not in ("COPY", "REPLACE"):
        raise errors.InvalidArgument(
            "Unknown tagging directive.", ArgumentName="x-amz-tagging-directive", ArgumentValue=tagging
        )
    sse, src_sse = request_sse(ctx), copy_source_sse(ctx)
    res, src = await ctx.engine.copy_object(
        src_bucket,
        src_key,
        src_version,
        ctx.bucket,
        ctx.key,
        meta,
        ctx.owner_id,
        Conditions.from_headers(ctx.req.headers, "x-amz-copy-source-"),
        write_condition(ctx),
        storage_class,
        requested.tags if tagging == "REPLACE" else None,
        lock_state(requested),
        sse=sse,
        src_sse=src_sse,
        acl=requested.system.get("acl"),
        checksum_algorithm=_copy_checksum_algorithm(ctx),
    )
    h = sse_headers(res.encryption, sse)
    tags = requested.tags if tagging == "REPLACE" else src.meta.tags
    h.update(expiration_header(ctx, await expiry_rules(ctx), ctx.key, res.size, tags, res.last_modified))
    # Like GET, a null source version is reported once its bucket has had versioning turned on.
    if (
        src.version_id != NULL_VERSION
        or src_version is not None
        or (await ctx.engine.get_bucket(src_bucket)).versioning
    ):
        h["x-amz-copy-source-version-id"] = src.version_id
    if res.version_id is not None:
        h["x-amz-version-id"] = res.version_id
    x = copy_result("CopyObjectResult", res.etag, res.last_modified, res.checksums)
    if res.checksum_type:  # CopyObjectResult (unlike CopyPartResult) names the checksum's type
        x.elem("ChecksumType", res.checksum_type)
    return xml_response(x, headers=h)
