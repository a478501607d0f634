"""Bucket policy, bucket/object ACL and Public Access Block operations (enforced by dispatch)."""

from __future__ import annotations

from dataclasses import replace

from rs3gw import errors
from rs3gw.access import acl as acls
from rs3gw.access.policy import load
from rs3gw.model import ObjectVersion, Owner
from rs3gw.protocol.authorize import ACL, POLICY, PUBLIC_ACCESS_BLOCK
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.response import Response, xml_response
from rs3gw.protocol.xml_access import (
    parse_acl,
    parse_public_access_block,
    render_acl,
    render_public_access_block,
)
from rs3gw.protocol.xml_write import XmlBuilder

POLICY_BODY_LIMIT = 64 * 1024
ACL_BODY_LIMIT = 64 * 1024
MalformedPolicy = errors.error_class("MalformedPolicy")


# -- bucket policy ---------------------------------------------------------------------------
async def put_bucket_policy(ctx: Ctx) -> Response:
    try:
        text = (await ctx.read_body(POLICY_BODY_LIMIT)).decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedPolicy("This policy contains invalid Json") from None
    policy = load(text, ctx.bucket)  # MalformedPolicy for anything rs3gw could not evaluate
    if policy.public and (await _pab(ctx)).block_public_policy:
        raise errors.AccessDenied()
    await ctx.engine.put_bucket_config(ctx.bucket, POLICY, text)
    return Response(204)


async def get_bucket_policy(ctx: Ctx) -> Response:
    return Response(200, {"content-type": "application/json"}, (await _policy_text(ctx)).encode())


async def delete_bucket_policy(ctx: Ctx) -> Response:
    await ctx.engine.put_bucket_config(ctx.bucket, POLICY, None)
    return Response(204)


async def get_bucket_policy_status(ctx: Ctx) -> Response:
    public = load(await _policy_text(ctx), ctx.bucket).public
    return xml_response(XmlBuilder("PolicyStatus").elem("IsPublic", public))


async def _policy_text(ctx: Ctx) -> str:
    text = await ctx.engine.get_bucket_config(ctx.bucket, POLICY)
    if text is None:
        raise errors.NoSuchBucketPolicy(BucketName=ctx.bucket)
    return text


# -- ACLs -------------------------------------------------------------------------------------
async def get_bucket_acl(ctx: Ctx) -> Response:
    b = await ctx.engine.get_bucket(ctx.bucket)
    acl = acls.loads(await ctx.engine.get_bucket_config(ctx.bucket, ACL))
    return xml_response(
        render_acl(_owner(ctx, b.owner_id), acl.resolved(b.owner_id, b.owner_id), dict(ctx.owners))
    )


async def put_bucket_acl(ctx: Ctx) -> Response:
    b = await ctx.engine.get_bucket(ctx.bucket)
    acl = await _requested_acl(ctx, b.owner_id)
    await ctx.engine.put_bucket_config(ctx.bucket, ACL, None if acl == acls.PRIVATE else acl.dumps())
    return Response(200)


async def get_object_acl(ctx: Ctx) -> Response:
    obj, bucket_owner = await _object(ctx)
    acl = acls.loads(obj.meta.system.get(acls.SYSTEM_KEY))
    grants = acl.resolved(obj.owner_id, bucket_owner)
    return xml_response(render_acl(_owner(ctx, obj.owner_id), grants, dict(ctx.owners)), headers=_vid(ctx))


async def put_object_acl(ctx: Ctx) -> Response:
    obj, _ = await _object(ctx)
    acl = await _requested_acl(ctx, obj.owner_id)
    meta = replace(obj.meta, system={**obj.meta.system, acls.SYSTEM_KEY: acl.dumps()})
    # expect=obj: an overwrite in between must not get this version's metadata (412 then).
    await ctx.engine.update_object_meta(ctx.bucket, ctx.key, obj.version_id, meta, expect=obj)
    return Response(200, _vid(ctx))


async def _requested_acl(ctx: Ctx, resource_owner: str) -> acls.Acl:
    """The ACL from x-amz-acl / x-amz-grant-* headers or else the XML body (not both)."""
    declared = acls.from_headers(ctx.req.headers)
    body = await ctx.read_body(ACL_BODY_LIMIT)
    if declared is not None:
        if body.strip():
            raise errors.InvalidRequest(
                "Specifying both an ACL in headers and an AccessControlPolicy body is not allowed"
            )
        return declared  # dispatch already checked its grantees and BlockPublicAcls
    if not body.strip():
        raise errors.error_class("MalformedACLError")()
    owner_id, acl = parse_acl(body)
    if owner_id is not None and owner_id != resource_owner:
        raise errors.AccessDenied()
    assert ctx.access is not None
    ctx.access.check_grantees(acl)
    await ctx.access.check_public_acl(ctx.bucket, acl)
    return acl


async def _object(ctx: Ctx) -> tuple[ObjectVersion, str]:
    """The addressed object version and its bucket's owner; ACLs never need the data or SSE keys."""
    b = await ctx.engine.get_bucket(ctx.bucket)
    obj = await ctx.engine.resolve_version(b, ctx.key, ctx.q("versionId"))
    return obj, b.owner_id


def _owner(ctx: Ctx, owner_id: str) -> Owner:
    return ctx.owners.get(owner_id) or Owner(owner_id, "")


def _vid(ctx: Ctx) -> dict[str, str]:
    v = ctx.q("versionId")
    return {"x-amz-version-id": v} if v else {}


# -- Public Access Block ----------------------------------------------------------------------
async def put_public_access_block(ctx: Ctx) -> Response:
    pab = parse_public_access_block(await ctx.read_body(ACL_BODY_LIMIT))
    await ctx.engine.put_bucket_config(ctx.bucket, PUBLIC_ACCESS_BLOCK, pab.dumps())
    return Response(200)


async def get_public_access_block(ctx: Ctx) -> Response:
    text = await ctx.engine.get_bucket_config(ctx.bucket, PUBLIC_ACCESS_BLOCK)
    if text is None:
        raise errors.error_class("NoSuchPublicAccessBlockConfiguration")(BucketName=ctx.bucket)
    return xml_response(render_public_access_block(acls.PublicAccessBlock.loads(text)))


async def delete_public_access_block(ctx: Ctx) -> Response:
    await ctx.engine.put_bucket_config(ctx.bucket, PUBLIC_ACCESS_BLOCK, None)
    return Response(204)


async def _pab(ctx: Ctx) -> acls.PublicAccessBlock:
    return acls.PublicAccessBlock.loads(await ctx.engine.get_bucket_config(ctx.bucket, PUBLIC_ACCESS_BLOCK))
