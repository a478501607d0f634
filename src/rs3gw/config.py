"""Typed gateway settings merged from flags, RS3GW_* environment variables and a TOML file.

Also owns the primary account's key pair: generated once, stored under the data dir (mode 0600).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import string
import tempfile
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from rs3gw.analytics.settings import AnalyticsSettings, parse_analytics_table
from rs3gw.audit.settings import AuditSettings, parse_audit_table
from rs3gw.blobs.compressed import parse_compression
from rs3gw.blobs.predictive_cache import CacheSettings, parse_cache_table
from rs3gw.engine.tier_settings import TierSettings, parse_tier_tables
from rs3gw.model import Owner
from rs3gw.tracing import TracingSettings, parse_tracing_table, tracing_with_env
from rs3gw.transform.settings import TransformSettings, parse_transforms_table

__all__ = [
    "CREDENTIALS_RELPATH",
    "ENV_PREFIX",
    "SETTINGS_JSON_ENV",
    "ConfigError",
    "Settings",
    "UserSpec",
    "load_settings",
    "option_sources",
    "parse_user_spec",
    "settings_from_json",
    "settings_to_json",
]

ENV_PREFIX = "RS3GW_"
#: Environment variable through which `rs3gw serve --workers N` hands settings to worker processes.
SETTINGS_JSON_ENV = "RS3GW_SETTINGS_JSON"
#: Where the generated primary key pair lives, relative to the data dir.
CREDENTIALS_RELPATH = Path(".rs3gw") / "credentials.json"

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
DEFAULT_ADMIN_NAME = "admin"

_ACCESS_KEY_RE = re.compile(r"[A-Za-z0-9._-]{3,128}")
_USER_NAME_RE = re.compile(r"[A-Za-z0-9._@+=-]{1,64}")
# A pinned canonical id: AWS's are 64 hex digits; other servers use user names ("testid",
# "tenant$user"), so any of these characters is accepted.
_OWNER_ID_RE = re.compile(r"[A-Za-z0-9._@+=:$-]{1,128}")
_REGION_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_DOMAIN_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?")
_MIN_SECRET_LEN = 8
_GEN_ACCESS_ALPHABET = string.ascii_uppercase + string.digits
_GEN_SECRET_ALPHABET = string.ascii_letters + string.digits + "-_"
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class ConfigError(Exception):
    """A setting is unusable; the message is one line that names the offending key, flag or env var."""


@dataclass(frozen=True)
class UserSpec:
    """One account allowed to sign requests.

    ``id`` and ``display_name`` are optional: conformance suites and migrations from another S3
    compare owners against fixed canonical ids and names, so an account may pin them. Empty means
    the stable default derived from ``name`` (``Owner.for_account``).
    """

    name: str
    access_key: str
    secret_key: str
    id: str = ""
    display_name: str = ""

    @property
    def owner(self) -> Owner:
        """The canonical id and display name S3 responses report for this account."""
        default = Owner.for_account(self.name)
        return Owner(self.id or default.id, self.display_name or default.display_name)

    def __repr__(self) -> str:
        # Keep secrets out of logs and tracebacks that happen to repr settings.
        return f"UserSpec(name={self.name!r}, access_key={self.access_key!r}, secret_key='***')"


@dataclass(frozen=True)
class Settings:
    """Everything the gateway needs to start; immutable so every component sees the same view."""

    data_dir: Path = Path("./data")
    host: str = "127.0.0.1"
    port: int = 9000
    users: tuple[UserSpec, ...] = ()  # first one is the primary account; non-empty after load_settings
    keys_source: str = ""  # "flags" | "environment" | "config file" | "generated (path)" | "stored (path)"
    region: str = "us-east-1"
    domain: str | None = None  # enables virtual-host-style bucket.domain
    tls_cert: Path | None = None
    tls_key: Path | None = None
    metadata: str = "sqlite"  # later: postgresql://...
    log_level: str = "info"
    log_format: str = "text"  # or "json": JSON log lines plus one access line per request (request id)
    workers: int = 1
    max_object_size: int = 5 * 1024**4
    fsync: bool = True
    dedup_enabled: bool = False  # [storage.dedup] enabled
    dedup_block_size: int = 65536
    dedup_algorithm: str = "fixed-size"  # or "content-defined"
    dedup_min_object_size: int = 131072
    compression: str = "none"  # [storage] compression: "none" | "lz4" | "zstd[:level]", canonical form
    verify_on_read: bool = False  # [storage] verify_on_read: GETs check stored checksums (engine.verify_read)
    small_blob_max: int = 32 << 10  # [storage] small_blob_max: rows, not files (blobs.smallpack)
    zerocopy_enabled: bool = True  # [storage.zerocopy] enabled: sendfile for plain local blobs (measured)
    zerocopy_min_size: int = 1 << 20  # [storage.zerocopy] min_size: smaller GETs are read inline
    zerocopy_direct_io: bool = False  # [storage.zerocopy] direct_io: O_DIRECT blob writes (blobs.directio)
    zerocopy_direct_io_threshold: int = 1 << 20  # [storage.zerocopy] direct_io_threshold: from this size
    zerocopy_mmap: bool = False  # [storage.zerocopy] mmap: long plain reads via a mapping (blobs.mmapread)
    metrics_public: bool = True  # [metrics] public: GET /metrics unauthenticated (else admin API only)
    metrics_refresh: int = 10  # [metrics] refresh: seconds storage/dedup gauges are cached, 0 = per scrape
    scrub_interval: int = 0  # [scrub] interval: seconds between background scrubs, 0 = off
    scrub_rate_mb_s: int = 50  # [scrub] rate_mb_s: scrub read rate limit in MB/s, 0 = unlimited
    scrub_heal_backup: str = ""  # [scrub] heal_backup: DIR or s3://BUCKET/PREFIX to repair corruption from
    scrub_heal_backup_endpoint: str = ""  # [scrub] heal_backup_endpoint: S3 endpoint of an s3:// one
    scrub_heal_backup_access_key: str = ""  # [scrub] heal_backup_access_key/secret_key: its credentials
    scrub_heal_backup_secret_key: str = field(default="", repr=False)
    backend_type: str = "local"  # [backend] type: "local" (DATA_DIR/blobs) or "s3" (an upstream bucket)
    backend_endpoint: str = ""  # [backend] endpoint: http(s)://host:port; empty means AWS S3 itself
    backend_bucket: str = ""  # [backend] bucket: required with type "s3"
    backend_prefix: str = "rs3gw"  # [backend] prefix: key prefix inside the upstream bucket
    backend_region: str = ""  # [backend] region: empty means us-east-1
    backend_access_key: str = ""  # [backend] access_key/secret_key: empty means botocore's chain
    backend_secret_key: str = field(default="", repr=False)
    backend_project: str = ""  # [backend] project: gcs only; empty means the credentials' project
    backend_credentials_file: str = ""  # [backend] credentials_file: gcs service-account JSON; empty: ADC
    backend_connection_string: str = field(default="", repr=False)  # [backend] connection_string: azure
    lifecycle_day_seconds: float = 86400.0  # [lifecycle] day_seconds: length of a lifecycle "day"
    lifecycle_interval: float = 60.0  # [lifecycle] interval: seconds between lifecycle passes
    iam_refresh_interval: float = 10.0  # [iam] refresh_interval: seconds to see other gateways' key changes
    # [http] header_timeout / body_timeout: seconds a client may take to send a request head, and may
    # leave a request body without a byte, before the connection is cut (rs3gw.httpserver); nginx's 60 s.
    http_header_timeout: float = 60.0
    http_body_timeout: float = 60.0
    encryption_cipher: str = (
        "aes-256-gcm"  # [encryption] cipher of new encrypted blobs (or chacha20-poly1305)
    )
    encryption_default: str = "none"  # [encryption] default: "AES256" encrypts writes that ask for nothing
    # [encryption] sse_c_over_http: accept customer keys on plain HTTP (AWS refuses; tests, TLS proxies)
    encryption_sse_c_over_http: bool = False
    audit: AuditSettings = field(default_factory=AuditSettings)  # the whole [audit] table
    tiers: TierSettings = field(default_factory=TierSettings)  # the [tiers] and [pricing] tables
    transforms: TransformSettings = field(default_factory=TransformSettings)  # the [transforms] table
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)  # the [analytics] table
    cache: CacheSettings = field(default_factory=CacheSettings)  # the [cache] table (predictive cache)
    tracing: TracingSettings = field(default_factory=TracingSettings)  # [tracing] + OTEL_* (rs3gw.tracing)

    def __post_init__(self) -> None:
        if self.scrub_heal_backup.startswith("s3://") and not self.scrub_heal_backup_endpoint:
            raise _fail("scrub.heal_backup_endpoint", "an s3:// heal_backup needs the endpoint holding it")
        if self.backend_type != "local" and not self.backend_bucket:
            raise _fail(
                "backend.bucket",
                f"the {self.backend_type} backend needs a bucket (--backend-bucket / RS3GW_BACKEND_BUCKET)",
            )
        if self.backend_type == "azure" and not (
            self.backend_connection_string or (self.backend_endpoint and self.backend_secret_key)
        ):
            raise _fail(
                "backend.connection_string",
                "the azure backend needs a connection string, or an account URL (endpoint) and key (secret_key)",
            )

    @property
    def primary(self) -> UserSpec:
        """The account that owns buckets created without an explicit owner."""
        if not self.users:
            raise ConfigError("config error: no accounts configured")
        return self.users[0]

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


# --------------------------------------------------------------------------- value parsers
#
# Each parser takes the raw value (str from env, anything from TOML / flags) and the label to blame.


def _fail(label: str, problem: str) -> ConfigError:
    return ConfigError(f"config error: {label}: {problem}")


def _show(value: object) -> str:
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _as_str(value: object, label: str) -> str:
    if isinstance(value, Path):
        return str(value)
    if not isinstance(value, str):
        raise _fail(label, f"expected a string, got {type(value).__name__} {_show(value)}")
    return value


def _parse_path(value: object, label: str) -> Path:
    text = _as_str(value, label)
    if not text.strip():
        raise _fail(label, "expected a path, got an empty string")
    return Path(text).expanduser()


def _parse_address(value: object, label: str) -> tuple[str, int]:
    text = _as_str(value, label).strip()
    bad = _fail(label, f"expected HOST:PORT, got {_show(text)}")
    if text.startswith("["):  # [::1]:9000
        close = text.find("]")
        if close < 0 or text[close + 1 : close + 2] != ":":
            raise bad
        host, port_text = text[1:close], text[close + 2 :]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise bad
    if not port_text.isdigit():
        raise bad
    port = int(port_text)
    if port > 65535:
        raise _fail(label, f"port must be 0..65535, got {port}")
    if any(ch.isspace() for ch in host):
        raise bad
    return (host or "0.0.0.0", port)


def _parse_int(value: object, label: str, minimum: int) -> int:
    if isinstance(value, bool):
        raise _fail(label, f"expected an integer, got {_show(value)}")
    if isinstance(value, str):
        try:
            value = int(value.strip().replace("_", ""))
        except ValueError:
            raise _fail(label, f"expected an integer, got {_show(value)}") from None
    if not isinstance(value, int):
        raise _fail(label, f"expected an integer, got {type(value).__name__} {_show(value)}")
    if value < minimum:
        raise _fail(label, f"must be at least {minimum}, got {value}")
    return value


#: ``workers = "auto"``: as many server processes as this process may use CPUs.
WORKERS_AUTO = "auto"


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask, which a container's cpuset or ``taskset``
    narrows, rather than ``os.cpu_count()``'s whole machine."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no sched_getaffinity on this platform
        return max(1, os.cpu_count() or 1)


def _parse_workers(value: object, label: str) -> int:
    """A worker count, or "auto" (any case) for usable_cpus(), resolved here so that workers,
    the banner and the settings hand-off all see the number."""
    if isinstance(value, str) and value.strip().lower() == WORKERS_AUTO:
        return usable_cpus()
    return _parse_int(value, label, 1)


def _parse_bool(value: object, label: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise _fail(label, f"expected true or false, got {_show(value)}")


def _parse_size(value: object, label: str) -> int:
    """A count or size where 0 is allowed."""
    return _parse_int(value, label, 0)


def _parse_cache_ttl(value: object, label: str) -> float:
    """The seed's [storage.cache] ttl_seconds: [cache] ttl, where 0 means entries never expire."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _fail(label, f"expected a number of seconds, got {_show(value)}")
    try:
        n = float(value)
    except ValueError:
        raise _fail(label, f"expected a number of seconds, got {_show(value)}") from None
    if not 0 <= n < float("inf"):
        raise _fail(label, f"must be 0 (no expiry) or a positive number of seconds, got {_show(value)}")
    return n


