"""``rs3gw admin bucket ...``, ``rs3gw admin usage``, ``rs3gw admin config show|check`` and the
``admin heal``/``admin backup`` aliases, so one umbrella covers day-to-day administration.

Bucket and usage commands run online against a gateway's admin API with ``--endpoint URL`` (SigV4
signed with --access-key/--secret-key, else RS3GW_ACCESS_KEY/RS3GW_SECRET_KEY, else the primary
account of --data-dir/--config) or offline on the metadata store of --data-dir/--config. Both paths
share engine/bucket_admin.py, so their answers (and ``--json`` shapes) are the same. Output is a rich
table, or JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rs3gw.config import ConfigError, Settings, option_sources

Resolve = Callable[[argparse.Namespace], Settings]
AddCommon = Callable[[argparse.ArgumentParser], None]
_SECRET_WORDS = ("secret", "connection_string", "password")


class AdminFailure(Exception):
    """An error the gateway or the store reported; printed as one line, exit status 1."""


def add_commands(
    asub: argparse._SubParsersAction,  # type: ignore[type-arg]
    add_common: AddCommon,
    resolve: Resolve,
) -> None:
    """Join the ``admin`` subcommands (made by ``rs3gw.keyrotate``)."""
    _add_bucket(asub, add_common, resolve)
    u = asub.add_parser(
        "usage",
        help="bytes and object versions per bucket and per account",
        description="Bytes and object versions (delete markers excluded) per bucket, per owning "
        "account and in total, from the metadata store or, with --endpoint, a running gateway.",
    )
    _online_args(u, add_common)
    u.add_argument("--bucket", metavar="B", help="only this bucket")
    u.set_defaults(func=lambda a: _dispatch(a, resolve, _usage_online, _usage_offline, _print_usage))
    _add_config(asub, add_common)


def _online_args(p: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(p)
    p.add_argument("--endpoint", metavar="URL", help="ask a running gateway's admin API instead of the store")
    p.add_argument(
        "--access-key", metavar="AK", help="primary account key for --endpoint (env RS3GW_ACCESS_KEY)"
    )
    p.add_argument("--secret-key", metavar="SK", help="its secret (env RS3GW_SECRET_KEY)")
    p.add_argument("--region", metavar="R", help="signing region for --endpoint (default us-east-1)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _add_bucket(asub: argparse._SubParsersAction, add_common: AddCommon, resolve: Resolve) -> None:  # type: ignore[type-arg]
    b = asub.add_parser(
        "bucket",
        help="list, inspect, create and delete buckets of every account",
        description="Buckets of every account, store-managed users included; online with --endpoint, "
        "else offline on --data-dir/--config.",
    )
    bsub = b.add_subparsers(dest="admin_bucket_command", metavar="COMMAND", required=True)

    def cmd(name: str, text: str, online: _Online, offline: _Offline, show: _Show) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = bsub.add_parser(name, help=text, description=text)
        _online_args(p, add_common)
        if name != "list":
            p.add_argument("bucket", metavar="BUCKET")
        p.set_defaults(func=lambda a: _dispatch(a, resolve, online, offline, show))
        return p

    cmd(
        "list",
        "every bucket with owner, versioning, objects and bytes",
        _list_online,
        _list_offline,
        _print_list,
    )
    cmd(
        "info",
        "owner, versioning, object count and bytes, compression, default encryption, object lock, "
        "and whether a lifecycle configuration or policy is set",
        _info_online,
        _info_offline,
        _print_info,
    )
    c = cmd(
        "create",
        "create a bucket for an account (default the primary)",
        _create_online,
        _create_offline,
        _print_info,
    )
    c.add_argument("--owner", metavar="NAME", help="the owning account's name (default the primary account)")
    cmd(
        "delete",
        "delete an empty bucket (BucketNotEmpty otherwise)",
        _delete_online,
        _delete_offline,
        _print_doc,
    )
    v = cmd(
        "set-versioning",
        "turn versioning on (Enabled) or pause it (Suspended)",
        _versioning_online,
        _versioning_offline,
        _print_doc,
    )
    v.add_argument("status", metavar="STATUS", help="Enabled or Suspended")
    z = cmd(
        "set-compression",
        'compression of new writes: "none", "lz4", "zstd[:LEVEL]" or "default" (the server setting)',
        _compression_online,
        _compression_offline,
        _print_doc,
    )
    z.add_argument("value", metavar="VALUE")


# -- dispatch ------------------------------------------------------------------------------------
_Online = Callable[["_Api", argparse.Namespace], Any]
_Offline = Callable[[Settings, argparse.Namespace], Awaitable[Any]]
_Show = Callable[[Any], None]


def _dispatch(
    args: argparse.Namespace, resolve: Resolve, online: _Online, offline: _Offline, show: _Show
) -> int:
    try:
        if args.endpoint:
            doc = online(_Api.from_args(args, resolve), args)
        else:
            doc = asyncio.run(_offline_guarded(offline, resolve(args), args))
    except AdminFailure as exc:
        print(f"rs3gw: {exc}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"rs3gw: {args.endpoint}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        show(doc)
    return 0


async def _offline_guarded(offline: _Offline, settings: Settings, args: argparse.Namespace) -> Any:
    from rs3gw.errors import S3Error

    try:
        return await offline(settings, args)
    except S3Error as exc:
        raise AdminFailure(f"{exc.code}: {exc.message}") from None


class _Api:
    """The admin API of a running gateway, SigV4-signed with botocore's signer."""

    def __init__(self, endpoint: str, access: str, secret: str, region: str) -> None:
        self.endpoint, self.access, self.secret, self.region = endpoint.rstrip("/"), access, secret, region

    @classmethod
    def from_args(cls, args: argparse.Namespace, resolve: Resolve) -> _Api:
        access = args.access_key or os.environ.get("RS3GW_ACCESS_KEY")
        secret = args.secret_key or os.environ.get("RS3GW_SECRET_KEY")
        if not (access and secret) and (args.data_dir or args.config):
            primary = resolve(args).users[0]
            access, secret = primary.access_key, primary.secret_key
        if not (access and secret):
            raise ConfigError(
                "config error: --endpoint needs --access-key/--secret-key or RS3GW_ACCESS_KEY/RS3GW_SECRET_KEY"
            )
        return cls(
            args.endpoint, access, secret, args.region or os.environ.get("RS3GW_REGION") or "us-east-1"
        )

    def call(self, method: str, path: str, body: bytes = b"", query: dict[str, str] | None = None) -> Any:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        url = f"{self.endpoint}/_rs3gw/admin/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"x-amz-content-sha256": hashlib.sha256(body).hexdigest()}
        req = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(Credentials(self.access, self.secret), "s3", self.region).add_auth(req)
        raw = urllib.request.Request(url, data=body or None, method=method, headers=dict(req.headers.items()))
        try:
            with urllib.request.urlopen(raw, timeout=60) as resp:
                text = resp.read()
        except urllib.error.HTTPError as exc:
            raise AdminFailure(_error_line(exc.code, exc.read())) from None
        return json.loads(text) if text else {}


