"""Prometheus metrics: every ``rs3gw_`` series is defined here and exposed at ``GET /metrics``.

Request series are fed by the request observer (``RequestEvent``) and the in-flight hook.
Data-directory state (storage per bucket, dedup savings, scrub results) comes from providers the
composition root injects; usage and dedup totals are cached for ``state_ttl`` seconds, so a scrape
never scans the metadata store. Compression savings are counted as blobs are written.

With ``--workers N`` the CLI points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the
workers start: every process then writes its series to files there, and a scrape, whichever worker
answers it, aggregates all processes (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from rs3gw.protocol.observe import RequestEvent
from rs3gw.protocol.response import Response

log = logging.getLogger("rs3gw.metrics")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# *_created series double the page, and no dashboard reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "rs3gw_requests", "S3 requests answered, by operation and HTTP status", ["operation", "status"],
    registry=REGISTRY,
)  # fmt: skip
LATENCY = Histogram(
    "rs3gw_request_duration_seconds",
    "Time from request start to the last response byte, by operation",
    ["operation"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
RECEIVED = Counter(
    "rs3gw_bytes_received", "Request body bytes, by operation", ["operation"], registry=REGISTRY
)
SENT = Counter("rs3gw_bytes_sent", "Response body bytes, by operation", ["operation"], registry=REGISTRY)
IN_FLIGHT = Gauge(
    "rs3gw_requests_in_flight", "S3 requests being served now", registry=REGISTRY, multiprocess_mode="livesum"
)
ERRORS = Counter(
    "rs3gw_errors",
    "S3 error responses, by operation and S3 error code",
    ["operation", "code"],
    registry=REGISTRY,
)
COMPRESSION_LOGICAL = Counter(
    "rs3gw_compression_logical_bytes",
    "Bytes written through the compression layer",
    ["codec"],
    registry=REGISTRY,
)
COMPRESSION_STORED = Counter(
    "rs3gw_compression_stored_bytes",
    "Bytes the compression layer stored for them",
    ["codec"],
    registry=REGISTRY,
)

CORRUPT_READS = Counter(
    "rs3gw_corrupt_reads",
    "GETs failed by verify_on_read: bytes not matching their stored checksums, or undecodable",
    ["reason"],
    registry=REGISTRY,
)
for _reason in ("checksum", "unreadable"):  # present at 0 from the start, so alerts can use increase()
    CORRUPT_READS.labels(_reason)


_SERIES: dict[tuple[Any, tuple[str, ...]], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, looked up once: ``labels()`` takes a lock and validates the
    labels on every call, about half the cost of the update itself. A series still appears only
    once a request first updates it."""
    key = (metric, labels)
    found = _SERIES.get(key)
    if found is None:
        found = _SERIES[key] = metric.labels(*labels)
    return found


def observe(e: RequestEvent) -> None:
    """The request observer: runs on the event loop after each response, so only counter updates."""
    op = e.operation or "unknown"  # failed before routing (bad signature, malformed URI, ...)
    _child(REQUESTS, op, str(e.status)).inc()
    _child(LATENCY, op).observe(e.duration)
    if e.bytes_in:
        _child(RECEIVED, op).inc(e.bytes_in)
    if e.bytes_out and e.method != "HEAD":
        _child(SENT, op).inc(e.bytes_out)
    if e.error_code:
        ERRORS.labels(op, e.error_code).inc()
    IN_FLIGHT.dec()  # incremented by request_started


def request_started() -> None:
    IN_FLIGHT.inc()


def blob_written(codec: str, logical: int, stored: int) -> None:
    """The compression layer's hook: one call per blob written."""
    COMPRESSION_LOGICAL.labels(codec).inc(logical)
    COMPRESSION_STORED.labels(codec).inc(stored)


PCACHE_EVENTS = Counter(
    "rs3gw_cache_events",
    "Predictive cache ([cache]) events: hits, misses, prefetch_issued, prefetch_used, evictions, ...",
    ["event"],
    registry=REGISTRY,
)


def cache_event(event: str, n: int) -> None:
    """The predictive cache's hook (``blobs.predictive_cache``)."""
    PCACHE_EVENTS.labels(event).inc(n)


def _cache_hit_ratio(families: Iterable[Metric]) -> Iterator[Metric]:
    """Hits over lookups of the predictive cache, over all processes."""
    counts = {"hits": 0.0, "misses": 0.0}
    for fam in families:
        if fam.name == "rs3gw_cache_events":
            for s in fam.samples:
                if s.name.endswith("_total") and s.labels.get("event") in counts:
                    counts[s.labels["event"]] += s.value
    looked = counts["hits"] + counts["misses"]
    if looked:
        yield GaugeMetricFamily(
            "rs3gw_cache_hit_ratio",
            "Fraction of predictive-cache lookups that hit",
            value=counts["hits"] / looked,
        )


ZEROCOPY_SENT = Counter(
    "rs3gw_zerocopy_sent_bytes", "GET body bytes sent with sendfile ([storage.zerocopy])", registry=REGISTRY
)


def corrupt_read(reason: str) -> None:
    """The read verifier's hook (engine.verify_read): one call per failed GET."""
    CORRUPT_READS.labels(reason).inc()


@dataclass(frozen=True)
class StateSources:
    """Where data-directory state comes from; all but ``scrub`` are awaited on the event loop."""

    buckets: Callable[[], Awaitable[list[str]]]
    usage: Callable[[str], Awaitable[tuple[int, int]]]  # bucket -> (object versions, bytes)
    dedup: Callable[[], Awaitable[tuple[int, int]]] | None  # (logical, stored) bytes; None: dedup off
    scrub: Callable[[], dict[str, Any]]  # persisted scrub status; blocking, run in a thread


