"""SelectObjectContent: run an S3 Select query over one object, answered as an event stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

from rs3gw.protocol.context import Ctx
from rs3gw.protocol.response import Response
from rs3gw.select.request import parse_request
from rs3gw.select.run import select_stream
from rs3gw.select.sql import parse

MAX_REQUEST = 256 * 1024  # AWS caps the SQL expression at 256 KiB


async def select_object_content(ctx: Ctx) -> Response:
    req = parse_request(await ctx.read_body(MAX_REQUEST + 64 * 1024))
    query = parse(req.expression)  # syntax errors are plain HTTP 400s, before any event
    head = await ctx.engine.head_object(ctx.bucket, ctx.key)
    obj = head.obj
    bucket, key, version = ctx.bucket, ctx.key, obj.version_id

    async def open_range(start: int, length: int) -> AsyncIterator[bytes]:
        # Through get_object, pinned to the version first seen, so every codec the engine applies
        # on reads applies here too and a concurrent overwrite cannot mix two versions.
        res = await ctx.engine.get_object(bucket, key, version, f"bytes={start}-{start + length - 1}")
        assert res.body is not None
        async for chunk in res.body:
            yield chunk

    stream = select_stream(req, query, obj.size, open_range)
    return Response(200, {"content-type": "application/octet-stream"}, stream=stream)
