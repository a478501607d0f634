"""`rs3gw backup create|list|verify|restore|prune|schedule`: argparse wiring, progress bars and --json output.

Source gateway credentials: --access-key/--secret-key, else RS3GW_ACCESS_KEY/RS3GW_SECRET_KEY.
S3 backup locations: --target-endpoint (alias --source-endpoint) with --target-access-key/
--target-secret-key, else RS3GW_BACKUP_ACCESS_KEY/RS3GW_BACKUP_SECRET_KEY, else the source's keys.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

EXIT_FAILED = 1
EXIT_USAGE = 2


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    b = sub.add_parser("backup", help="snapshot buckets over the S3 API; point-in-time restore; verify")
    bsub = b.add_subparsers(dest="backup_command", metavar="COMMAND", required=True)

    c = bsub.add_parser("create", help="take a full, incremental or differential snapshot of a bucket")
    _endpoint_args(c, required=True)
    _repo_args(c, "--target")
    c.add_argument("--bucket", required=True, action="append", help="bucket to back up (repeatable)")
    c.add_argument("--kind", choices=("full", "incremental", "differential"), default="full")
    c.add_argument("--workers", type=int, default=8, help="parallel object downloads (default 8)")
    c.add_argument("--keep-last", type=int, metavar="N", help="after the backup, keep only the N newest")
    c.add_argument(
        "--keep-daily", type=int, metavar="N", help="...plus the newest snapshot of each of N days"
    )
    c.set_defaults(func=_cmd_create)

    ls = bsub.add_parser("list", help="list the snapshots in a backup location")
    _repo_args(ls, "--source")
    _endpoint_args(ls, required=False)
    ls.add_argument("--bucket", help="only this bucket's snapshots")
    ls.set_defaults(func=_cmd_list)

    v = bsub.add_parser("verify", help="re-hash every stored body and check every manifest")
    _repo_args(v, "--source")
    _endpoint_args(v, required=False)
    v.add_argument("--bucket", help="only this bucket's snapshots")
    v.add_argument(
        "--restore-test",
        action="store_true",
        help="also restore into a scratch bucket on --endpoint and compare",
    )
    v.set_defaults(func=_cmd_verify)

    r = bsub.add_parser("restore", help="restore a bucket (or a prefix) as of a snapshot or a point in time")
    _endpoint_args(r, required=True)
    _repo_args(r, "--source")
    r.add_argument("--bucket", required=True, help="the backed-up bucket")
    r.add_argument("--into", metavar="BUCKET", help="restore into this bucket (created if missing)")
    r.add_argument(
        "--at", metavar="TIME", help="ISO 8601 time or epoch seconds (default: the latest snapshot)"
    )
    r.add_argument("--snapshot", metavar="ID", help="restore exactly this snapshot's state")
    r.add_argument("--prefix", default="", help="only keys under this prefix")
    r.add_argument("--force", action="store_true", help="overwrite/delete objects that no snapshot holds")
    r.set_defaults(func=_cmd_restore)

    p = bsub.add_parser("prune", help="apply a retention policy and collect unreferenced bodies")
    _repo_args(p, "--source")
    _endpoint_args(p, required=False)
    p.add_argument("--bucket", required=True)
    p.add_argument("--keep-last", type=int, metavar="N")
    p.add_argument("--keep-daily", type=int, metavar="N")
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=_cmd_prune)

    s = bsub.add_parser(
        "schedule", help="take snapshots on a cron schedule (a long-lived process), applying retention"
    )
    _endpoint_args(s, required=True)
    _repo_args(s, "--target")
    s.add_argument("--bucket", required=True, action="append", help="bucket to back up (repeatable)")
    s.add_argument(
        "--cron", required=True, metavar="EXPR",
        help='when to run, e.g. "0 2 * * *" or "@hourly" (local time; a 6th field is seconds)',
    )  # fmt: skip
    kinds = s.add_mutually_exclusive_group()
    kinds.add_argument("--kind", choices=("full", "incremental", "differential"), default="full")
    kinds.add_argument("--full-every", type=int, metavar="N", default=0,
                       help="a full snapshot every N runs, incrementals between")  # fmt: skip
    s.add_argument("--workers", type=int, default=8, help="parallel object downloads (default 8)")
    for unit in ("last", "daily", "weekly", "monthly"):
        s.add_argument(f"--keep-{unit}", type=int, metavar="N", help=f"retention after each run: keep-{unit}")
    s.add_argument("--once-due", action="store_true",
                   help="run once if a scheduled time passed since the newest snapshot, then exit")  # fmt: skip
    s.add_argument("--max-runs", type=int, default=0, metavar="N", help="exit after N runs (default: never)")
    s.set_defaults(func=_cmd_schedule)


def _endpoint_args(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--endpoint", required=required, metavar="URL", help="the gateway's S3 endpoint")
    p.add_argument("--access-key", default=os.environ.get("RS3GW_ACCESS_KEY"))
    p.add_argument("--secret-key", default=os.environ.get("RS3GW_SECRET_KEY"))
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--json", action="store_true", help="print the result as JSON (no progress bar)")


def _repo_args(p: argparse.ArgumentParser, flag: str) -> None:
    other = "--source" if flag == "--target" else "--target"
    p.add_argument(flag, other, dest="repo", required=True, metavar="DIR|s3://BUCKET/PREFIX")
    p.add_argument("--target-endpoint", "--source-endpoint", dest="repo_endpoint", metavar="URL")
    p.add_argument("--target-access-key", "--source-access-key", dest="repo_access_key")
    p.add_argument("--target-secret-key", "--source-secret-key", dest="repo_secret_key")


def _repo(args: argparse.Namespace) -> Any:
    from rs3gw.backup.repo import open_repo

    env = os.environ
    ak = args.repo_access_key or env.get("RS3GW_BACKUP_ACCESS_KEY") or args.access_key
    sk = args.repo_secret_key or env.get("RS3GW_BACKUP_SECRET_KEY") or args.secret_key
    return open_repo(args.repo, args.repo_endpoint, ak, sk)


def _client(args: argparse.Namespace) -> Any:
    from rs3gw.backup.repo import s3_client

    return s3_client(args.endpoint, args.access_key, args.secret_key, args.region)


@contextlib.contextmanager
def _bar(args: argparse.Namespace, label: str) -> Iterator[Callable[[int, int | None], None]]:
    """A byte progress bar on stderr (none with --json); yields advance(n, new_total_or_None)."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=bool(args.json),
        transient=False,
    ) as bar:
        task = bar.add_task(label, total=None)

        def advance(n: int, total: int | None) -> None:
            if total is not None:
                bar.update(task, total=total)
            bar.advance(task, n)

        yield advance


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    print(json.dumps(payload, indent=2, sort_keys=True) if args.json else text)


