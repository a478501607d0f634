"""The ``[audit]`` TOML table, parsed here so config.py only hands the raw table over.

Errors are ValueError with the offending key first; config.py turns them into ConfigError.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, fields
from typing import Any
from urllib.parse import urlsplit

COMPRESSIONS = ("zstd", "gzip")


@dataclass(frozen=True)
class AuditSettings:
    """Where the tamper-evident log lives, how it rotates, where copies go and what counts as an attack."""

    enabled: bool = True
    dir: str = ""  # empty: DATA_DIR/audit
    rotate_bytes: int = 64 << 20
    rotate_seconds: int = 86400  # 0: size-based rotation only
    compression: str = "zstd"  # of closed segments: zstd | gzip
    queue_size: int = 100_000  # events waiting for the writer; beyond it they are counted as dropped
    webhook_url: str = ""
    syslog: str = ""  # udp://HOST:PORT, tcp://HOST:PORT or unix:///dev/log
    s3_endpoint: str = ""  # http(s)://HOST:PORT of an S3 service receiving batch objects
    s3_bucket: str = ""
    s3_prefix: str = "audit/"
    s3_region: str = "us-east-1"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    sink_queue_size: int = 10_000  # per forwarding sink
    sink_retries: int = 5  # attempts per batch before it is dropped (and counted)
    auth_fail_limit: int = 10  # signature failures from one IP within auth_fail_window ...
    auth_fail_window: int = 60
    throttle_seconds: int = 300  # ... throttle that IP (503 SlowDown) this long
    # Comma-separated IPs/CIDRs never throttled: a trusted proxy that forwards many clients, or a
    # test harness that sends bad signatures on purpose. Env RS3GW_AUDIT_THROTTLE_EXEMPT overrides.
    throttle_exempt: str = ""
    deny_spike_limit: int = 50  # AccessDenied responses within deny_spike_window raise an alert
    deny_spike_window: int = 60

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "s3_secret_key"}
        return f"AuditSettings({shown!r}, s3_secret_key='***')"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_INT_MIN = {
    "rotate_bytes": 1024,
    "rotate_seconds": 0,
    "queue_size": 1,
    "sink_queue_size": 1,
    "sink_retries": 1,
    "auth_fail_limit": 1,
    "auth_fail_window": 1,
    "throttle_seconds": 1,
    "deny_spike_limit": 1,
    "deny_spike_window": 1,
}


def _check(name: str, value: object) -> object:
    want: type = type(getattr(AuditSettings(), name))
    if type(value) is not want:
        kind = {bool: "true or false", int: "an integer", str: "a string"}[want]
        raise ValueError(f"audit.{name}: expected {kind}, got {value!r}")
    if want is int and isinstance(value, int) and value < _INT_MIN.get(name, 0):
        raise ValueError(f"audit.{name}: must be at least {_INT_MIN.get(name, 0)}, got {value}")
    if name == "compression" and value not in COMPRESSIONS:
        raise ValueError(f"audit.compression: expected zstd or gzip, got {value!r}")
    if name in ("webhook_url", "s3_endpoint") and value:
        parts = urlsplit(str(value))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"audit.{name}: expected an http:// or https:// URL, got {value!r}")
    if name == "throttle_exempt" and value:
        for part in str(value).split(","):
            try:
                ipaddress.ip_network(part.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"audit.throttle_exempt: {part.strip()!r} is not an IP address or CIDR"
                ) from None
    if name == "syslog" and value:
        parts = urlsplit(str(value))
        ok = (parts.scheme in ("udp", "tcp") and parts.hostname and parts.port) or (
            parts.scheme == "unix" and parts.path
        )
        if not ok:
            raise ValueError(
                f"audit.syslog: expected udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH, got {value!r}"
            )
    return value


def parse_audit_table(raw: object) -> AuditSettings:
    """Validate the ``[audit]`` table (or the JSON a worker process receives) into AuditSettings."""
    if raw is None:
        return AuditSettings()
    if isinstance(raw, AuditSettings):
        return raw
    if not isinstance(raw, dict):
        raise ValueError("audit: expected a table")
    known = {f.name for f in fields(AuditSettings)}
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in known:
            raise ValueError(f"audit.{name}: unknown key (known: {', '.join(sorted(known))})")
        values[name] = _check(name, value)
    out = AuditSettings(**values)
    s3_keys = (out.s3_endpoint, out.s3_bucket, out.s3_access_key, out.s3_secret_key)
    if any(s3_keys) and not all(s3_keys):
        raise ValueError(
            "audit.s3_endpoint: the S3 sink needs s3_endpoint, s3_bucket, s3_access_key and s3_secret_key"
        )
    return out


def audit_from_json(text: str) -> AuditSettings:
    return parse_audit_table(json.loads(text))
