"""Admin API over buckets, for ``rs3gw admin bucket ... --endpoint`` and ``rs3gw admin usage --endpoint``.

``GET buckets`` (every owner's, store-managed users' included), ``GET|PUT|DELETE buckets/B`` (PUT
body: optional JSON ``{"owner": "NAME"}``, default the primary account), ``PUT buckets/B/versioning``
(body ``Enabled`` or ``Suspended``) and ``GET usage[?bucket=B]``. wiring.py adds them to
S3App.admin_routes; compression lives in protocol/admin.py.
"""

from __future__ import annotations

import json
import re

from rs3gw import errors
from rs3gw.engine import bucket_admin
from rs3gw.protocol.admin import AdminRoute, _small_body
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.response import Response

_BUCKET = r"buckets/(?P<bucket>[^/]+)"


def _json(status: int, doc: object) -> Response:
    return Response(status, {"content-type": "application/json"}, json.dumps(doc).encode())


def _names(ctx: Ctx) -> dict[str, str]:
    return {oid: o.display_name for oid, o in ctx.owners.items()}


async def list_buckets(ctx: Ctx, m: re.Match[str]) -> Response:
    return _json(200, {"buckets": await bucket_admin.list_info(ctx.engine.store, _names(ctx))})


async def bucket_info(ctx: Ctx, m: re.Match[str]) -> Response:
    b = await bucket_admin.get_bucket(ctx.engine.store, m["bucket"])
    return _json(200, await bucket_admin.bucket_info(ctx.engine.store, b, _names(ctx)))


async def create_bucket(ctx: Ctx, m: re.Match[str]) -> Response:
    text = (await _small_body(ctx)).strip()
    owner_id = ctx.account.owner.id
    if text:
        try:
            doc = json.loads(text)
        except ValueError:
            raise errors.InvalidArgument('body must be JSON: {"owner": "NAME"}') from None
        name = doc.get("owner") if isinstance(doc, dict) else None
        if name is not None:
            ids = [oid for oid, o in ctx.owners.items() if o.display_name == name]
            if not ids:
                raise errors.InvalidArgument(
                    "no such account", ArgumentName="owner", ArgumentValue=str(name)[:64]
                )
            owner_id = ids[0]
    b = await ctx.engine.create_bucket(m["bucket"], owner_id)
    return _json(200, await bucket_admin.bucket_info(ctx.engine.store, b, _names(ctx)))


async def delete_bucket(ctx: Ctx, m: re.Match[str]) -> Response:
    await ctx.engine.delete_bucket(m["bucket"])
    return Response(204)


async def put_versioning(ctx: Ctx, m: re.Match[str]) -> Response:
    status = bucket_admin.check_versioning(await _small_body(ctx))
    await ctx.engine.put_bucket_versioning(m["bucket"], status)
    return _json(200, {"bucket": m["bucket"], "versioning": status})


async def usage(ctx: Ctx, m: re.Match[str]) -> Response:
    bucket = ctx.req.query.get("bucket") or None
    return _json(200, await bucket_admin.usage(ctx.engine.store, _names(ctx), bucket))


def bucket_routes() -> list[AdminRoute]:
    return [
        ("GET", re.compile("buckets"), list_buckets),
        ("GET", re.compile(_BUCKET), bucket_info),
        ("PUT", re.compile(_BUCKET), create_bucket),
        ("DELETE", re.compile(_BUCKET), delete_bucket),
        ("PUT", re.compile(_BUCKET + "/versioning"), put_versioning),
        ("GET", re.compile("usage"), usage),
    ]
