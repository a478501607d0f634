"""The rs3gw admin API under the reserved path ``/_rs3gw/admin/...`` (``_rs3gw`` can never be a bucket
name), SigV4-signed like every S3 request and allowed to the primary account only.

Routes are one table of (method, pattern, handler), so other admin features add a line each.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Sequence

from rs3gw import errors
from rs3gw.blobs.compressed import parse_compression
from rs3gw.blobs.dedup import DedupBlobStore
from rs3gw.datadir import dedup_stats
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.response import Response

ADMIN_BUCKET = "_rs3gw"
MAX_BODY = 4096

AdminHandler = Callable[[Ctx, re.Match[str]], Awaitable[Response]]
AdminRoute = tuple[str, re.Pattern[str], AdminHandler]


def _json(status: int, doc: object) -> Response:
    return Response(status, {"content-type": "application/json"}, json.dumps(doc).encode())


async def _small_body(ctx: Ctx) -> str:
    """Admin bodies are a few bytes; a signed payload hash is checked here since no engine write does."""
    data = bytearray()
    async for chunk in ctx.body():
        data += chunk
        if len(data) > MAX_BODY:
            raise errors.InvalidArgument("admin request body is too large")
    want = ctx.body_checks().sha256
    if want is not None and hashlib.sha256(data).hexdigest() != want:
        got = hashlib.sha256(data).hexdigest()
        raise errors.XAmzContentSHA256Mismatch(ClientComputedContentSHA256=want, S3ComputedContentSHA256=got)
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise errors.InvalidArgument("admin request body must be UTF-8 text") from None


async def get_bucket_compression(ctx: Ctx, m: re.Match[str]) -> Response:
    bucket = m["bucket"]
    value = await ctx.engine.get_bucket_config(bucket, "compression")
    return _json(200, {"bucket": bucket, "compression": value})


async def put_bucket_compression(ctx: Ctx, m: re.Match[str]) -> Response:
    """Body: ``none``, ``lz4`` or ``zstd[:LEVEL]`` (plain text); applies to new writes only."""
    bucket = m["bucket"]
    text = await _small_body(ctx)
    try:
        value = str(parse_compression(text))
    except ValueError as exc:
        raise errors.InvalidArgument(str(exc), ArgumentName="compression", ArgumentValue=text[:64]) from None
    await ctx.engine.put_bucket_config(bucket, "compression", value)
    return _json(200, {"bucket": bucket, "compression": value})


async def delete_bucket_compression(ctx: Ctx, m: re.Match[str]) -> Response:
    """Back to the server-wide default."""
    await ctx.engine.put_bucket_config(m["bucket"], "compression", None)
    return Response(204)


async def get_dedup_stats(ctx: Ctx, m: re.Match[str]) -> Response:
    """Logical vs stored bytes of deduplicated data, per bucket and total (``rs3gw dedup stats``)."""
    blobs = ctx.engine.blobs
    if not isinstance(blobs, DedupBlobStore):
        raise errors.InvalidRequest("deduplication has never been enabled on this server")
    stats = await dedup_stats(ctx.engine.store, blobs)  # the server's own metadata store
    return _json(200, stats.to_json())


ROUTES: list[tuple[str, re.Pattern[str], AdminHandler]] = [
    ("GET", re.compile(r"dedup/stats"), get_dedup_stats),
    ("GET", re.compile(r"buckets/(?P<bucket>[^/]+)/compression"), get_bucket_compression),
    ("PUT", re.compile(r"buckets/(?P<bucket>[^/]+)/compression"), put_bucket_compression),
    ("DELETE", re.compile(r"buckets/(?P<bucket>[^/]+)/compression"), delete_bucket_compression),
]


async def handle_admin(ctx: Ctx, is_primary: bool, extra: Sequence[AdminRoute] = ()) -> Response:
    """Dispatch an authenticated request whose path starts with ``/_rs3gw/``.

    ``extra``: routes of features built in wiring.py (the audit log) that protocol cannot import."""
    if not is_primary:
        raise errors.AccessDenied()
    key = ctx.req.key or ""
    if not key.startswith("admin/"):
        raise errors.InvalidRequest("unknown rs3gw admin resource")
    path = key.removeprefix("admin/")
    known = False
    for method, pattern, handler in (*ROUTES, *extra):
        m = pattern.fullmatch(path)
        if m is None:
            continue
        known = True
        if method == ctx.req.method:
            return await handler(ctx, m)
    if known:
        raise errors.MethodNotAllowed()
    raise errors.InvalidRequest("unknown rs3gw admin resource")
