"""The `rs3gw` command line: parses flags, resolves Settings and runs the gateway under uvicorn.

Offline commands (fsck, audit, ...) should call add_common_args() and resolve_settings() from here.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rs3gw import __version__
from rs3gw.admin_cli import add_commands as add_admin_commands
from rs3gw.analytics_cli import add_commands as add_analytics_commands
from rs3gw.audit.cli import add_commands as add_audit_commands
from rs3gw.backup.cli import add_commands as add_backup_commands
from rs3gw.compliance.cli import add_commands as add_compliance_commands
from rs3gw.config import (
    CREDENTIALS_RELPATH,
    SETTINGS_JSON_ENV,
    ConfigError,
    Settings,
    load_settings,
    settings_to_json,
)
from rs3gw.fsck import add_commands as add_fsck_commands
from rs3gw.heal import add_commands as add_heal_commands
from rs3gw.iam_commands import add_commands as add_iam_commands
from rs3gw.keyrotate import add_key_commands
from rs3gw.meta.store import MetadataStore
from rs3gw.registry_cli import add_commands as add_registry_commands
from rs3gw.storage_report_cli import add_commands as add_storage_commands
from rs3gw.worker_parent import PARENT_PID_ENV

__all__ = [
    "EXIT_CONFIG",
    "add_common_args",
    "build_parser",
    "flags_from_args",
    "main",
    "resolve_settings",
    "startup_lines",
    "uvicorn_options",
]

#: Exit status for unusable configuration, same as argparse's usage errors.
EXIT_CONFIG = 2

# Names on the argparse Namespace that load_settings understands (it uses the TOML key names).
_FLAG_KEYS = (
    "data_dir",
    "address",
    "access_key",
    "secret_key",
    "admin_name",
    "admin_id",
    "admin_display_name",
    "region",
    "domain",
    "tls_cert",
    "tls_key",
    "metadata",
    "log_level",
    "log_format",
    "workers",
    "max_object_size",
    "fsync",
    "users",
    "dedup_enabled",
    "dedup_block_size",
    "dedup_algorithm",
    "dedup_min_object_size",
    "compression",
    "verify_on_read",
    "small_blob_max",
    "zerocopy_enabled",
    "zerocopy_min_size",
    "backend_type",
    "backend_endpoint",
    "backend_bucket",
    "backend_prefix",
    "backend_region",
    "backend_access_key",
    "backend_secret_key",
    "backend_project",
    "backend_credentials_file",
    "backend_connection_string",
    "lifecycle_day_seconds",
    "lifecycle_interval",
    "iam_refresh_interval",
    "http_header_timeout",
    "http_body_timeout",
    "metrics_public",
    "metrics_refresh",
    "scrub_interval",
    "scrub_rate_mb_s",
    "encryption_cipher",
    "encryption_default",
    "encryption_sse_c_over_http",
)

_SERVE_EPILOG = """\
Every option can also come from an RS3GW_* environment variable or the TOML config file;
precedence is: flag > environment > config file > built-in default.

  flag               environment          config file key
  --data-dir         RS3GW_DATA_DIR       data_dir
  --address          RS3GW_ADDRESS        address = "HOST:PORT"
  --access-key       RS3GW_ACCESS_KEY     access_key
  --secret-key       RS3GW_SECRET_KEY     secret_key
  --admin-name       RS3GW_ADMIN_NAME     admin_name
  --admin-id ID      RS3GW_ADMIN_ID       admin_id (pinned canonical id; default derived from the name)
  --admin-display-name N RS3GW_ADMIN_DISPLAY_NAME admin_display_name (default: the name)
  --region           RS3GW_REGION         region
  --domain           RS3GW_DOMAIN         domain
  --tls-cert         RS3GW_TLS_CERT       tls_cert
  --tls-key          RS3GW_TLS_KEY        tls_key
  --config           RS3GW_CONFIG         (the file itself)
  --metadata         RS3GW_METADATA       metadata
  --log-level        RS3GW_LOG_LEVEL      log_level
  --log-format F     RS3GW_LOG_FORMAT     log_format = "text" (default) | "json" (+ access lines)
  --workers N|auto   RS3GW_WORKERS        workers (default 1; auto: one per CPU this process may use)
  --max-object-size  RS3GW_MAX_OBJECT_SIZE max_object_size
  --no-fsync         RS3GW_FSYNC=false    fsync = false
  --user N:AK:SK     -                    [[users]] name/access_key/secret_key (+ optional id/display_name)
  --compression C    RS3GW_COMPRESSION    [storage] compression = "none" | "lz4" | "zstd[:1-22]"
  --verify-on-read   RS3GW_VERIFY_ON_READ [storage] verify_on_read = true (GETs check stored checksums)
  --small-blob-max   RS3GW_SMALL_BLOB_MAX [storage] small_blob_max (bytes, default 32768; 0: a file per blob)
  --zerocopy BOOL    RS3GW_ZEROCOPY_ENABLED [storage.zerocopy] enabled = true (sendfile for plain blobs)
  --zerocopy-min-size RS3GW_ZEROCOPY_MIN_SIZE [storage.zerocopy] min_size (bytes, default 1048576)
  --dedup            RS3GW_DEDUP_ENABLED  [storage.dedup] enabled = true
  --dedup-block-size RS3GW_DEDUP_BLOCK_SIZE [storage.dedup] block_size (4096..1048576)
  --dedup-algorithm  RS3GW_DEDUP_ALGORITHM [storage.dedup] algorithm (fixed-size|content-defined)
  --dedup-min-size   RS3GW_DEDUP_MIN_OBJECT_SIZE [storage.dedup] min_object_size
  --lifecycle-day-seconds S  RS3GW_LIFECYCLE_DAY_SECONDS  [lifecycle] day_seconds (default 86400)
  --lifecycle-interval S     RS3GW_LIFECYCLE_INTERVAL     [lifecycle] interval (default 60)
  --iam-refresh-interval S   RS3GW_IAM_REFRESH_INTERVAL   [iam] refresh_interval (default 10): store
                     users' key changes made on other hosts are in force here within this long
  --http-header-timeout S    RS3GW_HTTP_HEADER_TIMEOUT    [http] header_timeout (default 60): a request
                     head not complete this long after its first byte (or the connect) is dropped
  --http-body-timeout S      RS3GW_HTTP_BODY_TIMEOUT      [http] body_timeout (default 60): a request body
                     with no byte for this long fails with 400 RequestTimeout, connection closed
  --backend T        RS3GW_BACKEND_TYPE   [backend] type = "local" | "s3" | "gcs" | "azure"
  --backend-endpoint RS3GW_BACKEND_ENDPOINT [backend] endpoint = "http(s)://HOST:PORT"
  --backend-bucket   RS3GW_BACKEND_BUCKET [backend] bucket (and prefix, region,
  --backend-prefix / -region / -access-key / -secret-key   access_key, secret_key)
  --backend-project / --backend-credentials-file   gcs: project, service-account JSON
  --backend-connection-string  RS3GW_BACKEND_CONNECTION_STRING  azure (or endpoint + secret key)
  --private-metrics  RS3GW_METRICS_PUBLIC=false [metrics] public = false (GET /metrics off; the
                     primary account reads GET /_rs3gw/admin/metrics instead)
  --metrics-refresh S RS3GW_METRICS_REFRESH [metrics] refresh (storage gauges cache, default 10 s)
  --scrub-interval S RS3GW_SCRUB_INTERVAL [scrub] interval (seconds between scrubs; 0 = off, default)
  --scrub-rate MB_S  RS3GW_SCRUB_RATE_MB_S [scrub] rate_mb_s (scrub read limit, default 50; 0 = none)
  -                  RS3GW_SCRUB_HEAL_BACKUP [scrub] heal_backup = "DIR" | "s3://BUCKET/PREFIX" (repair
                     corrupt objects from this backup; s3: heal_backup_endpoint, _access_key, _secret_key)
  --encryption-cipher C   RS3GW_ENCRYPTION_CIPHER  [encryption] cipher (aes-256-gcm|chacha20-poly1305)
  --encryption-default S  RS3GW_ENCRYPTION_DEFAULT [encryption] default ("none" | "AES256": SSE-S3
                          for writes that ask for no encryption and whose bucket has no default)
  --sse-c-over-http  RS3GW_ENCRYPTION_SSE_C_OVER_HTTP [encryption] sse_c_over_http = true (accept
                          customer keys without TLS; refused by default, as on AWS)
  -                  -                    [audit] enabled, dir, rotate_bytes, webhook_url, syslog, s3_*,
                                          auth_fail_limit, ... (README "Audit log"; on by default)

