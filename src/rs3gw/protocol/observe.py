"""What one request did, handed to observers (audit log, metrics) after its response is sent.

Observers run on the event loop after the response went out: they must not block (queue work
for a sink instead) and their failures never reach the client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rs3gw.model import frozen_from


@dataclass(frozen=True)
class RequestEvent:
    request_id: str
    started: float  # epoch seconds
    duration: float  # seconds, until the last response byte was handed to the server
    method: str
    operation: str  # AWS operation name; "" when the request failed before routing
    bucket: str | None
    key: str | None
    principal: str  # account name; "anonymous" for unsigned requests; "" when auth failed
    access_key: str
    client_ip: str
    secure: bool
    status: int
    error_code: str  # S3 error code, "" on success
    bytes_in: int  # request Content-Length (decoded length for aws-chunked), 0 when absent
    bytes_out: int  # response body length, 0 when unknown


Observer = Callable[[RequestEvent], None]


def make_event(values: dict[str, Any]) -> RequestEvent:
    """A RequestEvent from all its fields, built once per request without the frozen dataclass
    ``__init__`` (``rs3gw.model.frozen_from``)."""
    return frozen_from(RequestEvent, values)
