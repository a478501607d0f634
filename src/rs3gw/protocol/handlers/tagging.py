"""Object and bucket tagging operations, one handler each; the rules live in engine.tags."""

from __future__ import annotations

from dataclasses import replace

from rs3gw import errors
from rs3gw.engine import tags as tag_rules
from rs3gw.model import NULL_VERSION, ObjectVersion
from rs3gw.protocol.authorize import BodyTags
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.response import Response, xml_response
from rs3gw.protocol.xml_parse import parse_tagging
from rs3gw.protocol.xml_write import XmlBuilder

# A tagging document is small: AWS's 10 tags of at most 128 + 256 characters (4 UTF-8 bytes
# each) and their markup stay under 16 KiB; 64 KiB leaves room for whitespace and namespaces.
BODY_LIMIT = 64 * 1024


def _tagging_xml(tags: dict[str, str]) -> XmlBuilder:
    """In key order: S3 defines none, and clients (ceph/s3-tests among them) compare the TagSet
    with a list sorted by key, as RGW and Ozone answer."""
    x = XmlBuilder("Tagging").open("TagSet")
    for k, v in sorted(tags.items()):
        x.open("Tag").elem("Key", k).elem("Value", v).close()
    return x


def _version_header(ctx: Ctx, obj: ObjectVersion) -> dict[str, str]:
    versioned = obj.version_id != NULL_VERSION or ctx.q("versionId") is not None
    return {"x-amz-version-id": obj.version_id} if versioned else {}


async def _set_object_tags(ctx: Ctx, tags: dict[str, str]) -> ObjectVersion:
    """Resolve the version first and update exactly it, so a concurrent overwrite keeps its own
    metadata: an overwrite in between (a ``null`` id names a new object) makes us re-resolve."""
    for attempt in range(3):
        obj = (await ctx.engine.head_object(ctx.bucket, ctx.key, ctx.q("versionId"))).obj
        try:
            return await ctx.engine.update_object_meta(
                ctx.bucket, ctx.key, obj.version_id, replace(obj.meta, tags=tags), expect=obj
            )
        except errors.PreconditionFailed:
            if attempt == 2:
                raise errors.SlowDown() from None
    raise AssertionError("unreachable")


async def read_object_tagging(ctx: Ctx) -> BodyTags:
    """PutObjectTagging's body, read (bounded), parsed and validated once, before authorization:
    its tags are the request's s3:RequestObjectTag/<key> condition keys. A declared length over the
    limit is refused without reading a byte; any error is kept for the handler to answer after
    authorization (``BodyTags``)."""
    try:
        declared = ctx.decoded_length()
        if declared is not None and declared > BODY_LIMIT:
            raise errors.error_class("MaxMessageLengthExceeded")()
        body = await ctx.read_body(BODY_LIMIT)
        return BodyTags(tag_rules.validate(parse_tagging(body), tag_rules.MAX_OBJECT_TAGS))
    except errors.S3Error as e:
        return BodyTags({}, e)


async def put_object_tagging(ctx: Ctx) -> Response:
    read = ctx.access.body_tags if ctx.access is not None else None
    if read is None:  # dispatch reads it before authorizing; a caller that did not, reads it here
        read = await read_object_tagging(ctx)
    if read.error is not None:
        raise read.error
    obj = await _set_object_tags(ctx, read.tags)
    return Response(200, _version_header(ctx, obj))


async def get_object_tagging(ctx: Ctx) -> Response:
    obj = (await ctx.engine.head_object(ctx.bucket, ctx.key, ctx.q("versionId"))).obj
    return xml_response(_tagging_xml(obj.meta.tags), headers=_version_header(ctx, obj))


async def delete_object_tagging(ctx: Ctx) -> Response:
    obj = await _set_object_tags(ctx, {})
    return Response(204, _version_header(ctx, obj))


async def put_bucket_tagging(ctx: Ctx) -> Response:
    """S3's answers at the edges: more than 50 tags is 400 BadRequest (not InvalidTag, which is for
    a bad key, value or duplicate), and an empty TagSet is accepted and leaves the bucket without a
    tag set, so GetBucketTagging then answers NoSuchTagSet as after DeleteBucketTagging."""
    pairs = parse_tagging(await ctx.read_body(BODY_LIMIT))
    tags = tag_rules.validate(pairs, tag_rules.MAX_BUCKET_TAGS, kind="Bucket")
    await ctx.engine.put_bucket_config(ctx.bucket, "tagging", tag_rules.dumps(tags) if tags else None)
    return Response(204)


async def get_bucket_tagging(ctx: Ctx) -> Response:
    doc = await ctx.engine.get_bucket_config(ctx.bucket, "tagging")
    if doc is None:
        raise errors.NoSuchTagSet(BucketName=ctx.bucket)
    return xml_response(_tagging_xml(tag_rules.loads(doc)))


async def delete_bucket_tagging(ctx: Ctx) -> Response:
    await ctx.engine.put_bucket_config(ctx.bucket, "tagging", None)
    return Response(204)
