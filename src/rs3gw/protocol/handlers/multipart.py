"""Multipart upload operations, one handler each."""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import quote

from rs3gw import errors
from rs3gw.codecs.checksums import ALGORITHMS, algorithm_from_header
from rs3gw.engine.conditions import Conditions
from rs3gw.engine.multipart import CompletedPartRef
from rs3gw.model import Owner
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.handlers.common import (
    abort_headers,
    authorize_copy_source,
    copy_result,
    copy_source,
    encoding_type,
    expiration_header,
    expiry_rules,
    int_query,
    meta_from_headers,
    url_encode_key,
    write_condition,
)
from rs3gw.protocol.handlers.encryption import copy_source_sse, request_sse
from rs3gw.protocol.handlers.encryption import response_headers as sse_headers
from rs3gw.protocol.handlers.listing import owner_of
from rs3gw.protocol.response import Response, xml_response
from rs3gw.protocol.xml_parse import parse_complete_multipart
from rs3gw.protocol.xml_write import XmlBuilder
from rs3gw.timefmt import iso8601


def _owner_elems(x: XmlBuilder, owner: Owner) -> None:
    # Without IAM users the initiator of an upload is always its owning account.
    for name in ("Initiator", "Owner"):
        x.open(name).elem("ID", owner.id).elem("DisplayName", owner.display_name).close()


def _upload_id(ctx: Ctx) -> str:
    uid = ctx.q("uploadId")
    if not uid:
        raise errors.NoSuchUpload(UploadId=uid or "")
    return uid


def _checksum_config(ctx: Ctx) -> tuple[str, str]:
    """(algorithm, type) for a new upload; S3 allows FULL_OBJECT only for CRCs and COMPOSITE
    for all but CRC64NVME, and a type needs an algorithm."""
    alg = (ctx.h("x-amz-checksum-algorithm") or "").upper()
    ctype = (ctx.h("x-amz-checksum-type") or "").upper()
    if not alg:
        if ctype:
            raise errors.InvalidRequest("The x-amz-checksum-type header requires x-amz-checksum-algorithm.")
        return "", ""
    if alg not in ALGORITHMS:
        raise errors.InvalidRequest(f"Checksum algorithm {alg} is not supported.")
    ctype = ctype or ("FULL_OBJECT" if alg == "CRC64NVME" else "COMPOSITE")
    bad = (
        ctype not in ("COMPOSITE", "FULL_OBJECT")
        or (ctype == "FULL_OBJECT" and alg.startswith("SHA"))
        or (ctype == "COMPOSITE" and alg == "CRC64NVME")
    )
    if bad:
        raise errors.InvalidRequest(
            f"The {ctype} checksum type cannot be used with the {alg} checksum algorithm."
        )
    return alg, ctype


async def create_multipart_upload(ctx: Ctx) -> Response:
    meta = meta_from_headers(ctx.req.headers)
    alg, ctype = _checksum_config(ctx)
    if alg:  # the algorithm is recorded with an empty value until completion computes it
        meta = replace(meta, checksums={alg: ""}, checksum_type=ctype)
    sse = request_sse(ctx)
    up = await ctx.engine.create_multipart_upload(ctx.bucket, ctx.key, meta, ctx.owner_id, sse)
    x = XmlBuilder("InitiateMultipartUploadResult")
    x.elem("Bucket", ctx.bucket).elem("Key", ctx.key).elem("UploadId", up.upload_id)
    h = {"x-amz-checksum-algorithm": alg, "x-amz-checksum-type": ctype} if alg else {}
    h.update(sse_headers(up.meta.system, sse))
    h.update(await abort_headers(ctx, ctx.key, up.initiated))
    return xml_response(x, headers=h)


async def upload_part(ctx: Ctx) -> Response:
    if ctx.h("content-length") is None and ctx.h("transfer-encoding") is None:
        raise errors.MissingContentLength()
    part_number = int_query(ctx, "partNumber", 0)
    sse = request_sse(ctx, server_side=False)
    part = await ctx.engine.upload_part(
        ctx.bucket, ctx.key, _upload_id(ctx), part_number, ctx.body(), ctx.body_checks(), sse
    )
    h = {"etag": f'"{part.etag}"'}
    h.update(sse_headers(await ctx.engine.upload_encryption(ctx.bucket, ctx.key, _upload_id(ctx)), sse))
    for alg, value in part.checksums.items():
        h[f"x-amz-checksum-{alg.lower()}"] = value
    return Response(200, h)