Accounts: the primary (admin) account uses --access-key/--secret-key; both must come from the
same place. If none is configured anywhere, a key pair is generated on first start, stored in
DATA_DIR/.rs3gw/credentials.json (mode 0600) and printed once; later starts reuse it. Extra
accounts come from [[users]] tables and repeated --user flags (both are used).

Workers: with --workers N > 1, uvicorn starts N processes, each listening on its own SO_REUSEPORT
socket on the address (the kernel spreads connections over them); the
resolved settings reach them through the RS3GW_SETTINGS_JSON environment variable (it holds the
secret keys, so it is only set in the gateway's own process environment). "auto" is the number of
CPUs this process may run on (its affinity mask). A user, key or policy change made in one worker,
or by `rs3gw admin user|key` on the same data dir, is in force in every worker for the next request.
Workers exit when the parent does, even when it is killed (SIGKILL).

Stop with SIGTERM or Ctrl-C: in-flight requests finish (up to 30 s) before the process exits.
"""


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Give a command the two options that locate everything else, so all commands agree on them."""
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="directory holding objects, metadata and generated keys (env RS3GW_DATA_DIR; default ./data)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML config file (env RS3GW_CONFIG); flags and RS3GW_* env vars override its keys",
    )


def flags_from_args(args: argparse.Namespace) -> dict[str, object]:
    """Translate a Namespace into load_settings' flag mapping; options a command lacks count as not given."""
    flags: dict[str, object] = {}
    for key in _FLAG_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            flags[key] = value
    return flags


