"""RestoreObject (POST ?restore): the request's XML here, the semantics in engine.archive."""

from __future__ import annotations

from rs3gw import errors
from rs3gw.engine.tier_settings import RETRIEVAL_TIERS
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.response import Response
from rs3gw.protocol.xml_parse import _child, _parse, _text

BODY_LIMIT = 64 * 1024
MAX_DAYS = 2**31 - 1


def parse_restore_request(body: bytes) -> tuple[int, str]:
    """(Days, GlacierJobParameters Tier); Tier defaults to Standard as on AWS."""
    root = _parse(body, "RestoreRequest")
    days_text = _text(root, "Days")
    if days_text is None:
        raise errors.MalformedXML()
    try:
        days = int(days_text.strip())
    except ValueError:
        raise errors.MalformedXML() from None
    if days < 1 or days > MAX_DAYS:
        raise errors.InvalidArgument(
            "Days must be a positive integer", ArgumentName="Days", ArgumentValue=days_text
        )
    tier = "Standard"
    for parent in (_child(root, "GlacierJobParameters"), root):
        found = None if parent is None else _text(parent, "Tier")
        if found is not None:
            tier = found.strip()
            break
    if tier not in RETRIEVAL_TIERS:
        raise errors.MalformedXML()
    return days, tier


async def restore_object(ctx: Ctx) -> Response:
    days, tier = parse_restore_request(await ctx.read_body(BODY_LIMIT))
    status = await ctx.engine.tiers.restore(ctx.bucket, ctx.key, ctx.q("versionId"), days, tier)
    return Response(status)