def _fail(args: argparse.Namespace, message: str, code: int = EXIT_FAILED) -> int:
    if args.json:
        print(json.dumps({"error": message}))
    print(f"rs3gw backup: {message}", file=sys.stderr)
    return code


def _summary(m: Any) -> dict[str, Any]:
    return {
        "id": m.id, "bucket": m.bucket, "kind": m.kind, "taken_at": m.taken_at,
        "parent": m.parent, "versioning": m.versioning, "stats": m.stats,
    }  # fmt: skip


def _cmd_create(args: argparse.Namespace) -> int:
    from rs3gw.backup.capture import create_snapshot
    from rs3gw.backup.retention import prune

    client, repo = _client(args), _repo(args)
    out: list[dict[str, Any]] = []
    try:
        for bucket in args.bucket:
            with _bar(args, f"backup {bucket}") as advance:
                m = create_snapshot(
                    client, repo, bucket, args.endpoint, args.kind,
                    progress=lambda _phase, n, total: advance(n, total), workers=args.workers,
                )  # fmt: skip
            entry = _summary(m)
            if args.keep_last is not None or args.keep_daily is not None:
                entry["prune"] = asdict(prune(repo, bucket, args.keep_last, args.keep_daily))
            out.append(entry)
    except Exception as exc:
        return _fail(args, f"{type(exc).__name__}: {exc}")
    lines = [
        f"{e['id']}  {e['bucket']}  {e['kind']}  {e['stats']['versions']} versions, "
        f"{e['stats']['new_versions']} new, {e['stats']['bytes_fetched']} bytes read"
        for e in out
    ]
    _emit(args, {"snapshots": out, "target": repo.description}, "\n".join(lines))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from rs3gw.backup.manifest import Catalog, ManifestError, buckets

    repo = _repo(args)
    rows: list[dict[str, Any]] = []
    for b in [args.bucket] if args.bucket else buckets(repo):
        catalog = Catalog(repo, b)
        for snap_id in catalog.ids:
            try:
                rows.append(_summary(catalog.get(snap_id)))
            except ManifestError as exc:
                rows.append({"id": snap_id, "bucket": b, "error": str(exc)})
    text = "\n".join(
        f"{r['id']:<40} {r['bucket']:<24} {r.get('kind', '?'):<13} "
        + (r["error"] if "error" in r else f"{r['stats']['versions']} versions, parent {r['parent'] or '-'}")
        for r in rows
    )
    _emit(args, {"snapshots": rows, "source": repo.description}, text or "no snapshots")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from rs3gw.backup.verify import restore_test, verify_repo

    repo = _repo(args)
    if args.restore_test and not args.endpoint:
        return _fail(args, "--restore-test needs --endpoint", EXIT_USAGE)
    with _bar(args, "verify") as advance:
        report, catalogs = verify_repo(repo, args.bucket, advance)
    if args.restore_test and not report.errors:
        client = _client(args)
        for catalog in catalogs.values():
            restore_test(client, repo, catalog, report)
    payload = {**asdict(report), "ok": report.ok}
    lines = [f"{report.snapshots} snapshots, {report.bodies} bodies, {report.bytes} bytes checked"]
    lines += [
        f"FAILED {e.get('sha256') or e.get('snapshot')}: {e['problem']} {e.get('keys', '')}"
        for e in report.errors
    ]
    for t in report.restore_tests:
        lines.append(f"restore test {t['bucket']} {t['snapshot']}: {'ok' if t['ok'] else t['problems']}")
    lines.append("OK" if report.ok else "VERIFY FAILED")
    _emit(args, payload, "\n".join(lines))
    return 0 if report.ok else EXIT_FAILED


