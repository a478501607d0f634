"""``rs3gw audit verify`` and ``rs3gw audit query``: offline, straight from the log files.

Safe to run while the server writes: records appended meanwhile only extend what is read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from rs3gw.audit.chain import read_key
from rs3gw.audit.query import Query, run_query
from rs3gw.audit.service import audit_dir
from rs3gw.audit.settings import AuditSettings
from rs3gw.audit.verify import verify_log


class _Settings(Protocol):
    @property
    def data_dir(self) -> Path: ...
    @property
    def audit(self) -> AuditSettings: ...


Resolve = Callable[[argparse.Namespace], _Settings]


def add_commands(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    add_common: Callable[[argparse.ArgumentParser], None],
    resolve: Resolve,
) -> None:
    a = sub.add_parser("audit", help="verify and query the tamper-evident audit log")
    asub = a.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    v = asub.add_parser(
        "verify",
        help="check the hash chain of every segment; exit status 1 names where it breaks",
    )
    add_common(v)
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.set_defaults(func=lambda args: _cmd_verify(args, resolve))
    q = asub.add_parser(
        "query",
        help="print matching audit records (oldest first)",
        description="Times are epoch seconds, ISO 8601 (2026-12-02T10:00:00Z) or an age such as 15m, 2h, 7d.",
    )
    add_common(q)
    q.add_argument("--since", metavar="T", help="records at or after T")
    q.add_argument("--until", metavar="T", help="records at or before T")
    q.add_argument("--user", metavar="U", help="principal name or access key id")
    q.add_argument(
        "--action", metavar="A", help="operation (PutObject, ...) or alert (AuthFailureThrottle, ...)"
    )
    q.add_argument("--bucket", metavar="B")
    q.add_argument("--result", metavar="R", help="ok, error, an S3 error code or an HTTP status")
    q.add_argument("--limit", metavar="N", help="only the newest N matches")
    q.add_argument("--json", action="store_true", help='print {"events": [...], "count": N, "matched": M}')
    q.set_defaults(func=lambda args: _cmd_query(args, resolve))


def _directory(args: argparse.Namespace, resolve: Resolve) -> Path:
    settings = resolve(args)
    return audit_dir(settings.audit, settings.data_dir)


def _cmd_verify(args: argparse.Namespace, resolve: Resolve) -> int:
    directory = _directory(args, resolve)
    try:
        key = read_key(directory)
    except FileNotFoundError:
        print(f"rs3gw: no audit log in {directory} (no HMAC key)", file=sys.stderr)
        return 1
    report = verify_log(directory, key)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    elif report.ok:
        span = f"seq {report.first_seq}..{report.last_seq}" if report.records else "empty"
        print(f"audit log OK: {report.records} records ({span}) in {len(report.segments)} segment(s)")
    else:
        print(f"audit log BROKEN: {len(report.problems)} problem(s) in {directory}")
        for problem in report.problems:
            print(f"  {problem}")
    return 0 if report.ok else 1


def _cmd_query(args: argparse.Namespace, resolve: Resolve) -> int:
    params = {
        name: getattr(args, name)
        for name in ("since", "until", "user", "action", "bucket", "result", "limit")
        if getattr(args, name) is not None
    }
    try:
        query = Query.from_params(params)
    except ValueError as exc:
        print(f"rs3gw: {exc}", file=sys.stderr)
        return 2
    records, total = run_query(_directory(args, resolve), query)
    if args.json:
        print(json.dumps({"events": records, "count": len(records), "matched": total}, indent=1))
        return 0
    for r in records:
        where = f"{r.get('bucket') or '-'}/{r.get('key') or ''}".rstrip("/")
        who = r.get("principal") or r.get("access_key") or "-"
        result = f"{r.get('status')} {r.get('error') or 'OK'}"
        print(
            f"{r.get('time')} {r.get('seq')} {r.get('type')} {who} {r.get('action')} {where} {result} {r.get('source_ip')}"
        )
    return 0