class _Families:
    """A collector over a fixed list of families (what a scrape yields besides the registry's)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


class Exporter:
    """Renders the exposition; one per process, at /metrics and/or the admin API's ``metrics``."""

    def __init__(self, sources: StateSources, public: bool, state_ttl: float = 10.0) -> None:
        self.sources = sources
        self.public = public
        self.state_ttl = state_ttl
        self.multiprocess = MULTIPROC_ENV in os.environ
        self._lock = asyncio.Lock()
        self._usage: dict[str, tuple[int, int]] = {}
        self._dedup: tuple[int, int] | None = None
        self._scrub: dict[str, Any] = {}
        self._refreshed = float("-inf")

    async def render(self, *_: object) -> Response:
        """Also an admin route handler, which is called with (ctx, match)."""
        await self._refresh()
        body = await asyncio.to_thread(self._generate)
        return Response(200, {"content-type": CONTENT_TYPE_LATEST}, body)

    def _generate(self) -> bytes:
        registry = CollectorRegistry()
        if self.multiprocess:
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            requests = _Families(list(registry.collect()))
        else:
            requests = _Families(list(REGISTRY.collect()))
        out = CollectorRegistry()
        out.register(requests)
        out.register(
            _Families(
                [
                    *_compression_ratio(requests.families),
                    *_cache_hit_ratio(requests.families),
                    *self._state_families(),
                ]
            )
        )
        return generate_latest(out)

    async def _refresh(self) -> None:
        async with self._lock:
            try:
                if time.monotonic() - self._refreshed >= self.state_ttl:
                    self._usage = {b: await self.sources.usage(b) for b in await self.sources.buckets()}
                    if self.sources.dedup is not None:
                        self._dedup = await self.sources.dedup()
                    self._refreshed = time.monotonic()
                self._scrub = await asyncio.to_thread(self.sources.scrub)
            except Exception:  # stale values beat a failed scrape
                log.exception("metrics: refreshing data-directory state failed")

    def _state_families(self) -> Iterator[Metric]:
        size = GaugeMetricFamily(
            "rs3gw_bucket_bytes", "Bytes stored per bucket (all versions)", labels=["bucket"]
        )
        count = GaugeMetricFamily(
            "rs3gw_bucket_objects",
            "Object versions stored per bucket (delete markers excluded)",
            labels=["bucket"],
        )
        for bucket, (n, b) in sorted(self._usage.items()):
            size.add_metric([bucket], b)
            count.add_metric([bucket], n)
        yield size
        yield count
        if self._dedup is not None:
            logical, stored = self._dedup
            yield GaugeMetricFamily("rs3gw_dedup_logical_bytes", "Bytes of deduplicated data", value=logical)
            yield GaugeMetricFamily(
                "rs3gw_dedup_stored_bytes", "Distinct chunk bytes stored for them", value=stored
            )
            yield GaugeMetricFamily(
                "rs3gw_dedup_ratio", "Fraction of deduplicated bytes saved", value=_saved(logical, stored)
            )
        yield from _scrub_families(self._scrub)


def _saved(logical: float, stored: float) -> float:
    return 1.0 - stored / logical if logical else 0.0


def _compression_ratio(families: Iterable[Metric]) -> Iterator[Metric]:
    """Fraction of bytes saved by compression, over writes to buckets where it was on."""
    sums = {"rs3gw_compression_logical_bytes": 0.0, "rs3gw_compression_stored_bytes": 0.0}
    for fam in families:
        if fam.name in sums:
            sums[fam.name] += sum(
                s.value for s in fam.samples if s.name.endswith("_total") and s.labels.get("codec") != "none"
            )
    logical, stored = sums.values()
    if logical:
        yield GaugeMetricFamily(
            "rs3gw_compression_ratio",
            "Fraction of written bytes saved by compression",
            value=_saved(logical, stored),
        )


def _scrub_families(status: dict[str, Any]) -> Iterator[Metric]:
    totals = status.get("totals") or {}
    last = status.get("last") or {}
    counters = (
        ("rs3gw_scrub_runs", "Scrub passes completed", "runs"),
        ("rs3gw_scrub_checked_bytes", "Bytes read and verified by scrubs", "bytes_checked"),
        ("rs3gw_scrub_corrupt_found", "Corrupt object versions found by scrubs", "corrupt_found"),
        ("rs3gw_scrub_repaired", "Corrupt object versions repaired from a backup by scrubs", "repaired"),
    )
    for name, doc, key in counters:
        yield CounterMetricFamily(name, doc, value=float(totals.get(key, 0)))
    gauges: tuple[tuple[str, str, str | None], ...] = (
        (
            "rs3gw_scrub_last_checked_objects",
            "Object versions verified by the last scrub",
            "versions_checked",
        ),
        ("rs3gw_scrub_last_corrupt_objects", "Corrupt object versions the last scrub found", None),
        ("rs3gw_scrub_last_repaired_objects", "Object versions the last scrub repaired", "repaired"),
        (
            "rs3gw_scrub_quarantined_objects",
            "Quarantined object versions as of the last scrub",
            "quarantined",
        ),
        ("rs3gw_scrub_last_duration_seconds", "Duration of the last scrub", "duration"),
        ("rs3gw_scrub_last_finished_timestamp_seconds", "When the last scrub finished", "finished"),
    )
    for gname, gdoc, gkey in gauges:
        value = len(last.get("corrupt") or []) if gkey is None else last.get(gkey, 0)
        yield GaugeMetricFamily(gname, gdoc, value=float(value))