def _cmd_restore(args: argparse.Namespace) -> int:
    from rs3gw.backup.manifest import Catalog, ManifestError
    from rs3gw.backup.pitr import RefusedError, report_json, restore

    client, repo = _client(args), _repo(args)
    try:
        catalog = Catalog(repo, args.bucket)
        with _bar(args, f"restore {args.into or args.bucket}") as advance:
            report = restore(
                client, repo, catalog, args.bucket, args.into or args.bucket, at=args.at,
                snapshot=args.snapshot, prefix=args.prefix, force=args.force, progress=advance,
            )  # fmt: skip
    except (RefusedError, ManifestError, ValueError) as exc:
        return _fail(args, str(exc))
    text = (
        f"restored {report.bucket} as of {report.as_of}: {report.written} written, "
        f"{report.unchanged} unchanged, {report.deleted} deleted"
    )
    text += "".join(f"\nwarning: {w}" for w in report.warnings)
    _emit(args, report_json(report), text)
    return 0


def _cmd_prune(args: argparse.Namespace) -> int:
    from rs3gw.backup.retention import prune

    report = prune(_repo(args), args.bucket, args.keep_last, args.keep_daily, args.dry_run)
    text = f"kept {len(report.kept)}, removed {len(report.removed)} snapshots, {report.bodies_removed} bodies"
    _emit(args, asdict(report), text)
    return 0


def _cmd_schedule(args: argparse.Namespace) -> int:
    """One JSON line (--json) or text line per event; SIGTERM/SIGINT stop between runs (exit 0)."""
    import signal

    from rs3gw.backup.retention import Policy
    from rs3gw.backup.schedule import Plan, ScheduleError, Scheduler, due_buckets, run_once

    policy = Policy(args.keep_last, args.keep_daily, args.keep_weekly, args.keep_monthly)
    try:
        plan = Plan(args.cron, tuple(args.bucket), args.kind, args.full_every, policy, args.workers)
    except ScheduleError as exc:
        return _fail(args, str(exc), EXIT_USAGE)
    client, repo = _client(args), _repo(args)

    def report(event: dict[str, Any]) -> None:
        print(json.dumps(event, sort_keys=True) if args.json else _event_text(event), flush=True)

    if args.once_due:
        import datetime

        due = due_buckets(repo, plan, datetime.datetime.now().astimezone())
        results = run_once(client, repo, args.endpoint, plan, due)
        for entry in results:
            report(entry)
        if not due:
            report({"event": "not-due", "buckets": list(plan.buckets)})
        return 0 if all(e["ok"] for e in results) else EXIT_FAILED
    scheduler = Scheduler(client, repo, args.endpoint, plan, report, args.max_runs)

    def on_signal(signum: int, _frame: object) -> None:
        if scheduler.stopping:  # a second signal: do not wait for the snapshot in progress
            raise KeyboardInterrupt
        scheduler.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scheduler.run()
    return 0


def _event_text(e: dict[str, Any]) -> str:
    if e["event"] == "run" and e["ok"]:
        pruned = f", pruned {len(e['prune']['removed'])}" if "prune" in e else ""
        return (
            f"{e['started']}  {e['bucket']}: {e['kind']} snapshot {e['snapshot']}, "
            f"{e['stats']['new_versions']} new versions in {e['seconds']}s{pruned}"
        )
    if e["event"] == "run":
        return f"{e['started']}  {e['bucket']}: FAILED {e['error']}"
    if e["event"] == "scheduled":
        return f"next run at {e['next_run']}"
    if e["event"] == "not-due":
        return "not due"
    return f"stopped after {e['runs']} runs ({e['failures']} failed)"
