"""Optional OpenTelemetry tracing: one server span per S3 request, exported over OTLP/HTTP.

Spans are made from the protocol's request observers (``protocol.observe.RequestEvent``), after the
response went out, with the request's real start and end times, so tracing adds nothing to the
request path but a queue put (the SDK's batch processor exports from its own thread).

On when ``[tracing] enabled = true``, when ``[tracing] endpoint`` is set, or when the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is in the environment. The
SDK is an optional extra (``pip install 'rs3gw[tracing]'``); without it the gateway logs one line
saying so and runs untraced. The other ``OTEL_*`` variables (``OTEL_EXPORTER_OTLP_HEADERS``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_BSP_*``) work as the SDK documents.

```toml
[tracing]
enabled = true
endpoint = "http://otel-collector:4318"   # OTLP/HTTP; /v1/traces is appended
service_name = "rs3gw"
sample_ratio = 1.0                         # fraction of requests traced
```

Object keys are never put on spans (they are user data that logs and traces must not carry).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from rs3gw.protocol.observe import RequestEvent

log = logging.getLogger("rs3gw.tracing")
INSTALL_HINT = "pip install 'rs3gw[tracing]'"


@dataclass(frozen=True)
class TracingSettings:
    enabled: bool = False
    endpoint: str = ""  # OTLP/HTTP base URL (or the full .../v1/traces URL); "" = the SDK's env/default
    service_name: str = "rs3gw"
    sample_ratio: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def traces_url(self) -> str | None:
        """The exporter's URL; None leaves it to the SDK (OTEL_EXPORTER_OTLP_*ENDPOINT, localhost:4318)."""
        if not self.endpoint:
            return None
        base = self.endpoint.rstrip("/")
        return base if base.endswith("/v1/traces") else base + "/v1/traces"


def parse_tracing_table(value: object) -> TracingSettings:
    """Validate ``[tracing]`` (or the JSON a worker process receives)."""
    if value is None:
        return TracingSettings()
    if isinstance(value, TracingSettings):
        return value
    if not isinstance(value, dict):
        raise ValueError("tracing: expected a table")
    known = TracingSettings.__dataclass_fields__
    for key in value:
        if key not in known:
            raise ValueError(f"tracing.{key}: unknown key (known: {', '.join(sorted(known))})")
    enabled = value.get("enabled", bool(value.get("endpoint")))
    if not isinstance(enabled, bool):
        raise ValueError("tracing.enabled: expected true or false")
    endpoint = value.get("endpoint", "")
    if not isinstance(endpoint, str) or (endpoint and not endpoint.startswith(("http://", "https://"))):
        raise ValueError("tracing.endpoint: expected an http:// or https:// URL")
    name = value.get("service_name", "rs3gw")
    if not isinstance(name, str) or not name:
        raise ValueError("tracing.service_name: expected a non-empty string")
    ratio = value.get("sample_ratio", 1.0)
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0.0 <= ratio <= 1.0:
        raise ValueError("tracing.sample_ratio: expected a number from 0 to 1")
    return TracingSettings(enabled, endpoint, name, float(ratio))


def tracing_with_env(settings: TracingSettings, env: Mapping[str, str]) -> TracingSettings:
    """The OpenTelemetry variables turn tracing on (the SDK reads the endpoint from them itself)."""
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        settings = replace(settings, enabled=True)
    if env.get("OTEL_SERVICE_NAME"):
        settings = replace(settings, service_name=env["OTEL_SERVICE_NAME"])
    return settings


class RequestTracer:
    """Turns each RequestEvent into a finished SERVER span; close() flushes what is queued."""

    def __init__(self, settings: TracingSettings) -> None:
        # Imported here: the SDK is an optional extra; ImportError tells the caller it is missing.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio
        from opentelemetry.trace import SpanKind, Status, StatusCode

        from rs3gw import __version__

        resource = Resource.create({"service.name": settings.service_name, "service.version": __version__})
        # A provider of our own, not the global one: the gateway's spans never mix with a library's.
        self.provider = TracerProvider(
            resource=resource, sampler=ParentBasedTraceIdRatio(settings.sample_ratio)
        )
        exporter = (
            OTLPSpanExporter(endpoint=settings.traces_url) if settings.traces_url else OTLPSpanExporter()
        )
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("rs3gw.protocol", __version__)
        self._server, self._status, self._code = SpanKind.SERVER, Status, StatusCode

    def observe(self, e: RequestEvent) -> None:
        start_ns = int(e.started * 1e9)
        attrs: dict[str, Any] = {
            "rpc.system": "aws-api",
            "rpc.service": "S3",
            "rpc.method": e.operation,
            "aws.request_id": e.request_id,
            "http.request.method": e.method,
            "http.response.status_code": e.status,
            "url.scheme": "https" if e.secure else "http",
            "client.address": e.client_ip,
            "rs3gw.bytes_in": e.bytes_in,
            "rs3gw.bytes_out": e.bytes_out,
        }
        if e.bucket:
            attrs["aws.s3.bucket"] = e.bucket
        if e.error_code:
            attrs["error.type"] = e.error_code
        if e.principal:
            attrs["enduser.id"] = e.principal
        span = self.tracer.start_span(
            f"S3.{e.operation}" if e.operation else e.method, kind=self._server, attributes=attrs,
            start_time=start_ns,
        )  # fmt: skip
        if e.status >= 500:  # a 4xx is the client's error, not the server span's (HTTP conventions)
            span.set_status(self._status(self._code.ERROR, e.error_code or str(e.status)))
        span.end(end_time=start_ns + int(e.duration * 1e9))

    async def close(self) -> None:
        # Flushes the batch queue, bounded by the exporter's timeout: off the event loop.
        await asyncio.to_thread(self.provider.shutdown)


def build_tracer(settings: TracingSettings) -> RequestTracer | None:
    """The tracer, or None (logged) when tracing is off or the SDK is not installed."""
    if not settings.enabled:
        return None
    try:
        return RequestTracer(settings)
    except ImportError as exc:
        log.warning(
            "tracing is configured but the OpenTelemetry SDK is not installed (%s): %s", exc, INSTALL_HINT
        )
        return None
