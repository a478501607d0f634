"""`rs3gw backup schedule`: snapshots on a cron schedule, each followed by the retention policy.

A long-lived client of the gateway's S3 API like the other `rs3gw backup` commands (run it under
systemd, a container or a supervisor), so it needs nothing inside the server and can back up any
S3-compatible endpoint. With ``--once-due`` it is a one-shot for an external timer instead: it runs
when a scheduled time has passed since the bucket's newest snapshot, and otherwise does nothing.

The cron expression is parsed by croniter: five fields, an optional sixth for seconds (croniter puts
it last), and the ``@hourly``/``@daily``/... shorthands; times are the host's local time.

All the state lives in the backup location (the snapshot catalog), so a restarted scheduler picks up
where the last one stopped: ``--full-every N`` counts the snapshots since the newest full one.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from croniter import CroniterBadCronError, croniter

from rs3gw.backup.capture import create_snapshot
from rs3gw.backup.manifest import snapshot_ids
from rs3gw.backup.repo import Repo
from rs3gw.backup.retention import Policy, prune


class ScheduleError(ValueError):
    """The cron expression or the policy cannot be used (a usage error, exit code 2)."""


@dataclass(frozen=True)
class Plan:
    """What each scheduled run does."""

    cron: str
    buckets: tuple[str, ...]
    kind: str = "full"  # every run's kind, unless full_every is set
    full_every: int = 0  # >0: a full snapshot every N runs, incrementals between
    retention: Policy = field(default_factory=Policy)
    workers: int = 8

    def __post_init__(self) -> None:
        try:
            croniter(self.cron)
        except (CroniterBadCronError, ValueError, KeyError) as exc:
            raise ScheduleError(f"bad cron expression {self.cron!r}: {exc}") from None
        if self.full_every < 0:
            raise ScheduleError("--full-every must be 1 or more")

    def next_after(self, when: datetime.datetime) -> datetime.datetime:
        return croniter(self.cron, when).get_next(datetime.datetime)  # type: ignore[no-any-return]

    def previous_before(self, when: datetime.datetime) -> datetime.datetime:
        return croniter(self.cron, when).get_prev(datetime.datetime)  # type: ignore[no-any-return]


def kind_for(repo: Repo, bucket: str, plan: Plan) -> str:
    """``--full-every N``: full when the newest N-1 snapshots hold no full one (or there are none)."""
    if not plan.full_every:
        return plan.kind
    kinds = [i.rsplit("-", 1)[-1] for i in snapshot_ids(repo, bucket)]  # ids end in -<kind>
    for since_full, k in enumerate(reversed(kinds)):
        if k == "full":
            return "full" if since_full + 1 >= plan.full_every else "incremental"
    return "full"


def newest_taken(repo: Repo, bucket: str) -> datetime.datetime | None:
    ids = snapshot_ids(repo, bucket)
    if not ids:
        return None
    stamp = ids[-1].split("-", 1)[0]  # snapshot_id(): %Y%m%dT%H%M%S%fZ
    return datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=datetime.UTC)


def due_buckets(repo: Repo, plan: Plan, now: datetime.datetime) -> list[str]:
    """Buckets whose newest snapshot is older than the last scheduled time (or that have none)."""
    last_slot = plan.previous_before(now)
    out = []
    for bucket in plan.buckets:
        taken = newest_taken(repo, bucket)
        if taken is None or taken < last_slot:
            out.append(bucket)
    return out


def run_once(client: Any, repo: Repo, endpoint: str, plan: Plan, buckets: list[str]) -> list[dict[str, Any]]:
    """One scheduled run: a snapshot of each bucket, then retention; one result per bucket.

    A bucket that fails is reported and the others still run: one unreachable bucket must not stop
    the rest of the schedule."""
    out: list[dict[str, Any]] = []
    for bucket in buckets:
        started = datetime.datetime.now(datetime.UTC)
        entry: dict[str, Any] = {"event": "run", "bucket": bucket, "started": started.isoformat()}
        try:
            kind = kind_for(repo, bucket, plan)
            m = create_snapshot(client, repo, bucket, endpoint, kind, workers=plan.workers)
            entry.update(snapshot=m.id, kind=m.kind, stats=m.stats, ok=True)
            if plan.retention.active:
                r = plan.retention
                report = prune(repo, bucket, r.keep_last, r.keep_daily, keep_weekly=r.keep_weekly,
                               keep_monthly=r.keep_monthly)  # fmt: skip
                entry["prune"] = asdict(report)
        except Exception as exc:  # botocore's many kinds, a full disk, a broken catalog: logged, retried
            entry.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        entry["seconds"] = round((datetime.datetime.now(datetime.UTC) - started).total_seconds(), 3)
        out.append(entry)
    return out


class Scheduler:
    """The loop: sleep until the next cron time, run, report; stop() (SIGTERM) ends it between runs."""

    def __init__(
        self,
        client: Any,
        repo: Repo,
        endpoint: str,
        plan: Plan,
        report: Callable[[dict[str, Any]], None],
        max_runs: int = 0,
    ) -> None:
        self.client, self.repo, self.endpoint, self.plan = client, repo, endpoint, plan
        self.report = report
        self.max_runs = max_runs
        self.runs = 0
        self.failures = 0
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        when = self.plan.next_after(_now())
        self.report({"event": "scheduled", "cron": self.plan.cron, "next_run": when.isoformat()})
        while not self._stop.is_set():
            delay = (when - _now()).total_seconds()
            if delay > 0 and self._stop.wait(delay):
                break
            for entry in run_once(self.client, self.repo, self.endpoint, self.plan, list(self.plan.buckets)):
                self.failures += not entry["ok"]
                self.report(entry)
            self.runs += 1
            if self.max_runs and self.runs >= self.max_runs:
                break
            # Skip times missed while the run took longer than the interval (cron does not queue them).
            when = self.plan.next_after(max(_now(), when))
            self.report({"event": "scheduled", "cron": self.plan.cron, "next_run": when.isoformat()})
        self.report({"event": "stopped", "runs": self.runs, "failures": self.failures})


def _now() -> datetime.datetime:
    return datetime.datetime.now().astimezone()
