"""Header ⇄ record translations shared by the object handlers (metadata in, object headers out)."""

from __future__ import annotations

import base64
import math
import quopri
import re
from collections.abc import Mapping
from urllib.parse import quote, unquote

from rs3gw import errors
from rs3gw.access import acl as acl_rules
from rs3gw.codecs.checksums import ALGORITHMS, header_name
from rs3gw.engine import object_lock as lock_rules
from rs3gw.engine import tags as tag_rules
from rs3gw.engine.archive import restore_header
from rs3gw.engine.conditions import Conditions
from rs3gw.engine.lifecycle_rules import (
    LifecycleRule,
    object_expiration,
    stored_abort_rules,
    stored_expiry_rules,
    upload_abort,
)
from rs3gw.meta.store import WriteCondition
from rs3gw.model import STORAGE_CLASSES, ObjectMeta, ObjectVersion
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.xml_write import XmlBuilder
from rs3gw.timefmt import http_date, iso8601, parse_http_date

STORED_HEADERS = ("content-encoding", "content-disposition", "content-language", "cache-control", "expires")
RESPONSE_OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-language": "content-language",
    "response-expires": "expires",
    "response-cache-control": "cache-control",
    "response-content-disposition": "content-disposition",
    "response-content-encoding": "content-encoding",
}


def meta_from_headers(h: Mapping[str, str]) -> ObjectMeta:
    """User and system metadata as a PUT, copy (REPLACE) or multipart create declares it."""
    headers = {k: h[k] for k in STORED_HEADERS if k in h}
    enc = headers.get("content-encoding")
    if enc is not None:  # aws-chunked is transfer framing, not a property of the object
        kept = [e.strip() for e in enc.split(",") if e.strip() and e.strip() != "aws-chunked"]
        if kept:
            headers["content-encoding"] = ",".join(kept)
        else:
            del headers["content-encoding"]
    user = {k[11:]: _decode_meta(v) for k, v in h.items() if k.startswith("x-amz-meta-")}
    sc = h.get("x-amz-storage-class", "STANDARD")
    if sc not in STORAGE_CLASSES:
        raise errors.InvalidStorageClass(StorageClassRequested=sc)
    return ObjectMeta(
        content_type=h.get("content-type") or "binary/octet-stream",
        headers=headers,
        user_meta=user,
        storage_class=sc,
        tags=tag_rules.parse_header(h["x-amz-tagging"]) if "x-amz-tagging" in h else {},
        system={**lock_rules.from_headers(h), **acl_rules.system_entry(h)},
    )


_ENCODED_WORD = re.compile(r"=\?utf-8\?([bq])\?([^?]*)\?=", re.IGNORECASE)


def _decode_meta(v: str) -> str:
    """S3 decodes RFC 2047 encoded words before storing; raw UTF-8 bytes arrive as latin-1 text."""
    m = _ENCODED_WORD.fullmatch(v.strip())
    if m is not None:
        try:
            if m.group(1).lower() == "b":
                return base64.b64decode(m.group(2), validate=True).decode("utf-8")
            return quopri.decodestring(m.group(2).encode("ascii"), header=True).decode("utf-8")
        except (ValueError, UnicodeError):
            return v
    try:
        return v.encode("latin-1").decode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return v


def _rfc2047(v: str) -> str:
    """``v`` B-encoded (RFC 2047), the "mail-safe" form S3 sends text a header cannot carry as is."""
    return f"=?UTF-8?B?{base64.b64encode(v.encode()).decode()}?="


def _encode_meta(v: str) -> str:
    """Non-ASCII values go back RFC 2047 B-encoded, as S3 sends them ("mail-safe")."""
    return v if v.isascii() else _rfc2047(v)


def object_headers(obj: ObjectVersion, checksum_mode: bool, versioned: bool) -> dict[str, str]:
    h = {
        "etag": f'"{obj.etag}"',
        "last-modified": http_date(obj.last_modified),
        "content-type": obj.meta.content_type,
        "accept-ranges": "bytes",
    }
    h.update(obj.meta.headers)
    for k, v in obj.meta.user_meta.items():
        h[f"x-amz-meta-{k}"] = _encode_meta(v)
    for k, v in obj.meta.system.items():  # detected ML model metadata (engine/ml_detect.py)
        if k.startswith("ml-"):
            h[f"x-amz-meta-{k}"] = _encode_meta(v)
    if obj.meta.storage_class != "STANDARD":
        h["x-amz-storage-class"] = obj.meta.storage_class
    if obj.meta.tags:
        h["x-amz-tagging-count"] = str(len(obj.meta.tags))
    if versioned:
        h["x-amz-version-id"] = obj.version_id
    if obj.parts_count:
        h["x-amz-mp-parts-count"] = str(obj.parts_count)
    if obj.meta.system:
        h.update(lock_rules.response_headers(obj.meta.system))
        h.update(restore_header(obj.meta.system))
    if checksum_mode:
        for alg, value in obj.meta.checksums.items():
            if alg in ALGORITHMS and value:
                h[header_name(alg)] = value
        if obj.meta.checksum_type:
            h["x-amz-checksum-type"] = obj.meta.checksum_type
    return h


def apply_overrides(ctx: Ctx, headers: dict[str, str]) -> None:
    if not ctx.account.access_key and any(ctx.q(q) is not None for q in RESPONSE_OVERRIDES):
        # S3 honours response-* only on signed (header or presigned) requests, even for public objects.
        raise errors.InvalidRequest(
            "Request specific response headers cannot be used for anonymous GET requests."
        )
    for q, h in RESPONSE_OVERRIDES.items():
        value = ctx.q(q)
        if value is not None:
            headers[h] = value