def _error_line(status: int, body: bytes) -> str:
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(body)
        return f"{root.findtext('Code') or status}: {root.findtext('Message') or ''}".rstrip(": ")
    except ET.ParseError:
        return f"HTTP {status}"


def _q(name: str) -> str:
    return urllib.parse.quote(name, safe="")


# -- offline helpers -----------------------------------------------------------------------------
async def _names(store: Any, settings: Settings) -> dict[str, str]:
    """Owner id -> account name: configured accounts and store-managed users."""
    from rs3gw.model import Owner
    from rs3gw.wiring import build_iam

    names = {u.owner.id: u.name for u in settings.users}
    for user in await build_iam(store, settings).list_users():
        names.setdefault(Owner.for_account(user.name).id, user.name)
    return names


async def _with_engine(settings: Settings, fn: Callable[[Any, dict[str, str]], Awaitable[Any]]) -> Any:
    """The server's own engine (name checks, object-lock rules, blob freeing), without its workers."""
    from rs3gw.blobs.dedup import DedupBlobStore
    from rs3gw.wiring import build_engine

    engine = build_engine(settings)
    await engine.store.open()
    try:
        return await fn(engine, await _names(engine.store, settings))
    finally:
        await engine.stop()
        if isinstance(engine.blobs, DedupBlobStore):
            engine.blobs.close()


async def _list_offline(settings: Settings, args: argparse.Namespace) -> Any:
    from rs3gw.engine import bucket_admin

    async def fn(engine: Any, names: dict[str, str]) -> Any:
        return {"buckets": await bucket_admin.list_info(engine.store, names)}

    return await _with_engine(settings, fn)


async def _info_offline(settings: Settings, args: argparse.Namespace) -> Any:
    from rs3gw.engine import bucket_admin

    async def fn(engine: Any, names: dict[str, str]) -> Any:
        b = await bucket_admin.get_bucket(engine.store, args.bucket)
        return await bucket_admin.bucket_info(engine.store, b, names)

    return await _with_engine(settings, fn)


