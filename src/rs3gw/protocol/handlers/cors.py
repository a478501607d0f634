"""Bucket CORS operations, the unauthenticated OPTIONS preflight, and CORS headers on actual responses."""

from __future__ import annotations

from rs3gw import errors
from rs3gw.engine import Engine
from rs3gw.engine import cors as rules
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.request import Request
from rs3gw.protocol.response import Response, xml_response
from rs3gw.protocol.xml_parse import parse_cors
from rs3gw.protocol.xml_write import XmlBuilder

BODY_LIMIT = 256 * 1024


async def put_bucket_cors(ctx: Ctx) -> Response:
    parsed = parse_cors(await ctx.read_body(BODY_LIMIT))
    rules.validate(parsed)
    await ctx.engine.put_bucket_config(ctx.bucket, "cors", rules.dumps(parsed))
    return Response(200)


async def get_bucket_cors(ctx: Ctx) -> Response:
    doc = await ctx.engine.get_bucket_config(ctx.bucket, "cors")
    if doc is None:
        raise errors.NoSuchCORSConfiguration(BucketName=ctx.bucket)
    x = XmlBuilder("CORSConfiguration")
    for r in rules.loads(doc):
        x.open("CORSRule").elem("ID", r.id)
        for name, values in (
            ("AllowedHeader", r.allowed_headers),
            ("AllowedMethod", r.allowed_methods),
            ("AllowedOrigin", r.allowed_origins),
            ("ExposeHeader", r.expose_headers),
        ):
            for v in values:
                x.elem(name, v)
        x.elem("MaxAgeSeconds", r.max_age_seconds).close()
    return xml_response(x)


async def delete_bucket_cors(ctx: Ctx) -> Response:
    await ctx.engine.put_bucket_config(ctx.bucket, "cors", None)
    return Response(204)


async def _bucket_rules(engine: Engine, bucket: str) -> list[rules.CorsRule] | None:
    """The bucket's rules; None when the bucket or its configuration is missing."""
    try:
        doc = await engine.get_bucket_config(bucket, "cors")
    except errors.S3Error:  # no such bucket, or a name no bucket can have
        return None
    return rules.loads(doc) if doc is not None else None


async def preflight_request(engine: Engine, req: Request) -> Response:
    """OPTIONS is never signed (browsers send no credentials on a preflight); the rules decide."""
    origin = req.headers.get("origin")
    if not origin:
        raise errors.BadRequest("Insufficient information. Origin request header needed.")
    method = req.headers.get("access-control-request-method")
    if not method:
        raise errors.BadRequest(f"Invalid Access-Control-Request-Method: {method or 'null'}")
    requested = rules.split_header_list(req.headers.get("access-control-request-headers"))
    assert req.bucket is not None
    found = await _bucket_rules(engine, req.bucket)
    if found is None:
        raise errors.AccessForbidden(
            "CORSResponse: CORS is not enabled for this bucket.", Method=method, ResourceType="BUCKET"
        )
    rule = rules.find_rule(found, origin, method, requested)
    if rule is None:
        raise errors.AccessForbidden(Method=method, ResourceType="OBJECT" if req.key else "BUCKET")
    return Response(200, rules.response_headers(rule, origin, requested))


async def add_cors_headers(engine: Engine, req: Request, resp: Response) -> None:
    """A browser reads a cross-origin answer only with these headers; errors here change nothing."""
    origin = req.headers.get("origin")
    if not origin or not req.bucket or req.method == "OPTIONS":
        return
    found = await _bucket_rules(engine, req.bucket)
    if not found:
        return
    rule = rules.find_rule(found, origin, req.method, [])
    if rule is not None:
        resp.headers.update(rules.response_headers(rule, origin))
