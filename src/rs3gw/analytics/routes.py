"""Admin routes ``GET /_rs3gw/admin/analytics/{requests,usage,access,cost,cache}``.

``requests`` takes ``?bucket=`` and ``?minutes=`` (a shorter window than ``window_hours``); the
storage walk behind ``usage``, ``access`` and ``cost`` is cached for ``usage_refresh`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from typing import Any

from rs3gw import errors
from rs3gw.analytics.recorder import RequestAnalytics, merged_with
from rs3gw.analytics.report import access_doc, cost_doc, requests_doc, usage_doc
from rs3gw.engine import Engine
from rs3gw.engine.storage_report import build_report
from rs3gw.engine.tier_settings import TierSettings
from rs3gw.protocol.admin import AdminRoute
from rs3gw.protocol.context import Ctx
from rs3gw.protocol.response import Response


def _json(doc: object) -> Response:
    return Response(200, {"content-type": "application/json"}, json.dumps(doc).encode())


class AnalyticsApi:
    def __init__(
        self,
        recorder: RequestAnalytics,
        tiers: TierSettings,
        owner_ids: list[str],
        cache_stats: Callable[[], dict[str, Any]] | None,
    ) -> None:
        self.recorder = recorder
        self.tiers = tiers
        self.owner_ids = owner_ids
        self.cache_stats = cache_stats
        self._lock = asyncio.Lock()
        self._report: dict[str, Any] | None = None
        self._report_at = float("-inf")

    async def storage_report(self, engine: Engine) -> dict[str, Any]:
        async with self._lock:
            refresh = self.recorder.settings.usage_refresh
            if self._report is None or time.monotonic() - self._report_at >= refresh:
                day = engine.tiers.day
                self._report = await build_report(engine.store, self.owner_ids, self.tiers, day, time.time())
                self._report_at = time.monotonic()
            return self._report

    def _window(self, ctx: Ctx) -> float:
        window = self.recorder.settings.window_s
        raw = ctx.q("minutes")
        if raw is None:
            return window
        if not raw.isdigit() or int(raw) == 0:
            raise errors.InvalidArgument("minutes must be a positive integer")
        return min(window, int(raw) * 60.0)

    async def _requests(self, ctx: Ctx) -> dict[str, Any]:
        now = time.time()
        window = self._window(ctx)
        series = await merged_with(self.recorder, now)
        series.prune(int((now - window) // 60) * 60)
        return requests_doc(series, now, window, ctx.q("bucket"))

    async def requests(self, ctx: Ctx, m: re.Match[str]) -> Response:
        return _json(await self._requests(ctx))

    async def usage(self, ctx: Ctx, m: re.Match[str]) -> Response:
        return _json(usage_doc(await self.storage_report(ctx.engine)))

    async def access(self, ctx: Ctx, m: re.Match[str]) -> Response:
        series = await merged_with(self.recorder, time.time())
        usage = usage_doc(await self.storage_report(ctx.engine))
        objects = {b: u["objects"] for b, u in usage["buckets"].items()}
        return _json(access_doc(series, objects))

    async def cost(self, ctx: Ctx, m: re.Match[str]) -> Response:
        report = await self.storage_report(ctx.engine)
        return _json(cost_doc(await self._requests(ctx), report, self.recorder.settings))

    async def cache(self, ctx: Ctx, m: re.Match[str]) -> Response:
        """This process's predictive cache (each worker has its own)."""
        return _json(self.cache_stats() if self.cache_stats is not None else {"enabled": False})

    def routes(self) -> list[AdminRoute]:
        return [
            ("GET", re.compile(r"analytics/requests"), self.requests),
            ("GET", re.compile(r"analytics/usage"), self.usage),
            ("GET", re.compile(r"analytics/access"), self.access),
            ("GET", re.compile(r"analytics/cost"), self.cost),
            ("GET", re.compile(r"analytics/cache"), self.cache),
        ]