async def _create_offline(settings: Settings, args: argparse.Namespace) -> Any:
    from rs3gw.engine import bucket_admin

    async def fn(engine: Any, names: dict[str, str]) -> Any:
        owner = args.owner or settings.users[0].name
        ids = [oid for oid, name in names.items() if name == owner]
        if not ids:
            raise AdminFailure(f"InvalidArgument: no account named {owner!r}")
        b = await engine.create_bucket(args.bucket, ids[0])
        return await bucket_admin.bucket_info(engine.store, b, names)

    return await _with_engine(settings, fn)


async def _delete_offline(settings: Settings, args: argparse.Namespace) -> Any:
    async def fn(engine: Any, names: dict[str, str]) -> Any:
        await engine.delete_bucket(args.bucket)
        return {"deleted": args.bucket}

    return await _with_engine(settings, fn)


async def _versioning_offline(settings: Settings, args: argparse.Namespace) -> Any:
    from rs3gw.engine import bucket_admin

    status = bucket_admin.check_versioning(args.status)

    async def fn(engine: Any, names: dict[str, str]) -> Any:
        await engine.put_bucket_versioning(args.bucket, status)
        return {"bucket": args.bucket, "versioning": status}

    return await _with_engine(settings, fn)


def _compression_value(text: str) -> str | None:
    from rs3gw.blobs.compressed import parse_compression

    if text.strip().lower() == "default":
        return None
    try:
        return str(parse_compression(text))
    except ValueError as exc:
        raise AdminFailure(f"InvalidArgument: {exc}") from None


async def _compression_offline(settings: Settings, args: argparse.Namespace) -> Any:
    value = _compression_value(args.value)

    async def fn(engine: Any, names: dict[str, str]) -> Any:
        await engine.put_bucket_config(args.bucket, "compression", value)
        return {"bucket": args.bucket, "compression": value}

    return await _with_engine(settings, fn)


async def _usage_offline(settings: Settings, args: argparse.Namespace) -> Any:
    from rs3gw.engine import bucket_admin

    async def fn(engine: Any, names: dict[str, str]) -> Any:
        return await bucket_admin.usage(engine.store, names, args.bucket)

    return await _with_engine(settings, fn)


# -- online --------------------------------------------------------------------------------------
def _list_online(api: _Api, args: argparse.Namespace) -> Any:
    return api.call("GET", "buckets")


def _info_online(api: _Api, args: argparse.Namespace) -> Any:
    return api.call("GET", f"buckets/{_q(args.bucket)}")


def _create_online(api: _Api, args: argparse.Namespace) -> Any:
    body = json.dumps({"owner": args.owner}).encode() if args.owner else b""
    return api.call("PUT", f"buckets/{_q(args.bucket)}", body)


def _delete_online(api: _Api, args: argparse.Namespace) -> Any:
    api.call("DELETE", f"buckets/{_q(args.bucket)}")
    return {"deleted": args.bucket}


def _versioning_online(api: _Api, args: argparse.Namespace) -> Any:
    return api.call("PUT", f"buckets/{_q(args.bucket)}/versioning", args.status.encode())


def _compression_online(api: _Api, args: argparse.Namespace) -> Any:
    value = _compression_value(args.value)
    path = f"buckets/{_q(args.bucket)}/compression"
    if value is None:
        api.call("DELETE", path)
        return {"bucket": args.bucket, "compression": None}
    return api.call("PUT", path, value.encode())


def _usage_online(api: _Api, args: argparse.Namespace) -> Any:
    return api.call("GET", "usage", query={"bucket": args.bucket} if args.bucket else None)


# -- output --------------------------------------------------------------------------------------
def _table(rows: list[dict[str, Any]], columns: list[str], title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=True, header_style="bold")
    for name in columns:
        table.add_column(name, justify="right" if name in ("objects", "bytes", "buckets") else "left")
    for row in rows:
        table.add_row(*("-" if row.get(c) is None else str(row.get(c)) for c in columns))
    # Piped output (scripts, grep) gets full-width rows instead of cells folded at 80 columns.
    Console(width=None if sys.stdout.isatty() else 240).print(table)


def _print_list(doc: Any) -> None:
    _table(doc["buckets"], ["name", "owner", "versioning", "objects", "bytes", "compression", "encryption"])


def _print_info(doc: Any) -> None:
    _table([{"field": k, "value": v} for k, v in doc.items()], ["field", "value"])