async def upload_part_copy(ctx: Ctx) -> Response:
    src_bucket, src_key, src_version = copy_source(ctx)
    await authorize_copy_source(ctx, src_bucket)
    sse = request_sse(ctx, server_side=False)
    part, src_vid = await ctx.engine.upload_part_copy(
        ctx.bucket,
        ctx.key,
        _upload_id(ctx),
        int_query(ctx, "partNumber", 0),
        src_bucket,
        src_key,
        src_version,
        ctx.h("x-amz-copy-source-range"),
        Conditions.from_headers(ctx.req.headers, "x-amz-copy-source-"),
        sse,
        copy_source_sse(ctx),
    )
    x = copy_result("CopyPartResult", part.etag, part.last_modified, part.checksums)
    # As CopyObject: a null source version is reported too once its bucket has had versioning
    # turned on (S3 sends the header whenever the source bucket is versioned).
    named = (
        src_version is not None
        or src_vid != "null"
        or bool((await ctx.engine.get_bucket(src_bucket)).versioning)
    )
    h = {"x-amz-copy-source-version-id": src_vid} if named else {}
    h.update(sse_headers(await ctx.engine.upload_encryption(ctx.bucket, ctx.key, _upload_id(ctx)), sse))
    return xml_response(x, headers=h)


async def complete_multipart_upload(ctx: Ctx) -> Response:
    body = await ctx.read_body(4 * 1024 * 1024)
    try:
        parts = parse_complete_multipart(body)
    except errors.MalformedXML:
        # As S3 does: a missing bucket or upload is reported before a bad (or empty) part list.
        await ctx.engine.upload_encryption(ctx.bucket, ctx.key, _upload_id(ctx))
        raise
    refs = [CompletedPartRef(p.part_number, p.etag, p.checksums) for p in parts]
    expected: dict[str, str] = {}
    for name, value in ctx.req.headers.items():
        alg = algorithm_from_header(name)
        if alg is not None:
            expected[alg] = value
        elif name.startswith("x-amz-checksum-") and name not in ("x-amz-checksum-type",):
            raise errors.InvalidRequest(f"Unsupported checksum header {name}")
    res = await ctx.engine.complete_multipart_upload(
        ctx.bucket,
        ctx.key,
        _upload_id(ctx),
        refs,
        write_condition(ctx),
        expected,
        ctx.h("x-amz-checksum-type"),
    )
    x = XmlBuilder("CompleteMultipartUploadResult")
    x.elem("Location", f"{ctx.req.scheme}://{ctx.h('host', '')}/{ctx.bucket}/{quote(ctx.key)}")
    x.elem("Bucket", ctx.bucket).elem("Key", ctx.key).elem("ETag", f'"{res.etag}"')
    for alg, value in res.checksums.items():
        x.elem(f"Checksum{alg}", value)
    if res.checksum_type:
        x.elem("ChecksumType", res.checksum_type)
    h = {"x-amz-version-id": res.version_id} if res.version_id is not None else {}
    h.update(sse_headers(res.encryption))
    rules = await expiry_rules(ctx)
    if rules:
        tags = await _completed_tags(ctx, res.version_id) if any(r.filter.tags for r in rules) else {}
        h.update(expiration_header(ctx, rules, ctx.key, res.size, tags, res.last_modified))
    return xml_response(x, headers=h)


async def _completed_tags(ctx: Ctx, version_id: str | None) -> dict[str, str]:
    """The completed object's tags (set at CreateMultipartUpload, not known to the handler), read
    only when a tag-filtered rule could expire it."""
    obj = await ctx.engine.store.get_object(ctx.bucket, ctx.key, version_id)
    return obj.meta.tags if obj is not None and not obj.delete_marker else {}


async def abort_multipart_upload(ctx: Ctx) -> Response:
    await ctx.engine.abort_multipart_upload(ctx.bucket, ctx.key, _upload_id(ctx))
    return Response(204)


_INT32 = re.compile(r"[+-]?[0-9]+")
_INT32_MAX = 2**31 - 1


