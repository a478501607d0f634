"""``rs3gw admin user …`` and ``rs3gw admin key …``: store-managed users and access keys, offline.

They work on the metadata store that --data-dir/--config name (SQLite or PostgreSQL), exactly like
the admin API; every gateway process on the same data dir sees their changes before its next request
(they bump the data dir's IAM generation, ``auth/generation.py``); gateways on other hosts sharing a
PostgreSQL store see them within their key refresh interval (at once for a new key, since an
unknown key triggers a reload). ``--json`` prints machine-readable output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from rs3gw.auth.users import AccessKey, Iam, User
from rs3gw.config import Settings
from rs3gw.errors import S3Error

_Op = Callable[[Iam, argparse.Namespace], Awaitable[Any]]


def add_commands(
    asub: argparse._SubParsersAction,  # type: ignore[type-arg]
    add_common_args: Callable[[argparse.ArgumentParser], None],
    resolve_settings: Callable[[argparse.Namespace], Settings],
) -> None:
    """Join the ``admin`` subcommands (made by ``rs3gw.keyrotate``)."""

    def command(
        group: argparse._SubParsersAction,  # type: ignore[type-arg]
        name: str,
        help_: str,
        op: _Op,
        arg: tuple[str, str] | None,
    ) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = group.add_parser(name, help=help_, description=help_)
        add_common_args(p)
        if arg is not None:
            p.add_argument(arg[0], metavar=arg[1])
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        p.set_defaults(func=lambda args: _run(resolve_settings(args), op, args))
        return p

    user = asub.add_parser("user", help="store-managed users (several gateways on one store share them)")
    usub = user.add_subparsers(dest="user_command", metavar="COMMAND", required=True)
    command(
        usub,
        "create",
        "create a user (then give it a key: rs3gw admin key create USER)",
        _user_create,
        ("name", "NAME"),
    )
    command(usub, "list", "list users", _user_list, None)
    command(usub, "delete", "delete a user and all of its access keys", _user_delete, ("name", "NAME"))
    command(usub, "disable", "disable a user: none of its keys authenticate", _user_disable, ("name", "NAME"))
    command(usub, "enable", "enable a disabled user", _user_enable, ("name", "NAME"))
    pol = usub.add_parser("policy", help="the user's identity policy (JSON, no Principal)")
    psub = pol.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)
    pp = command(psub, "put", "attach (or replace) NAME's identity policy", _policy_put, ("name", "NAME"))
    pp.add_argument("--file", metavar="F", default="-", help="policy JSON file ('-', the default: stdin)")
    command(psub, "get", "print NAME's identity policy", _policy_get, ("name", "NAME"))
    command(psub, "delete", "detach NAME's identity policy", _policy_delete, ("name", "NAME"))

    key = asub.add_parser("key", help="access keys of store-managed users")
    ksub = key.add_subparsers(dest="key_command", metavar="COMMAND", required=True)
    command(
        ksub,
        "create",
        "a new access key for USER; the secret is printed this once",
        _key_create,
        ("user", "USER"),
    )
    lp = command(ksub, "list", "list access keys (never secrets)", _key_list, None)
    lp.add_argument("--user", metavar="USER", help="only this user's keys")
    command(ksub, "disable", "disable an access key (403 InvalidAccessKeyId)", _key_disable, ("key_id", "AK"))
    command(ksub, "enable", "enable a disabled access key", _key_enable, ("key_id", "AK"))
    command(ksub, "delete", "delete an access key", _key_delete, ("key_id", "AK"))
    command(
        ksub,
        "rotate-secret",
        "AWS-style rotation: a second key pair for AK's user; AK stays valid until you disable or delete it",
        _key_rotate,
        ("key_id", "AK"),
    )


def _run(settings: Settings, op: _Op, args: argparse.Namespace) -> int:
    from rs3gw.wiring import build_iam, build_store  # the store stack loads only for these commands

    async def go() -> Any:
        store = build_store(settings)
        await store.open()
        try:
            return await op(build_iam(store, settings), args)
        finally:
            await store.close()

    try:
        out = asyncio.run(go())
    except S3Error as exc:
        print(f"rs3gw: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    _print(out, args.json)
    return 0


# Each op returns a JSON-able document: a dict for one item, a list of dicts for a table.
async def _user_create(iam: Iam, args: argparse.Namespace) -> Any:
    return (await iam.create_user(args.name)).to_json()


async def _user_list(iam: Iam, args: argparse.Namespace) -> Any:
    keys = await iam.list_keys()
    return [_user_row(u, keys) for u in await iam.list_users()]


def _user_row(u: User, keys: Sequence[AccessKey]) -> dict[str, object]:
    return {**u.to_json(), "keys": sum(1 for k in keys if k.user == u.name)}


async def _user_delete(iam: Iam, args: argparse.Namespace) -> Any:
    return {"deleted": args.name, "keys_deleted": await iam.delete_user(args.name)}


async def _user_disable(iam: Iam, args: argparse.Namespace) -> Any:
    return (await iam.set_user_enabled(args.name, False)).to_json()


async def _user_enable(iam: Iam, args: argparse.Namespace) -> Any:
    return (await iam.set_user_enabled(args.name, True)).to_json()


async def _policy_put(iam: Iam, args: argparse.Namespace) -> Any:
    from rs3gw.access.policy import load_identity

    if args.file == "-":
        text = sys.stdin.read()
    else:
        with open(args.file, encoding="utf-8") as f:
            text = f.read()
    load_identity(text)  # MalformedPolicy, as the admin API answers
    await iam.put_user_policy(args.name, text)
    return {"user": args.name, "policy": "attached"}


async def _policy_get(iam: Iam, args: argparse.Namespace) -> Any:
    return json.loads(await iam.get_user_policy(args.name))


async def _policy_delete(iam: Iam, args: argparse.Namespace) -> Any:
    await iam.delete_user_policy(args.name)
    return {"user": args.name, "policy": "deleted"}


async def _key_create(iam: Iam, args: argparse.Namespace) -> Any:
    key, secret = await iam.create_key(args.user)
    return {**key.to_json(), "secret_key": secret}


async def _key_list(iam: Iam, args: argparse.Namespace) -> Any:
    return [k.to_json() for k in await iam.list_keys(args.user)]


async def _key_disable(iam: Iam, args: argparse.Namespace) -> Any:
    return (await iam.set_key_enabled(args.key_id, False)).to_json()


async def _key_enable(iam: Iam, args: argparse.Namespace) -> Any:
    return (await iam.set_key_enabled(args.key_id, True)).to_json()


async def _key_delete(iam: Iam, args: argparse.Namespace) -> Any:
    await iam.delete_key(args.key_id)
    return {"deleted": args.key_id}


async def _key_rotate(iam: Iam, args: argparse.Namespace) -> Any:
    key, secret = await iam.rotate_key(args.key_id)
    return {**key.to_json(), "secret_key": secret, "replaces": args.key_id}


def _cell(name: str, value: object) -> str:
    if name == "created" and isinstance(value, float):
        return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(value))
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "-"
    return str(value)


def _print(out: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(out, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    rows: list[dict[str, object]] = out if isinstance(out, list) else [out]
    table = Table(show_header=True, header_style="bold")
    columns = list(rows[0]) if rows else ["(none)"]
    for name in columns:
        table.add_column(name)
    for row in rows:
        table.add_row(*(_cell(c, row.get(c)) for c in columns))
    console.print(table)
    if isinstance(out, dict) and "secret_key" in out:
        console.print("[bold]The secret key is shown only this once; store it now.[/bold]")