def _print_doc(doc: Any) -> None:
    print(", ".join(f"{k}: {'default' if v is None else v}" for k, v in doc.items()))


def _print_usage(doc: Any) -> None:
    _table(doc["buckets"], ["bucket", "owner", "objects", "bytes"], "per bucket")
    _table(doc["accounts"], ["account", "buckets", "objects", "bytes"], "per account")
    t = doc["total"]
    print(f"total: {t['buckets']} buckets, {t['objects']} objects, {t['bytes']} bytes")


# -- config ----------------------------------------------------------------------------------------
def _add_config(asub: argparse._SubParsersAction, add_common: AddCommon) -> None:  # type: ignore[type-arg]
    c = asub.add_parser("config", help="show the effective settings or check a config file")
    csub = c.add_subparsers(dest="admin_config_command", metavar="COMMAND", required=True)
    show = csub.add_parser(
        "show",
        help="effective settings with where each value came from (secrets redacted)",
        description="Every setting as the server would resolve it (flag > RS3GW_* env > TOML file > "
        "default), with its source; secret values print as ***.",
    )
    add_common(show)
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.set_defaults(func=_cmd_config_show)
    check = csub.add_parser(
        "check",
        help="validate a TOML config file (exit 1 with the error)",
        description="Parse and validate FILE as the server would (RS3GW_* environment ignored); "
        "prints 'ok' or the one-line error and exits 1. Nothing is written.",
    )
    check.add_argument("--config", metavar="FILE", required=True, help="the TOML file to check")
    check.set_defaults(func=_cmd_config_check)


def _redacted(key: str, value: object) -> object:
    if any(w in key for w in _SECRET_WORDS):
        return "***" if value else value
    if key == "metadata" and isinstance(value, str):
        from rs3gw.meta.dsn import redact

        return redact(value)
    return value


def _effective(settings: Settings, key: str) -> object:
    if key == "address":
        return f"{settings.host}:{settings.port}"
    if key in ("access_key", "secret_key"):
        return getattr(settings.users[0], key)
    if key == "admin_name":
        return settings.users[0].name
    if key == "admin_id":  # the effective canonical id, pinned or derived from the name
        return settings.users[0].owner.id
    if key == "admin_display_name":
        return settings.users[0].owner.display_name
    if key in _SEED_CACHE_KEYS:  # the seed's [storage.cache] keys live in settings.cache
        value = getattr(settings.cache, _SEED_CACHE_KEYS[key])
        return value // (1024 * 1024) if key == "cache_max_size_mb" else value
    value = getattr(settings, key, None)
    return str(value) if isinstance(value, Path) else value


_SEED_CACHE_KEYS = {
    "cache_enabled": "enabled",
    "cache_max_size_mb": "max_bytes",
    "cache_max_objects": "max_objects",
    "cache_ttl_seconds": "ttl",
}


def _cmd_config_show(args: argparse.Namespace) -> int:
    from rs3gw.cli import flags_from_args, resolve_settings

    settings = resolve_settings(args)
    config = args.config or os.environ.get("RS3GW_CONFIG")
    sources = option_sources(flags_from_args(args), os.environ, Path(config).expanduser() if config else None)
    rows: list[dict[str, Any]] = []
    for key, (source, where) in sources.items():
        if key in ("access_key", "secret_key") and source == "default":
            source, where = "stored", settings.keys_source  # generated on first start or read back
        rows.append(
            {"key": key, "value": _redacted(key, _effective(settings, key)), "source": source, "where": where}
        )
    rows.append(
        {"key": "users", "value": len(settings.users) - 1, "source": "flag/file", "where": "extra accounts"}
    )
    if args.json:
        print(json.dumps({"settings": rows}, indent=2, default=str))
    else:
        _table(rows, ["key", "value", "source", "where"])
    return 0


def _cmd_config_check(args: argparse.Namespace) -> int:
    import tomllib

    from rs3gw.config import load_settings

    path = Path(args.config).expanduser()
    env: dict[str, str] = {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        if "access_key" not in data and "secret_key" not in data:
            # No keys in the file: stand-ins keep the check from generating credentials anywhere.
            env = {"RS3GW_ACCESS_KEY": "config-check", "RS3GW_SECRET_KEY": "config-check-secret"}
    except (OSError, tomllib.TOMLDecodeError):
        pass  # load_settings reports these with the file's name
    try:
        load_settings({}, env, path)
    except ConfigError as exc:
        print(f"rs3gw: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: ok")
    return 0
