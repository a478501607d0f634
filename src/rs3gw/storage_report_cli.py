"""``rs3gw storage report``: the storage-class analysis and cost estimate, offline.

Reads the metadata store directly (SQLite in the data dir, or the configured PostgreSQL), so it
gives the admin API's numbers without a running server. Access counts still buffered in a running
server's memory are not seen (they are flushed every ``[tiers] interval`` seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from rs3gw.config import Settings
from rs3gw.engine.storage_report import build_report, format_text

Resolve = Callable[[argparse.Namespace], Settings]


def add_commands(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    add_common: Callable[[argparse.ArgumentParser], None],
    resolve: Resolve,
) -> None:
    s = sub.add_parser("storage", help="storage-class analysis and cost estimation, offline")
    ssub = s.add_subparsers(dest="storage_command", metavar="COMMAND", required=True)
    r = ssub.add_parser(
        "report",
        help="objects and bytes per storage class per bucket, transition candidates, monthly cost",
    )
    add_common(r)
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    r.set_defaults(func=lambda a: _cmd_report(a, resolve))


async def offline_report(settings: Settings) -> dict[str, Any]:
    """The storage report read straight from the metadata store, as the admin API would build it."""
    from rs3gw.wiring import accounts, build_store

    store = build_store(settings)
    await store.open()
    try:
        owners = [a.owner.id for a in accounts(settings)]
        return await build_report(store, owners, settings.tiers, settings.lifecycle_day_seconds, time.time())
    finally:
        await store.close()


def _cmd_report(args: argparse.Namespace, resolve: Resolve) -> int:
    settings = resolve(args)
    if settings.metadata == "sqlite" and not (settings.data_dir / "meta.db").exists():
        print(f"rs3gw: no metadata in {settings.data_dir}", file=sys.stderr)
        return 2
    report = asyncio.run(offline_report(settings))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        sys.stdout.write(format_text(report))
    return 0