def resolve_settings(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Settings:
    """Resolve Settings the same way for every command; raises ConfigError on bad input.

    Note: like `serve`, this creates DATA_DIR/.rs3gw/credentials.json when no keys are configured.
    """
    config = getattr(args, "config", None)
    config_file = Path(config).expanduser() if config else None
    return load_settings(flags_from_args(args), os.environ if env is None else env, config_file)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rs3gw",
        description="rs3gw: an S3-compatible object storage gateway for AI/HPC workloads.",
    )
    parser.add_argument("--version", action="version", version=f"rs3gw {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the S3 gateway",
        description="Serve the S3 API from a local data directory.",
        epilog=_SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_args(serve)
    serve.add_argument(
        "--address", metavar="HOST:PORT", help="listen address (default 127.0.0.1:9000; [::1]:9000 for IPv6)"
    )
    serve.add_argument("--access-key", metavar="AK", help="primary account access key (needs --secret-key)")
    serve.add_argument(
        "--secret-key", metavar="SK", help="primary account secret key (at least 8 characters)"
    )
    serve.add_argument("--admin-name", metavar="NAME", help="name of the primary account (default admin)")
    serve.add_argument(
        "--admin-id",
        metavar="ID",
        help="canonical id of the primary account (default: derived from its name)",
    )
    serve.add_argument(
        "--admin-display-name", metavar="NAME", help="display name of the primary account (default: its name)"
    )
    serve.add_argument(
        "--user",
        dest="users",
        action="append",
        metavar="NAME:AK:SK",
        help="add an extra account; repeatable, added to the config file's [[users]]",
    )
    serve.add_argument(
        "--region", metavar="R", help="region reported to clients and used in signing (default us-east-1)"
    )
    serve.add_argument(
        "--domain", metavar="D", help="base domain enabling virtual-host-style requests (BUCKET.D)"
    )
    serve.add_argument("--tls-cert", metavar="FILE", help="PEM certificate; serve HTTPS (needs --tls-key)")
    serve.add_argument("--tls-key", metavar="FILE", help="PEM private key for --tls-cert")
    serve.add_argument(
        "--metadata",
        metavar="URL",
        help='metadata store: "sqlite" (default, inside DATA_DIR) or postgresql://...',
    )
    serve.add_argument(
        "--log-level",
        metavar="L",
        help="critical, error, warning, info (default), debug or trace",
    )
    serve.add_argument(
        "--log-format",
        metavar="F",
        help='"text" (default) or "json": JSON lines, one access line per request',
    )
    serve.add_argument(
        "--workers",
        metavar="N",
        help='number of server processes, or "auto": one per CPU this process may use (default 1); '
        "N > 1 passes settings via RS3GW_SETTINGS_JSON",
    )
    serve.add_argument(
        "--max-object-size", metavar="BYTES", help="largest accepted object in bytes (default 5 TiB)"
    )
    serve.add_argument(
        "--no-fsync",
        dest="fsync",
        action="store_const",
        const=False,
        default=None,
        help="skip fsync on writes: faster, but a power loss can lose acknowledged objects",
    )
    serve.add_argument(
        "--compression",
        metavar="C",
        help='compress new objects: "none" (default), "lz4" or "zstd[:LEVEL]" (1-22, default 3)',
    )
    serve.add_argument(
        "--encryption-cipher",
        metavar="C",
        help="cipher of new encrypted blobs: aes-256-gcm or chacha20-poly1305",
    )
    serve.add_argument(
        "--encryption-default",
        metavar="SSE",
        help='"AES256" encrypts (SSE-S3) every write that asks for no encryption; "none" (default)',
    )
    serve.add_argument(
        "--sse-c-over-http",
        dest="encryption_sse_c_over_http",
        action="store_const",
        const=True,
        default=None,
        help="accept SSE-C customer keys on plain HTTP (refused by default, as on AWS)",
    )
    _add_dedup_args(serve)
    serve.add_argument(
        "--lifecycle-day-seconds",
        metavar="S",
        help="length of one lifecycle day in seconds (default 86400; shorter runs rules in accelerated time)",
    )
    serve.add_argument(
        "--lifecycle-interval", metavar="S", help="seconds between lifecycle passes (default 60)"
    )
    serve.add_argument(
        "--iam-refresh-interval",
        metavar="S",
        help="seconds before IAM changes made by gateways on other hosts apply here (default 10; "
        "changes made on this host's data dir apply at once)",
    )
    serve.add_argument(
        "--http-header-timeout",
        metavar="S",
        help="seconds a client may take to send a request's head before the connection is dropped (60)",
    )
    serve.add_argument(
        "--http-body-timeout",
        metavar="S",
        help="seconds a request body may go without a byte: then 400 RequestTimeout, connection closed (60)",
    )
    _add_backend_args(serve)
    _add_ops_args(serve)
    serve.set_defaults(func=_cmd_serve)
    add_fsck_commands(sub, add_common_args, resolve_settings)
    add_audit_commands(sub, add_common_args, resolve_settings)
    add_heal_commands(sub, add_common_args, resolve_settings)
    add_storage_commands(sub, add_common_args, resolve_settings)
    add_analytics_commands(sub, add_common_args, resolve_settings)
    add_compliance_commands(sub, add_common_args, resolve_settings, _compliance_store)
    add_registry_commands(sub, add_common_args, resolve_settings)
    _add_bucket_commands(sub)
    admin = add_key_commands(sub, add_common_args, resolve_settings)
    add_iam_commands(admin, add_common_args, resolve_settings)
    add_admin_commands(admin, add_common_args, resolve_settings)
    add_heal_commands(admin, add_common_args, resolve_settings)  # `admin heal`: the same parser as `heal`
    add_backup_commands(sub)
    add_backup_commands(admin)  # `admin backup`: the same parser as `backup`
    _fill_descriptions(parser)
    return parser


def _fill_descriptions(parser: argparse.ArgumentParser) -> None:
    """Every command's --help opens with a description: its one-line help where none was written."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, child in action.choices.items():
                if child.description is None and helps.get(name):
                    child.description = str(helps[name])[:1].upper() + str(helps[name])[1:] + "."
                _fill_descriptions(child)


def _compliance_store(settings: Settings) -> MetadataStore:
    from rs3gw.wiring import build_store  # the server's store stack loads only for this command

    return build_store(settings)


def _add_dedup_args(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--verify-on-read",
        dest="verify_on_read",
        action="store_const",
        const=True,
        default=None,
        help="check GET bodies against their stored checksums; fail the request on a mismatch",
    )
    serve.add_argument(
        "--zerocopy", dest="zerocopy_enabled", metavar="BOOL", help="serve plain local blobs with sendfile"
    )
    serve.add_argument("--zerocopy-min-size", metavar="BYTES", help="smallest GET served with sendfile")
    serve.add_argument(
        "--small-blob-max",
        metavar="BYTES",
        help="local blobs up to this size are rows of smallblobs.db, not files (default 32768; 0: always files)",
    )
    serve.add_argument(
        "--dedup",
        dest="dedup_enabled",
        action="store_const",
        const=True,
        default=None,
        help="deduplicate blocks of objects at or above --dedup-min-size",
    )
    serve.add_argument(
        "--dedup-block-size", metavar="BYTES", help="chunk size, or CDC average (default 65536)"
    )
    serve.add_argument("--dedup-algorithm", metavar="ALGO", help="fixed-size (default) or content-defined")
    serve.add_argument(
        "--dedup-min-size", dest="dedup_min_object_size", metavar="BYTES", help="smallest object deduplicated"
    )


def _add_ops_args(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--private-metrics",
        dest="metrics_public",
        action="store_const",
        const=False,
        default=None,
        help="no unauthenticated GET /metrics; the primary account reads /_rs3gw/admin/metrics",
    )
    serve.add_argument(
        "--metrics-refresh", metavar="S", help="seconds storage and dedup gauges are cached (default 10)"
    )
    serve.add_argument(
        "--scrub-interval", metavar="S", help="seconds between background scrubs (default 0: off)"
    )
    serve.add_argument("--scrub-rate", dest="scrub_rate_mb_s", metavar="MB_S", help="scrub read limit (50)")


def _add_backend_args(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--backend",
        dest="backend_type",
        metavar="T",
        help='where object data lives: "local" (DATA_DIR, default), "s3" (an S3-compatible bucket), '
        '"gcs" (a Google Cloud Storage bucket) or "azure" (an Azure Blob Storage container)',
    )
    serve.add_argument(
        "--backend-endpoint", metavar="URL", help="s3 backend: http(s)://HOST:PORT (empty: AWS)"
    )
    serve.add_argument("--backend-bucket", metavar="B", help="s3 backend: the upstream bucket (must exist)")
    serve.add_argument("--backend-prefix", metavar="P", help='s3 backend: key prefix (default "rs3gw")')
    serve.add_argument(
        "--backend-region", metavar="R", help="s3 backend: upstream region (default us-east-1)"
    )
    serve.add_argument("--backend-access-key", metavar="AK", help="s3 backend: upstream access key")
    serve.add_argument("--backend-secret-key", metavar="SK", help="s3 backend: upstream secret key")
    serve.add_argument("--backend-project", metavar="P", help="gcs backend: the Google Cloud project")
    serve.add_argument(
        "--backend-credentials-file", metavar="F", help="gcs backend: service-account JSON (default: ADC)"
    )
    serve.add_argument(
        "--backend-connection-string",
        metavar="CS",
        help="azure backend: the storage account's connection string",
    )


def _add_bucket_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    b = sub.add_parser("bucket", help="per-bucket settings, offline (the same as the admin API)")
    bsub = b.add_subparsers(dest="bucket_command", metavar="COMMAND", required=True)
    c = bsub.add_parser(
        "compression",
        help="show or set a bucket's compression override (new writes only)",
        description='VALUE is "none", "lz4", "zstd[:LEVEL]" (1-22) or "default" (drop the override); '
        "without VALUE the current override is printed.",
    )
    add_common_args(c)
    c.add_argument("bucket", metavar="BUCKET")
    c.add_argument("value", metavar="VALUE", nargs="?")
    c.set_defaults(func=_cmd_bucket_compression)


def _cmd_bucket_compression(args: argparse.Namespace) -> int:
    import asyncio

    from rs3gw.blobs.compressed import parse_compression
    from rs3gw.errors import S3Error
    from rs3gw.wiring import build_store  # the server's store: SQLite or PostgreSQL

    value: str | None = None
    if args.value is not None and args.value.strip().lower() != "default":
        try:
            value = str(parse_compression(args.value))
        except ValueError as exc:
            raise ConfigError(f"config error: VALUE: {exc}") from None
    settings = resolve_settings(args)

    async def run() -> str | None:
        store = build_store(settings)
        await store.open()
        try:
            if await store.get_bucket(args.bucket) is None:
                raise ConfigError(f"config error: BUCKET: no bucket named {args.bucket!r}")
            if args.value is not None:
                await store.put_bucket_config(args.bucket, "compression", value)
            return await store.get_bucket_config(args.bucket, "compression")
        finally:
            await store.close()

    try:
        now = asyncio.run(run())
    except S3Error as exc:
        print(f"rs3gw: {exc}", file=sys.stderr)
        return 1
    print(f"{args.bucket}: compression {now or f'default ({settings.compression})'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_CONFIG
    try:
        return func(args)
    except ConfigError as exc:
        # One line, no traceback: the message already names the key/flag/env var at fault.
        print(f"rs3gw: {exc}", file=sys.stderr)
        return EXIT_CONFIG


# --------------------------------------------------------------------------- serve


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def startup_lines(settings: Settings) -> list[str]:
    """The banner; secrets appear only when they were generated just now, so only this process has seen them."""
    scheme = "https" if settings.tls_cert is not None else "http"
    details = [f"region {settings.region}", f"data {settings.data_dir}", f"keys: {settings.keys_source}"]
    if settings.domain:
        details.append(f"domain {settings.domain}")
    if settings.workers > 1:
        details.append(f"{settings.workers} workers")
    if not settings.fsync:
        details.append("fsync off")
    if settings.backend_type == "s3":
        where = settings.backend_endpoint or "aws"
        details.append(f"blobs in s3 {where}/{settings.backend_bucket}/{settings.backend_prefix}")
    elif settings.backend_type in ("gcs", "azure"):
        details.append(
            f"blobs in {settings.backend_type} {settings.backend_bucket}/{settings.backend_prefix}"
        )
    if settings.metadata != "sqlite":
        from rs3gw.meta.dsn import redact

        details.append(f"metadata {redact(settings.metadata)}")
    lines = [
        f"rs3gw {__version__} serving S3 on {scheme}://{_url_host(settings.host)}:{settings.port} ({', '.join(details)})"
    ]
    if settings.keys_source.startswith("generated (") and settings.users:
        primary = settings.users[0]
        path = settings.data_dir / CREDENTIALS_RELPATH
        lines.append(
            f"access key: {primary.access_key}  secret key: {primary.secret_key} (stored in {path}, mode 0600)"
        )
    return lines


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments shared by the single-process and multi-worker paths."""
    from rs3gw.httpserver import GracefulHttpToolsProtocol

    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop" if importlib.util.find_spec("uvloop") is not None else "auto",
        "http": GracefulHttpToolsProtocol,
        "lifespan": "on",
        "log_level": settings.log_level,
        "access_log": False,
        "timeout_graceful_shutdown": 30,
        "server_header": False,
        "date_header": True,
    }
    if settings.log_format == "json":
        options["log_config"] = None  # uvicorn's loggers then reach the JSON handler on the root
    if settings.tls_cert is not None and settings.tls_key is not None:
        options["ssl_certfile"] = str(settings.tls_cert)
        options["ssl_keyfile"] = str(settings.tls_key)
    return options


