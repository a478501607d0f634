"""GetObject with ``?x-rs3gw-transform=<chain>``: the object as the chain transforms it.

Parses the chain before reading anything, checks the object's size against the steps' limits,
then answers from the result cache, runs the chain on the whole object in a worker thread, or
(streamable chains over large objects) streams it. Range applies to the transformed bytes when
the result is whole; a streamed result rejects Range. Conditions compare against the result's ETag.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from rs3gw import errors
from rs3gw.engine.conditions import check_read
from rs3gw.engine.ranges import parse_range
from rs3gw.model import ObjectVersion
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.handlers.common import apply_overrides, object_headers, read_conditions
from rs3gw.protocol.handlers.encryption import request_sse
from rs3gw.protocol.handlers.encryption import response_headers as sse_headers
from rs3gw.protocol.response import Response
from rs3gw.transform import PARAM, Result, TransformService
from rs3gw.transform.spec import invalid

CACHE_HEADER = "x-rs3gw-transform-cache"  # hit | miss | bypass (streamed)
_default: TransformService | None = None


def _service(ctx: Ctx) -> TransformService:
    global _default
    if ctx.transforms is not None:
        return ctx.transforms
    if _default is None:
        _default = TransformService()
    return _default


async def _close(body: AsyncIterator[bytes] | None) -> None:
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        await aclose()


async def _read_all(body: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in body])


def _headers(ctx: Ctx, obj: ObjectVersion, versioned: bool, etag: str, spec: str) -> dict[str, str]:
    h = object_headers(obj, False, versioned)
    h.update(sse_headers(obj.meta.system, request_sse(ctx, server_side=False)))
    h.pop("x-amz-mp-parts-count", None)
    h["etag"] = f'"{etag}"'
    h[PARAM] = spec
    return h


def _whole(ctx: Ctx, headers: dict[str, str], result: Result) -> Response:
    headers["content-type"] = result.content_type
    apply_overrides(ctx, headers)
    size = len(result.body)
    rng = parse_range(ctx.h("range"), size)
    if rng is None:
        return Response(200, headers, result.body)
    headers["content-range"] = rng.content_range(size)
    return Response(206, headers, result.body[rng.start : rng.end + 1])


async def transformed_get(ctx: Ctx, spec: str) -> Response:
    service = _service(ctx)
    plan = service.plan(spec)
    if ctx.q("partNumber") is not None:
        raise invalid("partNumber cannot be combined with a transformation")
    sse = request_sse(ctx, server_side=False)
    res = await ctx.engine.get_object(ctx.bucket, ctx.key, ctx.q("versionId"), None, None, None, sse=sse)
    body, obj = res.body, res.obj
    assert body is not None
    try:
        encoding = obj.meta.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise invalid(
                f"the object is stored with Content-Encoding {encoding}; transformations need raw bytes"
            )
        service.check_size(plan, obj.size)
        etag = service.etag(obj.etag, plan)
        cond = read_conditions(ctx)
        if cond is not None:
            try:
                check_read(cond, etag, obj.last_modified)
            except errors.NotModified as e:
                return Response(304, dict(e.headers))
        headers = _headers(ctx, obj, res.versioned, etag, plan.canonical)
        if not service.whole(plan, obj.size):
            if ctx.h("range") is not None:
                raise invalid(
                    "Range is not supported on a streamed transformation (object over buffer_bytes)"
                )
            headers.update({"content-type": service.content_type(plan, obj.meta.content_type)})
            headers.update({"accept-ranges": "none", CACHE_HEADER: "bypass"})
            apply_overrides(ctx, headers)
            stream, body = service.stream(plan, body), None
            return Response(200, headers, stream=stream)
        gen = str(service.generation)
        key = (ctx.bucket, ctx.key, obj.version_id, obj.etag, obj.meta.content_type, plan.canonical, gen)
        result = service.cache.get(key)
        headers[CACHE_HEADER] = "hit" if result is not None else "miss"
        if result is None:
            async with service.slot():
                data = await _read_all(body)
                result = await service.run_async(plan, data, obj.meta.content_type)
            service.cache.put(key, result)
        return _whole(ctx, headers, result)
    finally:
        await _close(body)
