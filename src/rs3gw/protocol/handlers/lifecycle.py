"""Bucket lifecycle operations, one handler each; rules live in engine.lifecycle_rules and the
background worker that applies them in engine.lifecycle."""

from __future__ import annotations

import base64

from rs3gw import errors
from rs3gw.codecs.checksums import algorithm_from_header, new_checksum
from rs3gw.engine import lifecycle_rules as rules
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.lifecycle_xml import lifecycle_xml, parse_lifecycle
from rs3gw.protocol.response import Response, xml_response

BODY_LIMIT = 1024 * 1024
CONFIG_NAME = "lifecycle"
MIN_SIZE_HEADER = "x-amz-transition-default-minimum-object-size"


def _check_integrity(ctx: Ctx, body: bytes) -> None:
    """S3 requires Content-MD5 or an x-amz-checksum-* header on this operation (httpChecksum
    requestChecksumRequired); Content-MD5 itself is verified by ``read_body``."""
    sums = {alg: v for name, v in ctx.req.headers.items() if (alg := algorithm_from_header(name))}
    if ctx.h("content-md5") is None and not sums:
        raise errors.InvalidRequest("Missing required header for this request: Content-MD5")
    for alg, value in sums.items():
        tap = new_checksum(alg)
        tap.update(body)
        if base64.b64encode(tap.digest()).decode() != value.strip():
            raise errors.BadDigest(f"The {alg} you specified did not match the calculated checksum.")


async def put_bucket_lifecycle_configuration(ctx: Ctx) -> Response:
    body = await ctx.read_body(BODY_LIMIT)
    _check_integrity(ctx, body)
    mode = ctx.h(MIN_SIZE_HEADER) or rules.MIN_SIZE_DEFAULT
    config = rules.validate(parse_lifecycle(body, mode))
    await ctx.engine.put_bucket_config(ctx.bucket, CONFIG_NAME, rules.dumps(config))
    return Response(200, {MIN_SIZE_HEADER: config.min_size_mode})


async def get_bucket_lifecycle_configuration(ctx: Ctx) -> Response:
    doc = await ctx.engine.get_bucket_config(ctx.bucket, CONFIG_NAME)
    if doc is None:
        raise errors.error_class("NoSuchLifecycleConfiguration")(BucketName=ctx.bucket)
    config = rules.loads(doc)
    return xml_response(lifecycle_xml(config), headers={MIN_SIZE_HEADER: config.min_size_mode})


async def delete_bucket_lifecycle(ctx: Ctx) -> Response:
    await ctx.engine.put_bucket_config(ctx.bucket, CONFIG_NAME, None)
    return Response(204)