def _list_parts_number(ctx: Ctx, name: str, default: int) -> int:
    """max-parts or part-number-marker as S3 reads them (a Java int): text that is not an integer,
    or one outside the int range, is "not an integer or within integer range"; a negative int is
    "must be an integer between 0 and 2147483647". Both are 400 InvalidArgument naming the value.
    The shared ``int_query`` gives one message for both, so ListParts parses its own."""
    value = ctx.q(name)
    if value is None or value == "":
        return default
    n = int(value) if _INT32.fullmatch(value) else None
    if n is None or not -_INT32_MAX - 1 <= n <= _INT32_MAX:
        raise errors.InvalidArgument(
            f"Provided {name} not an integer or within integer range", ArgumentName=name, ArgumentValue=value
        )
    if n < 0:
        raise errors.InvalidArgument(
            f"Argument {name} must be an integer between 0 and {_INT32_MAX}",
            ArgumentName=name,
            ArgumentValue=value,
        )
    return n


async def list_parts(ctx: Ctx) -> Response:
    marker = _list_parts_number(ctx, "part-number-marker", 0)
    max_parts = _list_parts_number(ctx, "max-parts", 1000)
    up, res = await ctx.engine.list_parts(ctx.bucket, ctx.key, _upload_id(ctx), marker, min(max_parts, 1000))
    # A max-parts=0 page is empty and final (as MinIO answers, and as max-uploads=0 is here): a
    # truncated empty page would name the request's own marker as the next one, which no client
    # can advance from (botocore's paginator fails on the repeated token).
    truncated = res.is_truncated and max_parts > 0
    x = XmlBuilder("ListPartsResult")
    x.elem("Bucket", ctx.bucket).elem("Key", ctx.key).elem("UploadId", up.upload_id)
    x.elem("PartNumberMarker", marker).elem("NextPartNumberMarker", res.next_part_number_marker)
    x.elem("MaxParts", max_parts).elem("IsTruncated", truncated)
    _owner_elems(x, owner_of(ctx, up.owner_id))
    x.elem("StorageClass", up.meta.storage_class)
    for alg in up.meta.checksums:
        x.elem("ChecksumAlgorithm", alg)
    if up.meta.checksum_type:
        x.elem("ChecksumType", up.meta.checksum_type)
    for p in res.parts:
        x.open("Part").elem("PartNumber", p.part_number).elem("LastModified", iso8601(p.last_modified))
        x.elem("ETag", f'"{p.etag}"').elem("Size", p.size)
        for alg, value in p.checksums.items():
            x.elem(f"Checksum{alg}", value)
        x.close()
    # The current lifecycle rules decide, as they do for the worker (a rule added or removed since
    # CreateMultipartUpload moves the date).
    return xml_response(x, headers=await abort_headers(ctx, up.key, up.initiated))


async def list_multipart_uploads(ctx: Ctx) -> Response:
    enc = encoding_type(ctx)
    prefix, delim = ctx.q("prefix") or "", ctx.q("delimiter") or ""
    key_marker, uid_marker = ctx.q("key-marker") or "", ctx.q("upload-id-marker") or ""
    max_uploads = int_query(ctx, "max-uploads", 1000)
    res = await ctx.engine.list_multipart_uploads(
        ctx.bucket, prefix, delim, key_marker, uid_marker, min(max_uploads, 1000)
    )
    x = XmlBuilder("ListMultipartUploadsResult")
    x.elem("Bucket", ctx.bucket).elem("KeyMarker", url_encode_key(key_marker, enc)).elem(
        "UploadIdMarker", uid_marker
    )
    x.elem("NextKeyMarker", url_encode_key(res.next_key_marker or "", enc))
    x.elem("NextUploadIdMarker", res.next_upload_id_marker or "")
    x.elem("Prefix", url_encode_key(prefix, enc)).elem("Delimiter", url_encode_key(delim, enc) or None)
    x.elem("MaxUploads", max_uploads).elem("IsTruncated", res.is_truncated).elem(
        "EncodingType", "url" if enc else None
    )
    for u in res.uploads:
        x.open("Upload").elem("Key", url_encode_key(u.key, enc)).elem("UploadId", u.upload_id)
        _owner_elems(x, owner_of(ctx, u.owner_id))
        x.elem("StorageClass", u.meta.storage_class).elem("Initiated", iso8601(u.initiated))
        # S3's MultipartUpload names the checksum an upload was created with, as ListParts does.
        for alg in u.meta.checksums:
            x.elem("ChecksumAlgorithm", alg)
        if u.meta.checksum_type:
            x.elem("ChecksumType", u.meta.checksum_type)
        x.close()
    for p in res.common_prefixes:
        x.open("CommonPrefixes").elem("Prefix", url_encode_key(p, enc)).close()
    return xml_response(x)
