"""Self-healing: scrub runs (background in the server, ``rs3gw heal run`` on demand) and their
persisted results (``rs3gw heal status``, the ``rs3gw_scrub_*`` metrics).

One scrub at a time per data directory, across worker processes and the offline command: a pass
holds an exclusive ``flock`` on ``.rs3gw/scrub.lock``. Results live in ``.rs3gw/scrub-status.json``
(the last pass, plus running totals), written atomically. A corrupt version is repaired from a
backup repository when one is configured (``[scrub] heal_backup``, ``heal run --heal-backup``) and
holds a verified copy of that very version (``rs3gw.engine.repair``); otherwise it is quarantined
and reported, never served.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rs3gw.backup.heal_source import open_source
from rs3gw.config import Settings
from rs3gw.engine.core import ObjectEngine
from rs3gw.engine.repair import RepairSource
from rs3gw.engine.scrub import Scrubber, ScrubReport

log = logging.getLogger("rs3gw.scrub")
STATUS_RELPATH = Path(".rs3gw") / "scrub-status.json"
LOCK_RELPATH = Path(".rs3gw") / "scrub.lock"
MAX_POLL = 30.0  # seconds between "is a scrub due?" checks of the background scheduler
MB = 1_000_000
SourceFactory = Callable[[], RepairSource]  # a fresh source per pass: it sees the newest snapshots


# -- persisted status ---------------------------------------------------------------------------
def load_status(data_dir: Path) -> dict[str, Any]:
    """``{"last": report or None, "totals": {...}}``; an unreadable file reads as no scrub yet."""
    try:
        doc = json.loads((data_dir / STATUS_RELPATH).read_text())
    except (OSError, ValueError):
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    totals = {"runs": 0, "versions_checked": 0, "bytes_checked": 0, "corrupt_found": 0, "repaired": 0}
    totals.update(doc.get("totals") or {})
    return {"last": doc.get("last"), "totals": totals}


def save_status(data_dir: Path, report: ScrubReport) -> dict[str, Any]:
    """Record a finished pass (caller holds the scrub lock, so read-modify-write is safe)."""
    doc = load_status(data_dir)
    t = doc["totals"]
    t["runs"] += 1
    t["versions_checked"] += report.versions_checked
    t["bytes_checked"] += report.bytes_checked
    t["corrupt_found"] += len(report.corrupt)
    t["repaired"] += report.repaired
    doc["last"] = report.to_json()
    path = data_dir / STATUS_RELPATH
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".scrub-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return doc


@contextlib.contextmanager
def scrub_lock(data_dir: Path) -> Iterator[bool]:
    """Yields True when this process may scrub now, False when another scrub is running."""
    path = data_dir / LOCK_RELPATH
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


def owner_ids(settings: Settings) -> list[str]:
    """Buckets are scrubbed per owner: those of every configured account."""
    return [u.owner.id for u in settings.users]


def backup_source(
    location: str, endpoint: str = "", access_key: str = "", secret_key: str = ""
) -> SourceFactory | None:
    """Repairs from the backup at ``location`` (DIR or s3://BUCKET/PREFIX); None: no repairs."""
    if not location:
        return None
    if location.startswith("s3://") and not endpoint:
        raise ValueError(f"the s3:// heal backup {location} needs an endpoint")
    return lambda: open_source(location, endpoint, access_key, secret_key)


def settings_source(settings: Settings) -> SourceFactory | None:
    """The ``[scrub] heal_backup`` repair source of the configuration, if any."""
    return backup_source(
        settings.scrub_heal_backup,
        settings.scrub_heal_backup_endpoint,
        settings.scrub_heal_backup_access_key,
        settings.scrub_heal_backup_secret_key,
    )


async def scrub_once(
    engine: ObjectEngine,
    data_dir: Path,
    owners: Sequence[str],
    rate_mb_s: int,
    progress: Callable[[int], None] | None = None,
    total: Callable[[int], None] | None = None,
    due: Callable[[dict[str, Any]], bool] | None = None,
    source: SourceFactory | None = None,
) -> ScrubReport | None:
    """One pass under the lock, persisted; None when another scrub holds the lock (or ``due``
    says the last recorded pass is recent enough). With ``source``, corrupt versions it holds a
    good copy of are repaired instead of quarantined."""
    with scrub_lock(data_dir) as mine:
        if not mine:
            return None
        if due is not None and not due(await asyncio.to_thread(load_status, data_dir)):
            return None
        repair = None if source is None else await asyncio.to_thread(source)
        scrubber = Scrubber(engine, owners, rate_mb_s * MB, progress, repair)
        if total is not None:
            total(await scrubber.total_bytes())
        report = await scrubber.run()
        await asyncio.to_thread(save_status, data_dir, report)
        return report


# -- background scrubber in the server ----------------------------------------------------------
class ScrubScheduler:
    """Runs a pass whenever the last recorded one finished ``interval`` seconds ago or more.

    Due-ness comes from the persisted status, so with ``--workers N`` only one worker scrubs per
    interval (the others find the lock taken or the pass recent), and an offline ``heal run``
    counts as a pass too.
    """

    def __init__(self, engine: ObjectEngine, settings: Settings) -> None:
        self.engine = engine
        self.data_dir = settings.data_dir
        self.owners = owner_ids(settings)
        self.interval = settings.scrub_interval
        self.rate = settings.scrub_rate_mb_s
        self.source = settings_source(settings)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.interval > 0:
            self.task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def _due(self, status: dict[str, Any]) -> bool:
        last = status.get("last") or {}
        return float(last.get("finished", 0.0)) + self.interval <= time.time()

    async def _loop(self) -> None:
        while True:
            try:
                report = await scrub_once(
                    self.engine, self.data_dir, self.owners, self.rate, due=self._due, source=self.source
                )
                if report is not None:
                    log.info(
                        "scrub: checked %d versions (%d bytes), %d corrupt, %d repaired, %d quarantined",
                        report.versions_checked,
                        report.bytes_checked,
                        len(report.corrupt),
                        report.repaired,
                        report.quarantined_now,
                    )
            except Exception:  # the next interval tries again
                log.exception("scrub: pass failed")
            await asyncio.sleep(min(float(self.interval), MAX_POLL))


# -- command line -------------------------------------------------------------------------------
Resolve = Callable[[argparse.Namespace], Settings]


def add_commands(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    add_common: Callable[[argparse.ArgumentParser], None],
    resolve: Resolve,
) -> None:
    h = sub.add_parser(
        "heal", help="scrub object data against its checksums; repair from a backup or quarantine"
    )
    hsub = h.add_subparsers(dest="heal_command", metavar="COMMAND", required=True)
    run = hsub.add_parser("run", help="scrub every object version now (safe while the server runs)")
    add_common(run)
    run.add_argument("--rate", type=int, default=0, metavar="MB_S", help="read rate limit (default none)")
    run.add_argument("--json", action="store_true", help="print the report as JSON")
    run.add_argument(
        "--heal-backup",
        metavar="DIR|s3://BUCKET/PREFIX",
        help="repair corrupt versions from this backup (default: [scrub] heal_backup, if set)",
    )
    run.add_argument("--heal-backup-endpoint", metavar="URL", help="S3 endpoint of an s3:// heal backup")
    run.add_argument("--heal-backup-access-key", help="its access key (default RS3GW_BACKUP_ACCESS_KEY)")
    run.add_argument("--heal-backup-secret-key", help="its secret key (default RS3GW_BACKUP_SECRET_KEY)")
    run.set_defaults(func=lambda a: _cmd_run(a, resolve))
    st = hsub.add_parser("status", help="the last scrub's results and running totals")
    add_common(st)
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    st.set_defaults(func=lambda a: _cmd_status(a, resolve))


def _run_source(args: argparse.Namespace, settings: Settings) -> SourceFactory | None:
    """``--heal-backup`` (with its endpoint and keys) wins over the configured ``[scrub] heal_backup``."""
    if not args.heal_backup:
        return settings_source(settings)
    env = os.environ
    return backup_source(
        args.heal_backup,
        args.heal_backup_endpoint or "",
        args.heal_backup_access_key or env.get("RS3GW_BACKUP_ACCESS_KEY", ""),
        args.heal_backup_secret_key or env.get("RS3GW_BACKUP_SECRET_KEY", ""),
    )


def _cmd_run(args: argparse.Namespace, resolve: Resolve) -> int:
    settings = resolve(args)
    try:
        source = _run_source(args, settings)
    except ValueError as e:
        if args.json:
            print(json.dumps({"error": str(e)}))
        print(f"rs3gw heal: {e}", file=sys.stderr)
        return 2
    report = asyncio.run(_offline_scrub(settings, args.rate, show_progress=not args.json, source=source))
    if report is None:
        print("rs3gw: another scrub is running on this data directory", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        _print_report(report.to_json())
    return 0 if report.to_json()["clean"] else 1


async def _offline_scrub(
    settings: Settings, rate: int, show_progress: bool, source: SourceFactory | None = None
) -> ScrubReport | None:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    from rs3gw.blobs.dedup import DedupBlobStore
    from rs3gw.wiring import build_engine, with_served_dedup  # late: wiring imports this module

    # Repairs write blobs: with the serving server's dedup settings (it may have got --dedup and its
    # sizes as flags this command never sees), else a repaired object would lose its deduplication.
    engine = build_engine(with_served_dedup(settings))
    await engine.store.open()  # not engine.start(): an offline scrub must not sweep or collect
    bar = Progress(
        "scrub",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not show_progress,
        transient=True,
    )
    task = bar.add_task("scrub", total=None)
    try:
        with bar:
            return await scrub_once(
                engine,
                settings.data_dir,
                owner_ids(settings),
                rate,
                progress=lambda n: bar.advance(task, n),
                total=lambda n: bar.update(task, total=n),
                source=source,
            )
    finally:
        await engine.stop()
        if isinstance(engine.blobs, DedupBlobStore):
            engine.blobs.close()


def _cmd_status(args: argparse.Namespace, resolve: Resolve) -> int:
    settings = resolve(args)
    doc = load_status(settings.data_dir)
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    if doc["last"] is None:
        print("no scrub has run on this data directory yet")
        return 0
    _print_report(doc["last"])
    t = doc["totals"]
    print(
        f"totals: {t['runs']} scrubs, {t['versions_checked']} versions, {t['corrupt_found']} corrupt found, "
        f"{t['repaired']} repaired"
    )
    return 0


def _print_report(r: dict[str, Any]) -> None:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(r["finished"])))
    print(
        f"scrub finished {when} in {float(r['duration']):.1f}s: {r['versions_checked']} versions, "
        f"{r['bytes_checked']} bytes checked, {r['skipped']} skipped (SSE-C)"
    )
    for f in r["corrupt"]:
        if f.get("repaired"):
            state = f"repaired: {f['repair']}"
        else:
            state = "quarantined" if f["quarantined"] else "not quarantined (changed meanwhile)"
            state += f"; not repaired: {f['repair']}" if f.get("repair") else ""
        print(f"CORRUPT {f['bucket']}/{f['key']} version {f['version_id']}: {f['problem']} [{state}]")
    for f in r.get("released") or []:
        print(
            f"REPAIRED {f['bucket']}/{f['key']} version {f['version_id']} (quarantined before): {f['repair']}"
        )
    source = r.get("repair_source") or ""
    print(
        f"{r.get('repaired', 0)} object versions repaired from {source or 'a backup (none configured)'}; "
        f"{r['quarantined']} quarantined"
    )
    print("clean" if r["clean"] else "corrupt or quarantined data present")
