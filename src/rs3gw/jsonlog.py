"""``--log-format json``: one JSON object per log line, and one access line per S3 request carrying
its request id (the ``x-amz-request-id`` the client saw), for log shippers that parse JSON.

Text stays the default: an access line per request costs a synchronous write on the event loop.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from rs3gw.protocol.observe import RequestEvent

access = logging.getLogger("rs3gw.access")


class JsonFormatter(logging.Formatter):
    """``time level logger message`` plus a record's ``fields`` (extra={"fields": {...}})."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def setup(level: str) -> None:
    """Route every logger (uvicorn's too, when it is started with ``log_config=None``) to JSON on stderr."""
    numeric = logging.DEBUG if level == "trace" else getattr(logging, level.upper(), logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)


def log_request(e: RequestEvent) -> None:
    """The request observer of JSON mode: one access line per S3 request."""
    fields = {
        "request_id": e.request_id,
        "method": e.method,
        "operation": e.operation,
        "bucket": e.bucket,
        "key": e.key,
        "status": e.status,
        "error_code": e.error_code or None,
        "duration_ms": round(e.duration * 1000, 3),
        "bytes_in": e.bytes_in,
        "bytes_out": e.bytes_out,
        "principal": e.principal,
        "client_ip": e.client_ip,
    }
    access.info("request", extra={"fields": fields})
