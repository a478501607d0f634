"""Service- and bucket-level operations: one handler per S3 operation."""

from __future__ import annotations

from rs3gw import errors
from rs3gw.access import acl as acl_rules
from rs3gw.engine.core import CLASSIC_REGION
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.handlers.common import int_query
from rs3gw.protocol.handlers.listing import continuation_token, parse_continuation_token
from rs3gw.protocol.response import Response, xml_response
from rs3gw.protocol.xml_parse import parse_create_bucket, parse_versioning
from rs3gw.protocol.xml_write import XmlBuilder
from rs3gw.timefmt import iso8601

_MAX_BUCKETS = 10_000  # AWS's ceiling for max-buckets


async def list_buckets(ctx: Ctx) -> Response:
    """ListBuckets with AWS's optional prefix, bucket-region, max-buckets and continuation-token:
    without max-buckets every bucket comes back in one answer, as older clients expect."""
    prefix = ctx.q("prefix") or ""
    region = ctx.q("bucket-region") or None
    token = ctx.q("continuation-token")
    after = parse_continuation_token(token) if token else ""
    limit = int_query(ctx, "max-buckets", 0, lo=1, hi=_MAX_BUCKETS) or None
    buckets = [
        b
        for b in await ctx.engine.list_buckets(ctx.owner_id)
        if b.name.startswith(prefix) and b.name > after and (region is None or b.region == region)
    ]
    more = limit is not None and len(buckets) > limit
    buckets = buckets[:limit]
    x = XmlBuilder("ListAllMyBucketsResult")
    owner = ctx.account.owner
    x.open("Owner").elem("ID", owner.id).elem("DisplayName", owner.display_name).close()
    x.open("Buckets")
    for b in buckets:
        x.open("Bucket").elem("Name", b.name).elem("CreationDate", iso8601(b.created))
        x.elem("BucketRegion", b.region).close()
    x.close()
    x.elem("ContinuationToken", continuation_token(buckets[-1].name) if more else None)
    x.elem("Prefix", prefix if ctx.q("prefix") is not None else None)
    return xml_response(x)


async def create_bucket(ctx: Ctx) -> Response:
    location = parse_create_bucket(await ctx.read_body(64 * 1024))
    lock = (ctx.h("x-amz-bucket-object-lock-enabled") or "").strip().lower() == "true"
    acl = acl_rules.from_headers(ctx.req.headers)  # validated by dispatch before the bucket exists
    await ctx.engine.create_bucket(ctx.bucket, ctx.owner_id, location, object_lock=lock)
    if acl is not None and acl != acl_rules.PRIVATE:
        await ctx.engine.put_bucket_config(ctx.bucket, "acl", acl.dumps())
    return Response(200, {"location": f"/{ctx.bucket}"})


async def head_bucket(ctx: Ctx) -> Response:
    b = await ctx.engine.get_bucket(ctx.bucket)
    return Response(200, {"x-amz-bucket-region": b.region})


async def delete_bucket(ctx: Ctx) -> Response:
    await ctx.engine.delete_bucket(ctx.bucket)
    return Response(204)


async def get_bucket_location(ctx: Ctx) -> Response:
    b = await ctx.engine.get_bucket(ctx.bucket)
    x = XmlBuilder("LocationConstraint")
    # AWS answers an empty constraint for us-east-1 (the "classic" region).
    x.text(b.region if b.region != CLASSIC_REGION else "")
    return xml_response(x)


async def get_bucket_versioning(ctx: Ctx) -> Response:
    status = await ctx.engine.get_bucket_versioning(ctx.bucket)
    x = XmlBuilder("VersioningConfiguration")
    if status:
        x.elem("Status", status)
    return xml_response(x)


async def put_bucket_versioning(ctx: Ctx) -> Response:
    status, mfa = parse_versioning(await ctx.read_body(64 * 1024))
    await ctx.engine.get_bucket(ctx.bucket)
    if status is None:
        raise errors.error_class("IllegalVersioningConfigurationException")(
            "The Versioning element must be specified"
        )
    if mfa == "Enabled":
        # MFA delete needs a verified x-amz-mfa token; we have no MFA devices, so like AWS without
        # a valid token the change is refused (MfaDelete=Disabled is the state we always have).
        raise errors.AccessDenied("Mfa Authentication must be used for this request")
    await ctx.engine.put_bucket_versioning(ctx.bucket, status)
    return Response(200)
