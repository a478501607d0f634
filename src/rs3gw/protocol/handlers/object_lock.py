"""Object Lock operations, one handler each; the rules and their enforcement live in engine.object_lock."""

from __future__ import annotations

import time

from rs3gw import errors
from rs3gw.engine import object_lock as rules
from rs3gw.model import NULL_VERSION, ObjectMeta, ObjectVersion
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.response import Response, xml_response
from rs3gw.protocol.xml_parse import parse_legal_hold, parse_object_lock_configuration, parse_retention
from rs3gw.protocol.xml_write import XmlBuilder
from rs3gw.timefmt import iso8601

BODY_LIMIT = 64 * 1024
BYPASS_HEADER = "x-amz-bypass-governance-retention"


async def bypass_governance(ctx: Ctx, key: str | None = None) -> bool:
    """The bypass header, honoured only for the bucket owner or a caller a bucket policy grants
    s3:BypassGovernanceRetention; for anyone else GOVERNANCE retention holds (AccessDenied)."""
    if (ctx.h(BYPASS_HEADER) or "").strip().lower() != "true":
        return False
    if ctx.access is None:  # no authorizer (internal calls): only the bucket owner
        return (await ctx.engine.get_bucket(ctx.bucket)).owner_id == ctx.owner_id
    return await ctx.access.may_bypass_governance(ctx.bucket, ctx.key if key is None else key)


def lock_state(meta: ObjectMeta) -> dict[str, str]:
    """The Object Lock part of request metadata (what CopyObject passes under either directive)."""
    return {k: v for k, v in meta.system.items() if k in rules.LOCK_KEYS}


def _has_digest(ctx: Ctx) -> bool:
    h = ctx.req.headers
    return "content-md5" in h or "x-amz-trailer" in h or any(k.startswith("x-amz-checksum-") for k in h)


def _require_digest(ctx: Ctx) -> None:
    """The lock operations are httpChecksumRequired in AWS's model: Content-MD5 or x-amz-checksum-*."""
    if not _has_digest(ctx):
        raise errors.InvalidRequest(
            "Missing required header for this request: Content-MD5 or x-amz-checksum-*"
        )


async def require_lock_digest(ctx: Ctx, meta: ObjectMeta, has_default: bool | None = None) -> None:
    """PutObject creating a locked version (by its headers or the bucket default) must carry a
    digest of the body, as on S3. Checked only without one, so the usual request costs nothing.
    ``has_default``: whether the bucket has a default retention, when the caller already knows."""
    if _has_digest(ctx):
        return
    if has_default is None and not lock_state(meta):
        has_default = await ctx.engine.object_lock.has_default(ctx.bucket)
    if lock_state(meta) or has_default:
        raise errors.InvalidRequest(
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock "
            "parameters"
        )


def _version_header(ctx: Ctx, obj: ObjectVersion) -> dict[str, str]:
    versioned = obj.version_id != NULL_VERSION or ctx.q("versionId") is not None
    return {"x-amz-version-id": obj.version_id} if versioned else {}


async def put_object_lock_configuration(ctx: Ctx) -> Response:
    _require_digest(ctx)
    doc = parse_object_lock_configuration(await ctx.read_body(BODY_LIMIT))
    if doc.enabled != "Enabled":
        raise errors.MalformedXML()
    default = rules.default_retention(doc.mode, doc.days, doc.years) if doc.rule else None
    await ctx.engine.object_lock.put_configuration(ctx.bucket, rules.LockConfig(default))
    return Response(200)


async def get_object_lock_configuration(ctx: Ctx) -> Response:
    cfg = await ctx.engine.object_lock.get_configuration(ctx.bucket)
    x = XmlBuilder("ObjectLockConfiguration").elem("ObjectLockEnabled", "Enabled")
    if cfg.default is not None:
        d = cfg.default
        x.open("Rule").open("DefaultRetention").elem("Mode", d.mode).elem("Days", d.days)
        x.elem("Years", d.years).close().close()
    return xml_response(x)


async def put_object_retention(ctx: Ctx) -> Response:
    _require_digest(ctx)
    mode, until = parse_retention(await ctx.read_body(BODY_LIMIT))
    new = rules.new_retention(mode, until, time.time())
    obj = await ctx.engine.object_lock.put_retention(
        ctx.bucket, ctx.key, ctx.q("versionId"), new, await bypass_governance(ctx)
    )
    return Response(200, _version_header(ctx, obj))


async def get_object_retention(ctx: Ctx) -> Response:
    r = await ctx.engine.object_lock.get_retention(ctx.bucket, ctx.key, ctx.q("versionId"))
    x = XmlBuilder("Retention").elem("Mode", r.mode).elem("RetainUntilDate", iso8601(r.until))
    return xml_response(x)


async def put_object_legal_hold(ctx: Ctx) -> Response:
    _require_digest(ctx)
    status = rules.legal_hold_status(parse_legal_hold(await ctx.read_body(BODY_LIMIT)))
    obj = await ctx.engine.object_lock.put_legal_hold(ctx.bucket, ctx.key, ctx.q("versionId"), status)
    return Response(200, _version_header(ctx, obj))


async def get_object_legal_hold(ctx: Ctx) -> Response:
    status = await ctx.engine.object_lock.get_legal_hold(ctx.bucket, ctx.key, ctx.q("versionId"))
    return xml_response(XmlBuilder("LegalHold").elem("Status", status))