def _parse_dedup_block(value: object, label: str) -> int:
    n = _parse_int(value, label, 4096)
    if n > 1 << 20:
        raise _fail(label, f"must be within 4096..1048576 (4 KiB-1 MiB), got {n}")
    return n


def _parse_dedup_min(value: object, label: str) -> int:
    n = _parse_int(value, label, 0)
    if n > 64 << 20:
        raise _fail(label, f"must be within 0..67108864 (64 MiB), got {n}")
    return n


def _parse_small_blob_max(value: object, label: str) -> int:
    """Up to 1 MiB: a local writer flushes to its file past 1 MiB, so nothing larger could be a row."""
    n = _parse_size(value, label)
    if not 0 <= n <= 1 << 20:
        raise _fail(label, f"must be within 0..1048576 (1 MiB), got {n}")
    return n


def _parse_seconds(value: object, label: str) -> float:
    """A positive number of seconds (fractions allowed: tests shorten a lifecycle day to 0.05 s)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _fail(label, f"expected a number of seconds, got {_show(value)}")
    try:
        n = float(value)
    except ValueError:
        raise _fail(label, f"expected a number of seconds, got {_show(value)}") from None
    if not 0 < n < float("inf"):
        raise _fail(label, f"must be a positive number of seconds, got {_show(value)}")
    return n


def _parse_backend_type(value: object, label: str) -> str:
    text = _as_str(value, label).strip().lower()
    if text not in ("local", "s3", "gcs", "azure"):
        raise _fail(label, f'expected "local", "s3", "gcs" or "azure", got {_show(value)}')
    return text


def _parse_endpoint(value: object, label: str) -> str:
    text = _as_str(value, label).strip()
    if text and not re.fullmatch(r"https?://[^\s/?#]+/?", text):
        raise _fail(label, f"expected http(s)://HOST[:PORT], got {_show(value)}")
    return text.rstrip("/")


def _parse_dedup_algorithm(value: object, label: str) -> str:
    word = _as_str(value, label).strip().lower()
    if word not in ("fixed-size", "content-defined"):
        raise _fail(label, f"expected fixed-size or content-defined, got {_show(value)}")
    return word


def _parse_cipher(value: object, label: str) -> str:
    word = _as_str(value, label).strip().lower()
    if word not in ("aes-256-gcm", "chacha20-poly1305"):
        raise _fail(label, f"expected aes-256-gcm or chacha20-poly1305, got {_show(value)}")
    return word


def _parse_sse_default(value: object, label: str) -> str:
    word = _as_str(value, label).strip()
    if word.lower() not in ("none", "aes256"):
        raise _fail(label, f'expected "none" or "AES256", got {_show(value)}')
    return "AES256" if word.lower() == "aes256" else "none"


def _parse_compression(value: object, label: str) -> str:
    try:
        return str(parse_compression(_as_str(value, label)))
    except ValueError as exc:
        raise _fail(label, str(exc)) from None


def _parse_region(value: object, label: str) -> str:
    text = _as_str(value, label).strip()
    if not _REGION_RE.fullmatch(text):
        raise _fail(label, f"expected a region name like us-east-1, got {_show(text)}")
    return text


def _parse_domain(value: object, label: str) -> str | None:
    text = _as_str(value, label).strip().strip(".").lower()
    if not text:
        return None  # an explicitly empty domain switches virtual-host style off
    if not _DOMAIN_RE.fullmatch(text):
        raise _fail(label, f"expected a DNS name like s3.example.com, got {_show(text)}")
    return text


def _parse_metadata(value: object, label: str) -> str:
    text = _as_str(value, label).strip()
    if text == "sqlite" or text.startswith(("sqlite:", "postgresql://", "postgres://")):
        return text
    raise _fail(label, f'expected "sqlite" or a postgresql:// URL, got {_show(text)}')


def _parse_log_format(value: object, label: str) -> str:
    text = _as_str(value, label).strip().lower()
    if text not in ("text", "json"):
        raise _fail(label, f"expected text or json, got {_show(text)}")
    return text


def _parse_log_level(value: object, label: str) -> str:
    text = _as_str(value, label).strip().lower()
    if text not in LOG_LEVELS:
        raise _fail(label, f"expected one of {', '.join(LOG_LEVELS)}, got {_show(text)}")
    return text


def _check_access_key(value: object, label: str) -> str:
    text = _as_str(value, label)
    if not _ACCESS_KEY_RE.fullmatch(text):
        raise _fail(label, "access key must be 3..128 characters of A-Z a-z 0-9 . _ -")
    return text


def _check_secret_key(value: object, label: str) -> str:
    text = _as_str(value, label)
    if len(text) < _MIN_SECRET_LEN:
        raise _fail(label, f"secret key must be at least {_MIN_SECRET_LEN} characters")
    return text


def _check_user_name(value: object, label: str) -> str:
    text = _as_str(value, label)
    if not _USER_NAME_RE.fullmatch(text):
        raise _fail(
            label, f"user name must be 1..64 characters of A-Z a-z 0-9 . _ @ + = -, got {_show(text)}"
        )
    return text


def _check_owner_id(value: object, label: str) -> str:
    text = _as_str(value, label)
    if not _OWNER_ID_RE.fullmatch(text):
        raise _fail(
            label, f"canonical id must be 1..128 characters of A-Z a-z 0-9 . _ @ + = : $ -, got {_show(text)}"
        )
    return text


def _check_display_name(value: object, label: str) -> str:
    text = _as_str(value, label)
    if not 1 <= len(text) <= 128 or not text.isprintable():
        raise _fail(label, f"display name must be 1..128 printable characters, got {_show(text)}")
    return text


# --------------------------------------------------------------------------- option table


@dataclass(frozen=True)
class _Option:
    key: str  # TOML key and flags-mapping key
    flag: str  # how the command line spells it, for error messages
    parse: Callable[[object, str], object]
    toml_type: type = str  # TOML is typed, so a quoted number or boolean there is a mistake
    toml_words: tuple[str, ...] = ()  # strings the file may still give for a non-string option

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.upper()


_OPTIONS: tuple[_Option, ...] = (
    _Option("data_dir", "--data-dir", _parse_path),
    _Option("address", "--address", _parse_address),
    _Option("region", "--region", _parse_region),
    _Option("domain", "--domain", _parse_domain),
    _Option("tls_cert", "--tls-cert", _parse_path),
    _Option("tls_key", "--tls-key", _parse_path),
    _Option("metadata", "--metadata", _parse_metadata),
    _Option("log_level", "--log-level", _parse_log_level),
    _Option("log_format", "--log-format", _parse_log_format),
    _Option("workers", "--workers", _parse_workers, int, (WORKERS_AUTO,)),
    _Option("max_object_size", "--max-object-size", lambda v, lbl: _parse_int(v, lbl, 1), int),
    _Option("fsync", "--no-fsync", _parse_bool, bool),
    _Option("access_key", "--access-key", _check_access_key),
    _Option("secret_key", "--secret-key", _check_secret_key),
    _Option("admin_name", "--admin-name", _check_user_name),
    _Option("admin_id", "--admin-id", _check_owner_id),
    _Option("admin_display_name", "--admin-display-name", _check_display_name),
    _Option("dedup_enabled", "--dedup", _parse_bool, bool),
    _Option("dedup_block_size", "--dedup-block-size", _parse_dedup_block, int),
    _Option("dedup_algorithm", "--dedup-algorithm", _parse_dedup_algorithm),
    _Option("dedup_min_object_size", "--dedup-min-size", _parse_dedup_min, int),
    _Option("compression", "--compression", _parse_compression),
    _Option("verify_on_read", "--verify-on-read", _parse_bool, bool),
    _Option("small_blob_max", "--small-blob-max", _parse_small_blob_max, int),
    _Option("zerocopy_enabled", "--zerocopy", _parse_bool, bool),
    _Option("zerocopy_min_size", "--zerocopy-min-size", lambda v, lbl: _parse_int(v, lbl, 0), int),
    # The seed's [storage.zerocopy] keys: splice is our sendfile path.
    _Option("zerocopy_splice", "zerocopy.splice", _parse_bool, bool),
    _Option("zerocopy_direct_io", "zerocopy.direct_io", _parse_bool, bool),
    _Option("zerocopy_direct_io_threshold", "zerocopy.direct_io_threshold", _parse_size, int),
    _Option("zerocopy_mmap", "zerocopy.mmap", _parse_bool, bool),
    # The seed's [storage.cache]: laid over the [cache] table (the predictive cache), see _seed_cache.
    _Option("cache_enabled", "storage.cache.enabled", _parse_bool, bool),
    _Option("cache_max_size_mb", "storage.cache.max_size_mb", _parse_size, int),
    _Option("cache_max_objects", "storage.cache.max_objects", _parse_size, int),
    _Option("cache_ttl_seconds", "storage.cache.ttl_seconds", _parse_cache_ttl),
    _Option("metrics_public", "--private-metrics", _parse_bool, bool),
    _Option("metrics_refresh", "--metrics-refresh", lambda v, lbl: _parse_int(v, lbl, 0), int),
    _Option("scrub_interval", "--scrub-interval", lambda v, lbl: _parse_int(v, lbl, 0), int),
    _Option("scrub_rate_mb_s", "--scrub-rate", lambda v, lbl: _parse_int(v, lbl, 0), int),
    _Option("scrub_heal_backup", "scrub.heal_backup", _as_str),
    _Option("scrub_heal_backup_endpoint", "scrub.heal_backup_endpoint", _as_str),
    _Option("scrub_heal_backup_access_key", "scrub.heal_backup_access_key", _as_str),
    _Option("scrub_heal_backup_secret_key", "scrub.heal_backup_secret_key", _as_str),
    _Option("backend_type", "--backend", _parse_backend_type),
    _Option("backend_endpoint", "--backend-endpoint", _parse_endpoint),
    _Option("backend_bucket", "--backend-bucket", _as_str),
    _Option("backend_prefix", "--backend-prefix", _as_str),
    _Option("backend_region", "--backend-region", _parse_region),
    _Option("backend_access_key", "--backend-access-key", _as_str),
    _Option("backend_secret_key", "--backend-secret-key", _as_str),
    _Option("backend_project", "--backend-project", _as_str),
    _Option("backend_credentials_file", "--backend-credentials-file", _as_str),
    _Option("backend_connection_string", "--backend-connection-string", _as_str),
    _Option("lifecycle_day_seconds", "--lifecycle-day-seconds", _parse_seconds),
    _Option("lifecycle_interval", "--lifecycle-interval", _parse_seconds),
    _Option("iam_refresh_interval", "--iam-refresh-interval", _parse_seconds),
    _Option("http_header_timeout", "--http-header-timeout", _parse_seconds),
    _Option("http_body_timeout", "--http-body-timeout", _parse_seconds),
    _Option("encryption_cipher", "--encryption-cipher", _parse_cipher),
    _Option("encryption_default", "--encryption-default", _parse_sse_default),
    _Option("encryption_sse_c_over_http", "--sse-c-over-http", _parse_bool, bool),
)
_OPTION_BY_KEY = {opt.key: opt for opt in _OPTIONS}
# TOML tables whose keys map to options with a prefix: [storage.dedup] block_size -> dedup_block_size.
_FILE_TABLES = {"storage.dedup": "dedup_", "storage.zerocopy": "zerocopy_", "storage.cache": "cache_"}
_TABLE_KEYS = {
    "storage.dedup": ("enabled", "block_size", "algorithm", "min_object_size"),
    "storage.zerocopy": ("enabled", "min_size", "splice", "direct_io", "direct_io_threshold", "mmap"),
    "storage.cache": ("enabled", "max_size_mb", "max_objects", "ttl_seconds"),
}
# [storage.cache] key -> the [cache] (CacheSettings) field it sets.
_SEED_CACHE = {
    "enabled": "enabled",
    "max_size_mb": "max_bytes",
    "max_objects": "max_objects",
    "ttl_seconds": "ttl",
}
_FILE_NAMES = {prefix + k: f"{t}.{k}" for t, prefix in _FILE_TABLES.items() for k in _TABLE_KEYS[t]}
_STORAGE_KEYS = {"compression", "verify_on_read", "small_blob_max"}  # plain keys of [storage] itself
_FILE_NAMES.update({k: f"storage.{k}" for k in _STORAGE_KEYS})
# Top-level tables whose keys map to options with a prefix: [scrub] interval -> scrub_interval.
_TOP_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "metrics": ("metrics_", ("public", "refresh")),
    "scrub": (
        "scrub_",
        (
            *("interval", "rate_mb_s", "heal_backup", "heal_backup_endpoint"),
            *("heal_backup_access_key", "heal_backup_secret_key"),
        ),
    ),
}
_TOP_TABLES["backend"] = (
    "backend_",
    (
        *("type", "endpoint", "bucket", "prefix", "region", "access_key", "secret_key"),
        *("project", "credentials_file", "connection_string"),
    ),
)
_TOP_TABLES["lifecycle"] = ("lifecycle_", ("day_seconds", "interval"))
_TOP_TABLES["iam"] = ("iam_", ("refresh_interval",))
_TOP_TABLES["http"] = ("http_", ("header_timeout", "body_timeout"))
_TOP_TABLES["encryption"] = ("encryption_", ("cipher", "default", "sse_c_over_http"))
_FILE_NAMES.update({p + k: f"{t}.{k}" for t, (p, keys) in _TOP_TABLES.items() for k in keys})
_FILE_KEYS = (frozenset(_OPTION_BY_KEY) - frozenset(_FILE_NAMES)) | {"users", "storage", *_TOP_TABLES}
_FILE_KEYS |= {"audit"}  # [audit] is validated as a whole by rs3gw.audit.settings
_FILE_KEYS |= {"tiers", "pricing"}  # validated as a whole by rs3gw.engine.tier_settings
_FILE_KEYS |= {"transforms"}  # validated as a whole by rs3gw.transform.settings
_FILE_KEYS |= {"analytics", "cache"}  # rs3gw.analytics.settings, rs3gw.blobs.predictive_cache
_FILE_KEYS |= {"tracing"}  # rs3gw.tracing
_USER_TABLE_KEYS = frozenset({"name", "access_key", "secret_key", "id", "display_name"})


class _Sources:
    """The three layered sources, queried per option in precedence order."""

    def __init__(
        self,
        flags: Mapping[str, object],
        env: Mapping[str, str],
        file_data: Mapping[str, Any],
        file_label: str,
    ) -> None:
        self.flags = flags
        self.env = env
        self.file_data = file_data
        self.file_label = file_label

    def raw(self, opt: _Option) -> tuple[object, str, str] | None:
        """Return (value, label-to-blame, source-name) from the highest-precedence source that sets it."""
        value = self.flags.get(opt.key)
        if value is not None:
            return value, opt.flag, "flags"
        env_value = self.env.get(opt.env)
        if env_value is not None and (env_value != "" or opt.key == "domain"):
            return env_value, opt.env, "environment"
        if opt.key in self.file_data:
            value, label = self.file_data[opt.key], f"{self.file_label}: {_FILE_NAMES.get(opt.key, opt.key)}"
            if (
                opt.toml_type is not str
                and type(value) is not opt.toml_type  # bool is an int subclass, so compare exactly
                and not (isinstance(value, str) and value in opt.toml_words)
            ):
                want = "an integer" if opt.toml_type is int else "true or false"
                raise _fail(label, f"expected {want}, got {type(value).__name__} {_show(value)}")
            return value, label, "config file"
        return None

    def get(self, opt: _Option) -> object | None:
        found = self.raw(opt)
        return None if found is None else opt.parse(found[0], found[1])


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise _fail(str(path), "config file not found") from None
    except OSError as exc:
        raise _fail(str(path), f"cannot read config file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise _fail(str(path), f"invalid TOML: {str(exc).splitlines()[0]}") from None
    for key in data:
        if key not in _FILE_KEYS:
            raise _fail(f"{path}: {key}", f"unknown key (known: {', '.join(sorted(_FILE_KEYS))})")
    return _flatten_tables(data, path)


def _flatten_tables(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """Lift ``[storage.*]`` tables into the flat option keys; anything unknown in them is an error."""
    out = dict(data)
    for tname, (tprefix, keys) in _TOP_TABLES.items():
        section = out.pop(tname, {})
        if not isinstance(section, dict):
            raise _fail(f"{path}: {tname}", "expected a table")
        for key, v in section.items():
            if key not in keys:
                raise _fail(f"{path}: {tname}.{key}", f"unknown key (known: {', '.join(keys)})")
            out[tprefix + key] = v
    storage = out.pop("storage", {})
    if not isinstance(storage, dict):
        raise _fail(f"{path}: storage", "expected a table")
    for name, value in storage.items():
        if name in _STORAGE_KEYS:
            out[name] = value
            continue
        if name == "root":  # the seed's [storage] root: the data directory
            if "data_dir" in out:
                raise _fail(f"{path}: storage.root", "conflicts with data_dir; set one of them")
            out["data_dir"] = value
            continue
        table, prefix = f"storage.{name}", _FILE_TABLES.get(f"storage.{name}")
        if prefix is None or not isinstance(value, dict):
            known = ", ".join(
                sorted({*_STORAGE_KEYS, "root", *(t.removeprefix("storage.") for t in _FILE_TABLES)})
            )
            raise _fail(f"{path}: {table}", f"unknown key (known: {known})")
        for key, v in value.items():
            if prefix + key not in _FILE_NAMES:
                known = ", ".join(sorted(n.removeprefix(prefix) for n in _FILE_NAMES if n.startswith(prefix)))
                raise _fail(f"{path}: {table}.{key}", f"unknown key (known: {known})")
            out[prefix + key] = v
    return out


# --------------------------------------------------------------------------- accounts


def parse_user_spec(text: str, label: str = "--user") -> UserSpec:
    """Parse NAME:ACCESS_KEY:SECRET_KEY; the secret may itself contain colons."""
    parts = text.split(":", 2)
    if len(parts) != 3:
        raise _fail(label, "expected NAME:ACCESS_KEY:SECRET_KEY")
    name, access, secret = parts
    return UserSpec(
        _check_user_name(name, label), _check_access_key(access, label), _check_secret_key(secret, label)
    )


def _file_users(raw: object, label: str) -> list[UserSpec]:
    if not isinstance(raw, list):
        raise _fail(label, "expected an array of tables ([[users]])")
    users: list[UserSpec] = []
    for i, entry in enumerate(raw):
        where = f"{label}[{i}]"
        if not isinstance(entry, dict):
            raise _fail(where, "expected a table with name, access_key, secret_key")
        for key in entry:
            if key not in _USER_TABLE_KEYS:
                known = ", ".join(sorted(_USER_TABLE_KEYS))
                raise _fail(f"{where}.{key}", f"unknown key (known: {known})")
        for key in ("name", "access_key", "secret_key"):
            if key not in entry:
                raise _fail(f"{where}.{key}", "missing")
        users.append(
            UserSpec(
                _check_user_name(entry["name"], f"{where}.name"),
                _check_access_key(entry["access_key"], f"{where}.access_key"),
                _check_secret_key(entry["secret_key"], f"{where}.secret_key"),
                _check_owner_id(entry["id"], f"{where}.id") if "id" in entry else "",
                _check_display_name(entry["display_name"], f"{where}.display_name")
                if "display_name" in entry
                else "",
            )
        )
    return users


def _flag_users(raw: object) -> list[UserSpec]:
    if raw is None:
        return []
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise _fail("--user", "expected a list of NAME:ACCESS_KEY:SECRET_KEY values")
    users: list[UserSpec] = []
    for item in raw:
        users.append(item if isinstance(item, UserSpec) else parse_user_spec(_as_str(item, "--user")))
    return users


def _configured_primary(src: _Sources) -> tuple[str, str, str] | None:
    """Find the primary pair; both halves must come from the same source so they can't get mismatched."""
    ak_opt, sk_opt = _OPTION_BY_KEY["access_key"], _OPTION_BY_KEY["secret_key"]
    ak, sk = src.raw(ak_opt), src.raw(sk_opt)
    if ak is None and sk is None:
        return None
    order = {"flags": 0, "environment": 1, "config file": 2}
    winner = min((x for x in (ak, sk) if x is not None), key=lambda x: order[x[2]])[2]
    if ak is None or ak[2] != winner:
        assert sk is not None
        raise _fail(
            sk[1], f"secret key given without an access key in the same place ({_where(ak_opt, winner, src)})"
        )
    if sk is None or sk[2] != winner:
        raise _fail(
            ak[1], f"access key given without a secret key in the same place ({_where(sk_opt, winner, src)})"
        )
    return _check_access_key(ak[0], ak[1]), _check_secret_key(sk[0], sk[1]), winner


