"""Wiring of the operator-facing features into an app: Prometheus metrics, the background scrubber
and JSON logs.

Kept beside ``wiring.py`` (which calls the ``with_*`` functions) because it reaches
into the blob stack to find the layers whose statistics it exposes.
"""

from __future__ import annotations

import asyncio
import logging
import re

from rs3gw.blobs.base import BlobStore
from rs3gw.blobs.compressed import CompressedBlobStore
from rs3gw.blobs.dedup import DedupBlobStore
from rs3gw.config import Settings
from rs3gw.heal import ScrubScheduler, load_status
from rs3gw.meta.store import all_buckets
from rs3gw.protocol import metrics
from rs3gw.protocol.app import S3App


def _layers(blobs: BlobStore) -> list[BlobStore]:
    """The blob stack from the top down (each wrapper keeps what it wraps in ``inner``)."""
    out = [blobs]
    while isinstance(inner := getattr(out[-1], "inner", None), BlobStore):
        out.append(inner)
    return out


def with_metrics(app: S3App, settings: Settings) -> metrics.Exporter:
    engine = app.engine
    layers = _layers(engine.blobs)
    dedup = next((b for b in layers if isinstance(b, DedupBlobStore)), None)
    for layer in layers:
        if isinstance(layer, CompressedBlobStore):
            layer.on_written = metrics.blob_written
    engine.read_check.on_corrupt = metrics.corrupt_read
    owners = list(app.owners)

    async def buckets() -> list[str]:
        return [b.name for b in await all_buckets(engine.store, owners)]

    async def dedup_totals() -> tuple[int, int]:
        assert dedup is not None
        t = await asyncio.to_thread(dedup.index.totals)
        return t.logical_bytes, t.stored_bytes

    sources = metrics.StateSources(
        buckets=buckets,
        usage=engine.store.bucket_usage,
        dedup=dedup_totals if dedup is not None else None,
        scrub=lambda: load_status(settings.data_dir),
    )
    exporter = metrics.Exporter(sources, settings.metrics_public, settings.metrics_refresh)
    app.observers.append(metrics.observe)
    app.on_request_start = metrics.request_started
    app.admin_routes.append(("GET", re.compile(r"metrics"), exporter.render))
    if settings.metrics_public:
        app.metrics_page = exporter.render
    return exporter


def with_json_logs(app: S3App, settings: Settings) -> None:
    """``--log-format json``: an access line per request; a worker process (spawned with no logging
    configured) sets the JSON handler up itself."""
    if settings.log_format != "json":
        return
    from rs3gw import jsonlog

    if not any(isinstance(h.formatter, jsonlog.JsonFormatter) for h in logging.getLogger().handlers):
        jsonlog.setup(settings.log_level)
    app.observers.append(jsonlog.log_request)


def with_scrubber(app: S3App, settings: Settings) -> None:
    """The background scrubber, when ``[scrub] interval`` is above 0."""
    if settings.scrub_interval <= 0:
        return
    scheduler = ScrubScheduler(app.engine, settings)
    app.on_startup.append(scheduler.start)
    app.on_shutdown.append(scheduler.stop)
