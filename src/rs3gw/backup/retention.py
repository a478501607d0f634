"""Retention: which snapshots to keep, and garbage collection of bodies nothing references any more."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from rs3gw.backup.manifest import Catalog
from rs3gw.backup.repo import Repo, body_key, manifest_key

# A body younger than this may belong to a backup still running (bodies are stored before their
# manifest), so collection leaves it for the next prune.
GRACE_S = 3600.0


@dataclass
class PruneReport:
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    bodies_removed: int = 0
    dry_run: bool = False


@dataclass(frozen=True)
class Policy:
    """A retention policy (`rs3gw backup schedule --keep-*`); all None keeps everything."""

    keep_last: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None

    @property
    def active(self) -> bool:
        return any(
            n is not None for n in (self.keep_last, self.keep_daily, self.keep_weekly, self.keep_monthly)
        )


def _period(taken: datetime.datetime, unit: str) -> str:
    if unit == "day":
        return taken.date().isoformat()
    if unit == "week":
        year, week, _ = taken.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{taken.year}-{taken.month:02d}"


def choose(
    catalog: Catalog,
    keep_last: int | None,
    keep_daily: int | None,
    keep_weekly: int | None = None,
    keep_monthly: int | None = None,
) -> set[str]:
    """keep-last N newest, plus the newest of each of the last N days (ISO weeks, months) that have
    one, plus the ancestors of everything kept."""
    ids = catalog.ids
    periods = {"day": keep_daily, "week": keep_weekly, "month": keep_monthly}
    if keep_last is None and all(n is None for n in periods.values()):
        return set(ids)
    keep: set[str] = set(ids[-keep_last:]) if keep_last else set()
    for unit, n in periods.items():
        if not n:
            continue
        newest: dict[str, str] = {}
        for snap_id in ids:
            newest[_period(catalog.get(snap_id).taken, unit)] = snap_id  # ids are oldest first
        keep |= {newest[p] for p in sorted(newest)[-n:]}
    for snap_id in list(keep):
        keep |= set(catalog.chain(snap_id))  # an incremental is useless without its parents
    return keep


def prune(
    repo: Repo,
    bucket: str,
    keep_last: int | None,
    keep_daily: int | None,
    dry_run: bool = False,
    grace_s: float = GRACE_S,
    keep_weekly: int | None = None,
    keep_monthly: int | None = None,
) -> PruneReport:
    catalog = Catalog(repo, bucket)
    keep = choose(catalog, keep_last, keep_daily, keep_weekly, keep_monthly)
    report = PruneReport(kept=sorted(keep), removed=sorted(set(catalog.ids) - keep), dry_run=dry_run)
    if dry_run:
        return report
    for snap_id in report.removed:
        repo.delete(manifest_key(bucket, snap_id))
    report.bodies_removed = collect(repo, grace_s)
    return report


def collect(repo: Repo, grace_s: float = GRACE_S) -> int:
    """Delete bodies no manifest of any bucket references (older than the grace period)."""
    from rs3gw.backup.manifest import buckets

    referenced: set[str] = set()
    for b in buckets(repo):
        for m in Catalog(repo, b).all():  # a kept snapshot's chain is kept, so deltas suffice
            referenced |= {r.sha256 for r in m.versions if r.sha256}
    removed = 0
    for body in list(repo.bodies()):
        if body.sha256 not in referenced and body.age_s >= grace_s:
            repo.delete(body_key(body.sha256))
            removed += 1
    return removed
