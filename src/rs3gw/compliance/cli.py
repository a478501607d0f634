"""``rs3gw compliance report``: offline, from the data dir and metadata store the server uses.

Exit status: 0 when no finding fails, 1 when at least one does (so CI can gate on it), 2 when the
report could not be built (no metadata, bad arguments).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

from rs3gw.compliance.checks import STANDARDS, Params, run_checks
from rs3gw.compliance.render import build_document, render_html
from rs3gw.compliance.state import State, gather
from rs3gw.config import Settings
from rs3gw.meta.store import MetadataStore

Resolve = Callable[[argparse.Namespace], Settings]
StoreFactory = Callable[[Settings], MetadataStore]


def add_commands(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    add_common: Callable[[argparse.ArgumentParser], None],
    resolve: Resolve,
    build_store: StoreFactory,
) -> None:
    c = sub.add_parser("compliance", help="compliance reports (SOC 2, HIPAA, GDPR) from the real state")
    csub = c.add_subparsers(dest="compliance_command", metavar="COMMAND", required=True)
    r = csub.add_parser(
        "report",
        help="findings with evidence and recommendations; exit 1 when a finding fails",
        description="Reads the metadata store, keys.json, the audit log and the scrub status offline.",
    )
    add_common(r)
    r.add_argument("--standard", required=True, choices=sorted(STANDARDS), help="the standard to map to")
    r.add_argument("--format", choices=("json", "html"), default="json", help="output format (json)")
    r.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")
    r.add_argument(
        "--key-max-age-days",
        type=int,
        default=Params.key_max_age_days,
        metavar="N",
        help="key-encryption keys older than N days fail the key-age check (365)",
    )
    r.add_argument(
        "--idle-days",
        type=int,
        default=Params.idle_days,
        metavar="N",
        help="accounts not seen in the audit log for N days fail the inactive-users check (90)",
    )
    r.set_defaults(func=lambda a: _cmd_report(a, resolve, build_store))


async def _state_of(settings: Settings, build_store: StoreFactory) -> State:
    store = build_store(settings)
    await store.open()
    try:
        return await gather(settings, store)
    finally:
        await store.close()


def _cmd_report(args: argparse.Namespace, resolve: Resolve, build_store: StoreFactory) -> int:
    if args.key_max_age_days < 0 or args.idle_days < 0:
        print("rs3gw: --key-max-age-days and --idle-days must not be negative", file=sys.stderr)
        return 2
    settings = resolve(args)
    if settings.metadata == "sqlite" and not (settings.data_dir / "meta.db").exists():
        print(f"rs3gw: no metadata in {settings.data_dir}", file=sys.stderr)
        return 2
    params = Params(args.key_max_age_days, args.idle_days)
    state = asyncio.run(_state_of(settings, build_store))
    findings = run_checks(state, args.standard, params)
    doc = build_document(args.standard, state, params, findings)
    text = render_html(doc) if args.format == "html" else json.dumps(doc, indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    print(doc["summary"]["line"], file=sys.stderr)
    return 1 if doc["summary"]["fail"] else 0
