"""Admin route ``GET /_rs3gw/admin/storage/report``: the storage-class analysis and cost estimate."""

from __future__ import annotations

import json
import re
import time

from rs3gw.engine.storage_report import build_report
from rs3gw.engine.tier_settings import TierSettings
from rs3gw.protocol.admin import AdminRoute
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.response import Response


def storage_report_routes(settings: TierSettings, owner_ids: list[str]) -> list[AdminRoute]:
    async def get_report(ctx: Ctx, m: re.Match[str]) -> Response:
        engine = ctx.engine
        await engine.tiers.flush_access()  # counts still in memory belong in the report
        report = await build_report(engine.store, owner_ids, settings, engine.tiers.day, time.time())
        return Response(200, {"content-type": "application/json"}, json.dumps(report).encode())

    return [("GET", re.compile(r"storage/report"), get_report)]
