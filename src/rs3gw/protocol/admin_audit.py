"""Admin API routes over the audit log; wiring.py adds them to S3App.admin_routes when auditing is on.

``GET audit/events`` takes the query parameters of ``rs3gw audit query`` (since, until, user, action,
bucket, result, limit) and answers the same JSON; ``GET audit/verify`` runs the chain check;
``GET audit/stats`` shows the writer's and sinks' counters.
"""

from __future__ import annotations

import asyncio
import json
import re

from rs3gw import errors
from rs3gw.audit import AuditService, Query
from rs3gw.protocol.admin import AdminRoute
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.response import Response

DEFAULT_LIMIT = 1000


def _json(doc: object) -> Response:
    return Response(200, {"content-type": "application/json"}, json.dumps(doc).encode())


def audit_routes(service: AuditService) -> list[AdminRoute]:
    async def events(ctx: Ctx, m: re.Match[str]) -> Response:
        params = dict(ctx.req.query)
        params.setdefault("limit", str(DEFAULT_LIMIT))
        try:
            query = Query.from_params(params)
        except ValueError as exc:
            raise errors.InvalidArgument(str(exc)) from None
        records, total = await asyncio.to_thread(service.query, query)
        return _json({"events": records, "count": len(records), "matched": total})

    async def verify(ctx: Ctx, m: re.Match[str]) -> Response:
        report = await asyncio.to_thread(service.verify)
        return _json(report.to_json())

    async def stats(ctx: Ctx, m: re.Match[str]) -> Response:
        return _json(service.stats())

    return [
        ("GET", re.compile(r"audit/events"), events),
        ("GET", re.compile(r"audit/verify"), verify),
        ("GET", re.compile(r"audit/stats"), stats),
    ]