def _where(opt: _Option, source: str, src: _Sources) -> str:
    if source == "flags":
        return opt.flag
    if source == "environment":
        return opt.env
    return f"{src.file_label}: {opt.key}"


def _generate_pair() -> tuple[str, str]:
    access = "".join(secrets.choice(_GEN_ACCESS_ALPHABET) for _ in range(20))
    secret = "".join(secrets.choice(_GEN_SECRET_ALPHABET) for _ in range(40))
    return access, secret


def _write_private_atomic(path: Path, payload: bytes) -> None:
    """Write via temp + rename so a crash never leaves a half-written key file behind."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd, tmp_name = tempfile.mkstemp(prefix=".credentials-", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _stored_or_generated(data_dir: Path, admin_name: str) -> tuple[UserSpec, str]:
    path = data_dir / CREDENTIALS_RELPATH
    label = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        access, secret = _generate_pair()
        body = {"name": admin_name, "access_key": access, "secret_key": secret}
        try:
            _write_private_atomic(path, (json.dumps(body, indent=2) + "\n").encode())
        except OSError as exc:
            raise _fail(label, f"cannot store generated credentials: {exc.strerror or exc}") from None
        return UserSpec(admin_name, access, secret), f"generated ({path})"
    except OSError as exc:
        raise _fail(label, f"cannot read stored credentials: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
    except ValueError:
        raise _fail(label, "stored credentials are not valid JSON") from None
    if not isinstance(data, dict):
        raise _fail(label, "stored credentials must be a JSON object")
    for key in ("access_key", "secret_key"):
        if key not in data:
            raise _fail(f"{label}: {key}", "missing")
    name = data.get("name", admin_name)
    user = UserSpec(
        _check_user_name(name, f"{label}: name"),
        _check_access_key(data["access_key"], f"{label}: access_key"),
        _check_secret_key(data["secret_key"], f"{label}: secret_key"),
    )
    return user, f"stored ({path})"


def _check_unique(users: Sequence[UserSpec]) -> None:
    seen_keys: set[str] = set()
    seen_names: set[str] = set()
    seen_ids: set[str] = set()
    for user in users:
        if user.access_key in seen_keys:
            raise _fail("access_key", f"duplicate access key {_show(user.access_key)} (user {user.name!r})")
        if user.name in seen_names:
            raise _fail("users", f"duplicate user name {user.name!r}")
        if user.owner.id in seen_ids:  # two accounts owning the same buckets would not be isolated
            raise _fail("users", f"duplicate canonical id {_show(user.owner.id)} (user {user.name!r})")
        seen_keys.add(user.access_key)
        seen_names.add(user.name)
        seen_ids.add(user.owner.id)


def option_sources(
    flags: Mapping[str, object], env: Mapping[str, str], config_file: Path | None
) -> dict[str, tuple[str, str]]:
    """Per option key: (source, where) with source "flag" | "env" | "file" | "default", for
    ``rs3gw admin config show``; uses the same precedence as load_settings, so the two always agree."""
    file_data = _read_toml(config_file) if config_file is not None else {}
    src = _Sources(flags, env, file_data, str(config_file))
    short = {"flags": "flag", "environment": "env", "config file": "file"}
    out: dict[str, tuple[str, str]] = {}
    for opt in _OPTIONS:
        found = src.raw(opt)
        out[opt.key] = ("default", "") if found is None else (short[found[2]], found[1])
    return out


# --------------------------------------------------------------------------- entry point


def load_settings(flags: Mapping[str, object], env: Mapping[str, str], config_file: Path | None) -> Settings:
    """Merge flag > RS3GW_* env > TOML file > default, then make sure a primary account exists.

    `flags` uses the TOML key names (plus "users": a list of NAME:AK:SK strings); None means "not given".
    When `config_file` is None, flags["config"] and then RS3GW_CONFIG name it. Relative paths are
    relative to the current directory. May create `<data_dir>/.rs3gw/credentials.json`.
    """
    for key in flags:
        if key not in _OPTION_BY_KEY and key not in ("users", "config"):
            raise _fail(key, "unknown setting")
    if config_file is None:
        given = flags.get("config")
        if given is not None:
            config_file = _parse_path(given, "--config")
        elif env.get(ENV_PREFIX + "CONFIG"):
            config_file = _parse_path(env[ENV_PREFIX + "CONFIG"], ENV_PREFIX + "CONFIG")
    file_data = _read_toml(config_file) if config_file is not None else {}
    src = _Sources(flags, env, file_data, str(config_file))

    base = Settings()
    data_dir = src.get(_OPTION_BY_KEY["data_dir"])
    address = src.get(_OPTION_BY_KEY["address"])
    host, port = address if isinstance(address, tuple) else (base.host, base.port)
    found_domain = src.raw(_OPTION_BY_KEY["domain"])
    domain = _parse_domain(found_domain[0], found_domain[1]) if found_domain is not None else base.domain

    tls_cert = src.get(_OPTION_BY_KEY["tls_cert"])
    tls_key = src.get(_OPTION_BY_KEY["tls_key"])
    if (tls_cert is None) != (tls_key is None):
        given, missing = ("tls_cert", "tls_key") if tls_cert is not None else ("tls_key", "tls_cert")
        found = src.raw(_OPTION_BY_KEY[given])
        assert found is not None
        raise _fail(
            found[1],
            f"{given} needs {missing} too ({_OPTION_BY_KEY[missing].flag} / {_OPTION_BY_KEY[missing].env})",
        )
    for name, value in (("tls_cert", tls_cert), ("tls_key", tls_key)):
        if isinstance(value, Path) and not value.is_file():
            found = src.raw(_OPTION_BY_KEY[name])
            assert found is not None
            raise _fail(found[1], f"file not found: {value}")

    def pick(key: str, default: object) -> Any:
        value = src.get(_OPTION_BY_KEY[key])
        return default if value is None else value

    resolved_data_dir: Path = data_dir if isinstance(data_dir, Path) else base.data_dir
    admin_name: str = pick("admin_name", DEFAULT_ADMIN_NAME)

    extra_users = _file_users(file_data["users"], f"{config_file}: users") if "users" in file_data else []
    extra_users += _flag_users(flags.get("users"))
    primary_pair = _configured_primary(src)
    if primary_pair is not None:
        access, secret, keys_source = primary_pair
        primary = UserSpec(admin_name, access, secret)
    else:
        primary, keys_source = _stored_or_generated(resolved_data_dir, admin_name)
    primary = replace(primary, id=pick("admin_id", ""), display_name=pick("admin_display_name", ""))
    users = (primary, *extra_users)
    _check_unique(users)

    return Settings(
        data_dir=resolved_data_dir,
        host=host,
        port=port,
        users=users,
        keys_source=keys_source,
        region=pick("region", base.region),
        domain=domain,
        tls_cert=tls_cert if isinstance(tls_cert, Path) else None,
        tls_key=tls_key if isinstance(tls_key, Path) else None,
        metadata=pick("metadata", base.metadata),
        log_level=pick("log_level", base.log_level),
        log_format=pick("log_format", base.log_format),
        workers=pick("workers", base.workers),
        max_object_size=pick("max_object_size", base.max_object_size),
        fsync=pick("fsync", base.fsync),
        dedup_enabled=pick("dedup_enabled", base.dedup_enabled),
        dedup_block_size=pick("dedup_block_size", base.dedup_block_size),
        dedup_algorithm=pick("dedup_algorithm", base.dedup_algorithm),
        dedup_min_object_size=pick("dedup_min_object_size", base.dedup_min_object_size),
        compression=pick("compression", base.compression),
        verify_on_read=pick("verify_on_read", base.verify_on_read),
        small_blob_max=pick("small_blob_max", base.small_blob_max),
        zerocopy_enabled=pick("zerocopy_enabled", pick("zerocopy_splice", base.zerocopy_enabled)),
        zerocopy_min_size=pick("zerocopy_min_size", base.zerocopy_min_size),
        zerocopy_direct_io=pick("zerocopy_direct_io", base.zerocopy_direct_io),
        zerocopy_direct_io_threshold=pick("zerocopy_direct_io_threshold", base.zerocopy_direct_io_threshold),
        zerocopy_mmap=pick("zerocopy_mmap", base.zerocopy_mmap),
        metrics_public=pick("metrics_public", base.metrics_public),
        metrics_refresh=pick("metrics_refresh", base.metrics_refresh),
        scrub_interval=pick("scrub_interval", base.scrub_interval),
        scrub_rate_mb_s=pick("scrub_rate_mb_s", base.scrub_rate_mb_s),
        scrub_heal_backup=pick("scrub_heal_backup", base.scrub_heal_backup),
        scrub_heal_backup_endpoint=pick("scrub_heal_backup_endpoint", base.scrub_heal_backup_endpoint),
        scrub_heal_backup_access_key=pick("scrub_heal_backup_access_key", base.scrub_heal_backup_access_key),
        scrub_heal_backup_secret_key=pick("scrub_heal_backup_secret_key", base.scrub_heal_backup_secret_key),
        backend_type=pick("backend_type", base.backend_type),
        backend_endpoint=pick("backend_endpoint", base.backend_endpoint),
        backend_bucket=pick("backend_bucket", base.backend_bucket),
        backend_prefix=pick("backend_prefix", base.backend_prefix),
        backend_region=pick("backend_region", base.backend_region),
        backend_access_key=pick("backend_access_key", base.backend_access_key),
        backend_secret_key=pick("backend_secret_key", base.backend_secret_key),
        backend_project=pick("backend_project", base.backend_project),
        backend_credentials_file=pick("backend_credentials_file", base.backend_credentials_file),
        backend_connection_string=pick("backend_connection_string", base.backend_connection_string),
        lifecycle_day_seconds=pick("lifecycle_day_seconds", base.lifecycle_day_seconds),
        lifecycle_interval=pick("lifecycle_interval", base.lifecycle_interval),
        iam_refresh_interval=pick("iam_refresh_interval", base.iam_refresh_interval),
        http_header_timeout=pick("http_header_timeout", base.http_header_timeout),
        http_body_timeout=pick("http_body_timeout", base.http_body_timeout),
        encryption_cipher=pick("encryption_cipher", base.encryption_cipher),
        encryption_default=pick("encryption_default", base.encryption_default),
        encryption_sse_c_over_http=pick("encryption_sse_c_over_http", base.encryption_sse_c_over_http),
        audit=_audit_with_env(_parse_audit(file_data.get("audit"), f"{config_file}: "), env),
        tiers=_parse_tiers(file_data.get("tiers"), file_data.get("pricing"), f"{config_file}: "),
        transforms=_parse_transforms(file_data.get("transforms"), f"{config_file}: "),
        analytics=_parse_table(parse_analytics_table, file_data.get("analytics"), f"{config_file}: "),
        cache=_seed_cache(src, file_data, f"{config_file}: "),
        tracing=tracing_with_env(
            _parse_table(parse_tracing_table, file_data.get("tracing"), f"{config_file}: "), env
        ),
    )


def _parse_tiers(tiers: object, pricing: object, label: str) -> TierSettings:
    try:
        return parse_tier_tables(tiers, pricing)
    except ValueError as exc:
        raise ConfigError(f"config error: {label}{exc}") from None


def _seed_cache(src: _Sources, file_data: Mapping[str, Any], label: str) -> CacheSettings:
    """``[cache]`` with the seed's ``[storage.cache]`` keys (and their RS3GW_CACHE_* env overrides)
    laid over it: one cache, two spellings. The file may use both tables, but not with different
    values for the same setting: which one would win is not obvious, so that is refused."""
    table = file_data.get("cache")
    cache = _parse_table(parse_cache_table, table, label)
    changes: dict[str, Any] = {}
    for seed_key, name in _SEED_CACHE.items():
        opt = _OPTION_BY_KEY["cache_" + seed_key]
        if opt.key in file_data and isinstance(table, dict) and name in table:
            where = f"{label}storage.cache.{seed_key}"
            ours = _seed_cache_value(seed_key, opt.parse(file_data[opt.key], where))
            if ours != table[name]:
                raise _fail(where, f"conflicts with cache.{name} = {_show(table[name])}; set one of them")
        value = src.get(opt)
        if value is not None:
            changes[name] = _seed_cache_value(seed_key, value)
    return replace(cache, **changes) if changes else cache


def _seed_cache_value(seed_key: str, value: object) -> object:
    """The seed counts the cache in MiB, [cache] in bytes."""
    return value * (1 << 20) if seed_key == "max_size_mb" and isinstance(value, int) else value


_T = TypeVar("_T")


def _parse_table(parse: Callable[[object], _T], value: object, label: str) -> _T:
    try:
        return parse(value)
    except ValueError as exc:
        raise ConfigError(f"config error: {label}{exc}") from None


def _parse_transforms(value: object, label: str) -> TransformSettings:
    try:
        return parse_transforms_table(value)
    except ValueError as exc:
        raise ConfigError(f"config error: {label}{exc}") from None


def _audit_with_env(audit: AuditSettings, env: Mapping[str, str]) -> AuditSettings:
    """The one [audit] key with an environment override: harnesses and proxies set it per process."""
    exempt = env.get("RS3GW_AUDIT_THROTTLE_EXEMPT")
    if exempt is None:
        return audit
    return _parse_audit({**audit.to_json(), "throttle_exempt": exempt}, "RS3GW_AUDIT_THROTTLE_EXEMPT: ")


def _parse_audit(value: object, label: str) -> AuditSettings:
    try:
        return parse_audit_table(value)
    except ValueError as exc:
        raise ConfigError(f"config error: {label}{exc}") from None


# --------------------------------------------------------------------------- worker hand-off


def settings_to_json(settings: Settings) -> str:
    """Serialise fully-resolved settings so worker processes skip re-resolving (and re-generating keys)."""
    out: dict[str, object] = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, Path):
            value = str(value)
        elif f.name == "users":
            value = [_user_json(u) for u in value]
        elif f.name in ("audit", "tiers", "transforms", "analytics", "cache", "tracing"):
            value = value.to_json()
        out[f.name] = value
    return json.dumps(out)


def _user_json(user: UserSpec) -> dict[str, str]:
    out = {"name": user.name, "access_key": user.access_key, "secret_key": user.secret_key}
    out.update({k: v for k, v in (("id", user.id), ("display_name", user.display_name)) if v})
    return out


def settings_from_json(text: str) -> Settings:
    """Inverse of settings_to_json; re-validates because the env var could be hand-edited."""
    label = SETTINGS_JSON_ENV
    try:
        data = json.loads(text)
    except ValueError:
        raise _fail(label, "not valid JSON") from None
    if not isinstance(data, dict):
        raise _fail(label, "expected a JSON object")
    known = {f.name for f in fields(Settings)}
    for key in data:
        if key not in known:
            raise _fail(f"{label}: {key}", "unknown key")
    base = Settings()

    def get(key: str, parse: Callable[[object, str], object]) -> Any:
        if key not in data or data[key] is None:
            return getattr(base, key)
        return parse(data[key], f"{label}: {key}")

    def as_port(v: object, lbl: str) -> int:
        port = _parse_int(v, lbl, 0)
        if port > 65535:
            raise _fail(lbl, f"port must be 0..65535, got {port}")
        return port

    raw_users = data.get("users", [])
    users = _file_users(raw_users, f"{label}: users")
    if not users:
        raise _fail(f"{label}: users", "at least one account is required")
    _check_unique(users)
    return Settings(
        data_dir=get("data_dir", _parse_path),
        host=get("host", _as_str),
        port=get("port", as_port),
        users=tuple(users),
        keys_source=get("keys_source", _as_str),
        region=get("region", _parse_region),
        domain=get("domain", _parse_domain),
        tls_cert=get("tls_cert", _parse_path),
        tls_key=get("tls_key", _parse_path),
        metadata=get("metadata", _parse_metadata),
        log_level=get("log_level", _parse_log_level),
        log_format=get("log_format", _parse_log_format),
        workers=get("workers", lambda v, lbl: _parse_int(v, lbl, 1)),
        max_object_size=get("max_object_size", lambda v, lbl: _parse_int(v, lbl, 1)),
        fsync=get("fsync", _parse_bool),
        dedup_enabled=get("dedup_enabled", _parse_bool),
        dedup_block_size=get("dedup_block_size", _parse_dedup_block),
        dedup_algorithm=get("dedup_algorithm", _parse_dedup_algorithm),
        dedup_min_object_size=get("dedup_min_object_size", _parse_dedup_min),
        compression=get("compression", _parse_compression),
        verify_on_read=get("verify_on_read", _parse_bool),
        small_blob_max=get("small_blob_max", _parse_small_blob_max),
        zerocopy_enabled=get("zerocopy_enabled", _parse_bool),
        zerocopy_min_size=get("zerocopy_min_size", lambda v, lbl: _parse_int(v, lbl, 0)),
        zerocopy_direct_io=get("zerocopy_direct_io", _parse_bool),
        zerocopy_direct_io_threshold=get("zerocopy_direct_io_threshold", _parse_size),
        zerocopy_mmap=get("zerocopy_mmap", _parse_bool),
        metrics_public=get("metrics_public", _parse_bool),
        metrics_refresh=get("metrics_refresh", lambda v, lbl: _parse_int(v, lbl, 0)),
        scrub_interval=get("scrub_interval", lambda v, lbl: _parse_int(v, lbl, 0)),
        scrub_rate_mb_s=get("scrub_rate_mb_s", lambda v, lbl: _parse_int(v, lbl, 0)),
        scrub_heal_backup=get("scrub_heal_backup", _as_str),
        scrub_heal_backup_endpoint=get("scrub_heal_backup_endpoint", _as_str),
        scrub_heal_backup_access_key=get("scrub_heal_backup_access_key", _as_str),
        scrub_heal_backup_secret_key=get("scrub_heal_backup_secret_key", _as_str),
        backend_type=get("backend_type", _parse_backend_type),
        backend_endpoint=get("backend_endpoint", _parse_endpoint),
        backend_bucket=get("backend_bucket", _as_str),
        backend_prefix=get("backend_prefix", _as_str),
        backend_region=get("backend_region", lambda v, lbl: _parse_region(v, lbl) if v else ""),
        backend_access_key=get("backend_access_key", _as_str),
        backend_secret_key=get("backend_secret_key", _as_str),
        backend_project=get("backend_project", _as_str),
        backend_credentials_file=get("backend_credentials_file", _as_str),
        backend_connection_string=get("backend_connection_string", _as_str),
        lifecycle_day_seconds=get("lifecycle_day_seconds", _parse_seconds),
        lifecycle_interval=get("lifecycle_interval", _parse_seconds),
        iam_refresh_interval=get("iam_refresh_interval", _parse_seconds),
        http_header_timeout=get("http_header_timeout", _parse_seconds),
        http_body_timeout=get("http_body_timeout", _parse_seconds),
        encryption_cipher=get("encryption_cipher", _parse_cipher),
        encryption_default=get("encryption_default", _parse_sse_default),
        encryption_sse_c_over_http=get("encryption_sse_c_over_http", _parse_bool),
        audit=get("audit", lambda v, lbl: _parse_audit(v, f"{lbl}: ")),
        tiers=get("tiers", lambda v, lbl: _parse_tiers(v, None, f"{lbl}: ")),
        transforms=get("transforms", lambda v, lbl: _parse_transforms(v, f"{lbl}: ")),
        analytics=get("analytics", lambda v, lbl: _parse_table(parse_analytics_table, v, f"{lbl}: ")),
        cache=get("cache", lambda v, lbl: _parse_table(parse_cache_table, v, f"{lbl}: ")),
        tracing=get("tracing", lambda v, lbl: _parse_table(parse_tracing_table, v, f"{lbl}: ")),
    )