def write_condition(ctx: Ctx) -> WriteCondition:
    inm = ctx.h("if-none-match")
    if inm is not None and inm.strip() != "*":
        raise errors.NotImplementedError_("If-None-Match on writes supports only '*'")
    im = ctx.h("if-match")
    return WriteCondition(if_none_match_any=inm is not None, if_match=im.strip().strip('"') if im else None)


def read_conditions(ctx: Ctx) -> Conditions | None:
    cond = Conditions.from_headers(ctx.req.headers)
    return None if cond.empty else cond


def copy_source(ctx: Ctx) -> tuple[str, str, str | None]:
    """(bucket, key, version) from x-amz-copy-source, URL-decoded, optional leading slash."""
    raw = ctx.h("x-amz-copy-source") or ""
    path, _, qs = raw.partition("?")
    path = unquote(path)
    if path.startswith("/"):
        path = path[1:]
    bucket, _, key = path.partition("/")
    if not bucket or not key:
        raise errors.InvalidArgument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
            ArgumentName="x-amz-copy-source",
            ArgumentValue=raw,
        )
    version = None
    if qs:
        name, _, value = qs.partition("=")
        if name != "versionId" or not value:
            raise errors.InvalidArgument(ArgumentName="x-amz-copy-source", ArgumentValue=raw)
        version = unquote(value)
    return bucket, key, version


async def authorize_copy_source(ctx: Ctx, bucket: str) -> None:
    """Dispatch authorizes only the destination; the source needs s3:GetObject (policy or ACL)."""
    _, key, version = copy_source(ctx)
    if ctx.access is None:
        raise errors.AccessDenied()
    await ctx.access.check("GetObject", bucket, key, version)


def copy_result(root: str, etag: str, last_modified: float, checksums: Mapping[str, str]) -> XmlBuilder:
    """CopyObjectResult and CopyPartResult share one shape: ETag, LastModified, Checksum<ALG>."""
    x = XmlBuilder(root).elem("ETag", f'"{etag}"').elem("LastModified", iso8601(last_modified))
    for alg, value in checksums.items():
        x.elem(f"Checksum{alg}", value)
    return x


def int_query(ctx: Ctx, name: str, default: int, lo: int = 0, hi: int = 2**31 - 1) -> int:
    value = ctx.q(name)
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise errors.InvalidArgument(
            f"Provided {name} not an integer or within integer range", ArgumentName=name, ArgumentValue=value
        ) from None
    if n < lo or n > hi:
        raise errors.InvalidArgument(f"Argument {name} out of range", ArgumentName=name, ArgumentValue=value)
    return n


def url_encode_key(key: str, enabled: bool) -> str:
    return quote(key, safe="/") if enabled else key


def encoding_type(ctx: Ctx) -> bool:
    et = ctx.q("encoding-type")
    if et is None:
        return False
    if et != "url":
        raise errors.InvalidArgument(
            "Invalid Encoding Method specified in Request", ArgumentName="encoding-type", ArgumentValue=et
        )
    return True


def last_modified_ok(value: str | None) -> float | None:
    return parse_http_date(value) if value else None


async def expiry_rules(ctx: Ctx) -> tuple[LifecycleRule, ...]:
    """The request bucket's rules that expire current versions (none without a lifecycle
    document): parsed once per document text, from the text authorization already read."""
    doc = await ctx.lifecycle_doc()
    return stored_expiry_rules(doc) if doc else ()


def expiration_header(
    ctx: Ctx,
    rules: tuple[LifecycleRule, ...],
    key: str,
    size: int,
    tags: dict[str, str],
    last_modified: float,
) -> dict[str, str]:
    """x-amz-expiration for the current version described, as S3 sends it on PUT, Copy, Complete,
    GET and HEAD: ``expiry-date="<HTTP-date>", rule-id="<URL-encoded id>"`` of the earliest
    applicable rule, or nothing. The date is when rs3gw's lifecycle worker will expire it (its day
    length and rounding, see ``object_expiration``), rounded up to the whole second the header shows."""
    if not rules:
        return {}
    found = object_expiration(rules, key, size, tags, last_modified, ctx.engine.tiers.day)
    if found is None:
        return {}
    when, rule_id = found
    return {
        "x-amz-expiration": f'expiry-date="{http_date(math.ceil(when))}", rule-id="{quote(rule_id, safe="")}"'
    }


async def abort_headers(ctx: Ctx, key: str, initiated: float) -> dict[str, str]:
    """x-amz-abort-date and x-amz-abort-rule-id for an incomplete upload of ``key`` initiated at
    ``initiated``, as S3 sends them on CreateMultipartUpload and ListParts when an enabled
    AbortIncompleteMultipartUpload rule's prefix matches the key, or nothing. The date is when
    rs3gw's lifecycle worker will abort the upload (its day length and rounding, see
    ``upload_abort``), rounded up to the whole second the header shows. Neither operation is a hot
    path, so the lifecycle document is read here; its rules are parsed once per document text."""
    doc = await ctx.lifecycle_doc()
    rules = stored_abort_rules(doc) if doc else ()
    if not rules:
        return {}
    found = upload_abort(rules, key, initiated, ctx.engine.tiers.day)
    if found is None:
        return {}
    when, rule_id = found
    return {"x-amz-abort-date": http_date(math.ceil(when)), "x-amz-abort-rule-id": _header_text(rule_id)}


def _header_text(value: str) -> str:
    """``value`` as a header value: verbatim when it is printable ASCII (rule IDs usually are),
    else RFC 2047 B-encoded as S3 sends non-ASCII metadata, because a rule ID is free text and a
    raw control character (CR/LF) or non-Latin-1 character cannot travel in a header intact."""
    return value if all(" " <= c <= "~" for c in value) else _rfc2047(value)
