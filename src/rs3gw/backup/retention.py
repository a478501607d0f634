"""Retention: which snapshots to keep, and garbage collection of bodies nothing references any more."""

from __future__ import annotations

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


def choose(catalog: Catalog, keep_last: int | None, keep_daily: int | None) -> set[str]:
    """keep-last N newest, plus the newest of each of the last N days that have one, plus ancestors."""
    ids = catalog.ids
    if keep_last is None and keep_daily is None:
        return set(ids)
    keep: set[str] = set(ids[-keep_last:]) if keep_last else set()
    if keep_daily:
        by_day: dict[str, str] = {}
        for snap_id in ids:
            by_day[catalog.get(snap_id).taken.date().isoformat()] = snap_id  # ids are oldest first
        keep |= {by_day[d] for d in sorted(by_day)[-keep_daily:]}
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
) -> PruneReport:
    catalog = Catalog(repo, bucket)
    keep = choose(catalog, keep_last, keep_daily)
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
