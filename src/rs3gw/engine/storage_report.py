"""Storage-class analysis and cost estimation, read straight from the metadata store.

Used by the admin API (live server) and ``rs3gw storage report`` (offline), so both give the same
numbers. Costs are per GB-month (GB = 2**30 bytes, as AWS bills) at the ``[pricing]`` prices;
INTELLIGENT_TIERING versions are priced by the access tier they are in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rs3gw.engine.tier_settings import ARCHIVE_CLASSES, TierSettings
from rs3gw.engine.version_walk import stored_versions
from rs3gw.meta.store import AccessStats, MetadataStore, all_buckets, merged_access
from rs3gw.model import ObjectVersion

GB = float(1 << 30)


@dataclass
class Tally:
    objects: int = 0
    bytes: int = 0

    def add(self, size: int) -> None:
        self.objects += 1
        self.bytes += size


@dataclass
class BucketReport:
    classes: dict[str, Tally] = field(default_factory=dict)
    intelligent_tiering: dict[str, Tally] = field(default_factory=dict)
    restored: Tally = field(default_factory=Tally)
    ia_candidates: Tally = field(default_factory=Tally)  # STANDARD, older than candidate_days
    archive_candidates: Tally = field(default_factory=Tally)  # ... and idle for archive_candidate_days
    monthly_cost: float = 0.0
    all_standard_cost: float = 0.0
    archival_savings: float = 0.0  # of GLACIER / DEEP_ARCHIVE versions vs STANDARD
    accessed: Tally = field(default_factory=Tally)  # versions read at least once (tracked GETs)
    gets: int = 0  # tracked GETs over all versions


def _price_key(v: ObjectVersion) -> str:
    cls = v.meta.storage_class
    tier = v.meta.system.get("it-tier", "FREQUENT")
    return f"{cls}.{tier}" if cls == "INTELLIGENT_TIERING" and tier != "FREQUENT" else cls


async def build_report(
    store: MetadataStore, owner_ids: list[str], settings: TierSettings, day_seconds: float, now: float
) -> dict[str, Any]:
    """Every bucket of ``owner_ids``: each stored version (delete markers excluded) counted once."""
    prices = settings.prices
    std = prices["STANDARD"]
    buckets: dict[str, BucketReport] = {}
    for b in await all_buckets(store, owner_ids):
        rep = buckets[b.name] = BucketReport()
        counts = await store.bucket_access(b.name)  # GETs live in their own table, one read a bucket
        async for v in stored_versions(store, b.name):
            _count(rep, v, settings, day_seconds, now, counts.get((v.key, v.version_id)))
    out: dict[str, Any] = {"buckets": {}, "prices_per_gb_month": prices}
    total = BucketReport()
    for name, rep in sorted(buckets.items()):
        out["buckets"][name] = _to_json(rep, std)
        for cls, t in rep.classes.items():
            tt = total.classes.setdefault(cls, Tally())
            tt.objects, tt.bytes = tt.objects + t.objects, tt.bytes + t.bytes
        for tier, t in rep.intelligent_tiering.items():
            tt = total.intelligent_tiering.setdefault(tier, Tally())
            tt.objects, tt.bytes = tt.objects + t.objects, tt.bytes + t.bytes
        total.gets += rep.gets
        for attr in ("restored", "ia_candidates", "archive_candidates", "accessed"):
            a, t = getattr(total, attr), getattr(rep, attr)
            a.objects, a.bytes = a.objects + t.objects, a.bytes + t.bytes
        total.monthly_cost += rep.monthly_cost
        total.all_standard_cost += rep.all_standard_cost
        total.archival_savings += rep.archival_savings
    out["total"] = _to_json(total, std)
    return out


def _count(
    rep: BucketReport,
    v: ObjectVersion,
    settings: TierSettings,
    day: float,
    now: float,
    access: AccessStats | None = None,
) -> None:
    """``access``: the version's ``object_access`` row; counts older documents carry are added."""
    cls = v.meta.storage_class
    rep.classes.setdefault(cls, Tally()).add(v.size)
    s = v.meta.system
    if cls == "INTELLIGENT_TIERING":
        rep.intelligent_tiering.setdefault(s.get("it-tier", "FREQUENT"), Tally()).add(v.size)
    if s.get("restore-state") == "done":
        rep.restored.add(v.size)
    got = merged_access(s, access)
    if got is not None and got.count:
        rep.accessed.add(v.size)
        rep.gets += got.count
    gb = v.size / GB
    price = settings.prices.get(_price_key(v), settings.prices["STANDARD"])
    rep.monthly_cost += gb * price
    rep.all_standard_cost += gb * settings.prices["STANDARD"]
    if cls in ARCHIVE_CLASSES:
        rep.archival_savings += gb * (settings.prices["STANDARD"] - price)
    if cls == "STANDARD" and v.is_latest:
        age_days = (now - v.last_modified) / day
        idle_days = (now - ((got.last if got is not None else 0.0) or v.last_modified)) / day
        if age_days >= settings.candidate_days:
            rep.ia_candidates.add(v.size)
            if idle_days >= settings.archive_candidate_days:
                rep.archive_candidates.add(v.size)


def _tallies(d: dict[str, Tally]) -> dict[str, dict[str, int]]:
    return {k: {"objects": t.objects, "bytes": t.bytes} for k, t in sorted(d.items())}


def _to_json(rep: BucketReport, std_price: float) -> dict[str, Any]:
    return {
        "classes": _tallies(rep.classes),
        "intelligent_tiering": _tallies(rep.intelligent_tiering),
        "restored": {"objects": rep.restored.objects, "bytes": rep.restored.bytes},
        "access": {"objects_accessed": rep.accessed.objects, "gets": rep.gets},
        "transition_candidates": {
            "STANDARD_IA": {"objects": rep.ia_candidates.objects, "bytes": rep.ia_candidates.bytes},
            "GLACIER": {"objects": rep.archive_candidates.objects, "bytes": rep.archive_candidates.bytes},
        },
        "cost": {  # USD per month, unrounded
            "monthly": rep.monthly_cost,
            "all_standard_monthly": rep.all_standard_cost,
            "savings_monthly": rep.all_standard_cost - rep.monthly_cost,
            "archival_savings_monthly": rep.archival_savings,
        },
    }


def format_text(report: dict[str, Any]) -> str:
    """A human-readable rendering for the CLI."""
    lines: list[str] = []
    for name, rep in [*report["buckets"].items(), ("TOTAL", report["total"])]:
        lines.append(f"{name}:")
        for cls, t in rep["classes"].items():
            lines.append(f"  {cls:<20} {t['objects']:>10} objects {t['bytes']:>16} bytes")
        for tier, t in rep["intelligent_tiering"].items():
            lines.append(f"  IT/{tier:<17} {t['objects']:>10} objects {t['bytes']:>16} bytes")
        c = rep["transition_candidates"]
        lines.append(
            f"  candidates: STANDARD_IA {c['STANDARD_IA']['objects']} objects, "
            f"GLACIER {c['GLACIER']['objects']} objects"
        )
        cost = rep["cost"]
        lines.append(
            f"  cost/month: ${cost['monthly']:.4f} (all STANDARD ${cost['all_standard_monthly']:.4f}, "
            f"savings ${cost['savings_monthly']:.4f}, from archival ${cost['archival_savings_monthly']:.4f})"
        )
    return "\n".join(lines) + "\n"