def _setup_logging(level: str) -> None:
    # uvicorn configures only its own loggers; this makes rs3gw.* records visible at the same level.
    numeric = logging.DEBUG if level == "trace" else getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(
        level=numeric, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _cmd_serve(args: argparse.Namespace) -> int:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # inherited: metrics files need the place to exist
        Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
    settings = resolve_settings(args)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"config error: data_dir: cannot create {settings.data_dir}: {exc.strerror or exc}"
        ) from None
    if settings.log_format == "json":
        from rs3gw.jsonlog import setup

        setup(settings.log_level)
    else:
        _setup_logging(settings.log_level)

    import uvicorn

    options = uvicorn_options(settings)
    if settings.workers > 1:
        wiring = importlib.import_module("rs3gw.wiring")
        if not callable(getattr(wiring, "app_factory", None)):
            raise ConfigError("config error: workers: rs3gw.wiring has no app_factory, use --workers 1")
        # Children are spawned fresh; they rebuild Settings from this instead of re-resolving flags.
        os.environ[SETTINGS_JSON_ENV] = settings_to_json(settings)
        # ... and end with this process, even a killed one (rs3gw.worker_parent, in app_factory).
        os.environ[PARENT_PID_ENV] = str(os.getpid())
        made = _metrics_dir()
        _announce(settings)
        from uvicorn.supervisors import Multiprocess

        from rs3gw.httpserver import worker_listener

        config = uvicorn.Config("rs3gw.wiring:app_factory", factory=True, workers=settings.workers, **options)
        try:
            listener = worker_listener(settings.host, settings.port)
        except OSError as exc:
            raise ConfigError(
                f"config error: address: cannot listen on {settings.host}:{settings.port}: {exc}"
            ) from None
        supervisor = Multiprocess(config, sockets=[listener])
        try:
            # uvicorn.run's own multi-worker path, with one listening socket per worker (SO_REUSEPORT)
            supervisor.run()
        except KeyboardInterrupt:
            pass
        finally:
            listener.close()
            if made is not None:
                shutil.rmtree(made, ignore_errors=True)
        # A worker that could not start (exit status 3, as app_factory exits on a bad setting or an
        # unreachable store) stopped the supervisor: the same status as a single-process serve.
        return 3 if any(p.exitcode == 3 for p in getattr(supervisor, "processes", ())) else 0

    from rs3gw.httpserver import set_client_timeouts
    from rs3gw.wiring import build_app  # type: ignore[import-not-found,unused-ignore]

    app = build_app(settings)
    set_client_timeouts(settings.http_header_timeout, settings.http_body_timeout)
    server = uvicorn.Server(uvicorn.Config(app, **options))
    _announce(settings)
    # uvicorn owns SIGINT/SIGTERM here: it stops accepting, drains in-flight requests, runs lifespan
    # shutdown, then re-raises the signal so the exit status reflects it.
    server.run()
    return 0 if server.started else 3


def _metrics_dir() -> Path | None:
    """Multiprocess metrics: workers write their series to files in PROMETHEUS_MULTIPROC_DIR, which
    must be empty at start. Returns the directory made here (removed at exit), None for one given."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)  # a stale setting must not crash workers
        for stale in Path(given).glob("*.db"):
            stale.unlink(missing_ok=True)
        return None
    made = Path(tempfile.mkdtemp(prefix="rs3gw-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(made)
    return made


def _announce(settings: Settings) -> None:
    for line in startup_lines(settings):
        print(line, file=sys.stderr, flush=True)
