"""``rs3gw analytics requests|usage|access|cost|cache``: rich tables or ``--json``.

With ``--endpoint URL`` the admin API of a running gateway answers (signed with ``RS3GW_ACCESS_KEY``/
``RS3GW_SECRET_KEY``, else the configured primary account); without it the persisted series files in
the data dir and the metadata store are read directly (a running server's last
``persist_interval`` seconds are not in its file yet; ``cache`` needs ``--endpoint``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from rs3gw.analytics.recorder import CATEGORIES, analytics_dir, load_merged
from rs3gw.analytics.report import FREQUENCY_BINS, access_doc, cost_doc, requests_doc, usage_doc
from rs3gw.config import Settings
from rs3gw.storage_report_cli import offline_report

Resolve = Callable[[argparse.Namespace], Settings]
COMMANDS = {
    "requests": "GET/PUT/DELETE/LIST counts, bytes in/out and errors per bucket over the window",
    "usage": "bytes and object versions per bucket and storage class",
    "access": "how many objects were read 0, 1, 2-10, 11-100, >100 times in the window",
    "cost": "estimated storage (per month), request and egress (over the window) cost",
    "cache": "the predictive cache of the answering process (needs --endpoint)",
}


def add_commands(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    add_common: Callable[[argparse.ArgumentParser], None],
    resolve: Resolve,
) -> None:
    a = sub.add_parser("analytics", help="request patterns, usage, access frequency, cost estimates")
    asub = a.add_subparsers(dest="analytics_command", metavar="COMMAND", required=True)
    for name, text in COMMANDS.items():
        p = asub.add_parser(name, help=text)
        add_common(p)
        p.add_argument("--endpoint", metavar="URL", help="ask a running gateway's admin API")
        p.add_argument("--json", action="store_true", help="print the document as JSON")
        if name == "requests":
            p.add_argument("--bucket", help="only this bucket")
            p.add_argument("--minutes", type=int, help="only the last N minutes of the window")
        p.set_defaults(func=lambda args, name=name: _run(args, name, resolve))


def _remote(args: argparse.Namespace, settings: Settings, name: str) -> Any:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    query = {k: str(v) for k in ("bucket", "minutes") if (v := getattr(args, k, None)) is not None}
    url = f"{args.endpoint.rstrip('/')}/_rs3gw/admin/analytics/{name}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    user = settings.users[0] if settings.users else None
    access = os.environ.get("RS3GW_ACCESS_KEY") or (user.access_key if user else "")
    secret = os.environ.get("RS3GW_SECRET_KEY") or (user.secret_key if user else "")
    req = AWSRequest(method="GET", url=url, headers={"x-amz-content-sha256": hashlib.sha256(b"").hexdigest()})
    SigV4Auth(Credentials(access, secret), "s3", settings.region).add_auth(req)
    raw = urllib.request.Request(url, method="GET", headers=dict(req.headers.items()))
    with urllib.request.urlopen(raw, timeout=30) as resp:
        return json.loads(resp.read())


def _local(args: argparse.Namespace, settings: Settings, name: str) -> Any:
    now = time.time()
    window = settings.analytics.window_s
    if name == "requests" and args.minutes:
        window = min(window, args.minutes * 60.0)
    series = load_merged(analytics_dir(settings.data_dir), window, now)
    requests = requests_doc(series, now, window, getattr(args, "bucket", None))
    if name == "requests":
        return requests
    report = asyncio.run(offline_report(settings))
    if name == "usage":
        return usage_doc(report)
    if name == "access":
        objects = {b: u["objects"] for b, u in usage_doc(report)["buckets"].items()}
        return access_doc(series, objects)
    return cost_doc(requests, report, settings.analytics)


def _run(args: argparse.Namespace, name: str, resolve: Resolve) -> int:
    settings = resolve(args)
    try:
        if args.endpoint:
            doc = _remote(args, settings, name)
        elif name == "cache":
            print(
                "rs3gw: analytics cache needs --endpoint (the cache lives in a server's memory)",
                file=sys.stderr,
            )
            return 2
        elif settings.metadata == "sqlite" and not (settings.data_dir / "meta.db").exists():
            print(f"rs3gw: no metadata in {settings.data_dir}", file=sys.stderr)
            return 2
        else:
            doc = _local(args, settings, name)
    except (urllib.error.URLError, OSError) as e:
        print(f"rs3gw: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        _table(name, doc)
    return 0


def _table(name: str, doc: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    if name == "cache":
        t = Table("field", "value", title="predictive cache")
        for k, v in doc.items():
            t.add_row(k, json.dumps(v) if isinstance(v, dict) else str(v))
    elif name == "requests":
        t = Table("bucket", *CATEGORIES, "bytes in", "bytes out", "errors", title="requests in the window")
        for b, d in [*doc["buckets"].items(), ("TOTAL", {"totals": doc["total"]})]:
            tot = d["totals"]
            errs = ", ".join(f"{c}={n}" for c, n in sorted(tot["errors"].items()))
            t.add_row(
                b, *(str(tot[c]) for c in CATEGORIES), str(tot["bytes_in"]), str(tot["bytes_out"]), errs
            )
    elif name == "usage":
        t = Table("bucket", "class", "objects", "bytes", title="storage by class")
        for b, d in [*doc["buckets"].items(), ("TOTAL", doc["total"])]:
            for cls, c in d["classes"].items():
                t.add_row(b, cls, str(c["objects"]), str(c["bytes"]))
    elif name == "access":
        t = Table("bucket", *FREQUENCY_BINS, "hottest", title="objects by reads in the window")
        for b, d in doc["buckets"].items():
            hot = ", ".join(f"{h['key']}({h['reads']})" for h in d["top"][:3])
            t.add_row(b, *(str(d["distribution"][k]) for k in FREQUENCY_BINS), hot)
    else:
        t = Table("bucket", "storage $/month", "requests $", "egress $", title="cost estimate (USD)")
        for b, d in doc["buckets"].items():
            t.add_row(
                b, f"{d['storage_monthly']:.6f}", f"{d['requests_total']:.6f}", f"{d['egress']['cost']:.6f}"
            )
        tot = doc["total"]
        t.add_row("TOTAL", f"{tot['storage_monthly']:.6f}", f"{tot['requests']:.6f}", f"{tot['egress']:.6f}")
    Console().print(t)
