"""The ``[tiers]`` and ``[pricing]`` TOML tables, parsed here so config.py only hands raw tables over.

A storage class maps to a tier; archival tiers (GLACIER, DEEP_ARCHIVE) are bound to a location
whose bytes are unreadable until restored. Restore delays follow AWS's retrieval SLA measured in
lifecycle time: an SLA of ``h`` hours takes ``h / 24`` lifecycle days, so with real 86400-second
days it is the real SLA and with accelerated days (tests) it shrinks with them. ``restore_seconds``
overrides single entries in plain seconds.

Errors are ValueError naming the offending key; config.py turns them into ConfigError.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

ARCHIVE_CLASSES = ("GLACIER", "DEEP_ARCHIVE")
_DAY_KEYS = ("it_infrequent_days", "it_archive_instant_days", "candidate_days", "archive_candidate_days")
RETRIEVAL_TIERS = ("Expedited", "Standard", "Bulk")
# AWS's documented typical completion times, in hours (the upper end of each range).
SLA_HOURS: dict[str, dict[str, float]] = {
    "GLACIER": {"Expedited": 5 / 60, "Standard": 5.0, "Bulk": 12.0},
    "DEEP_ARCHIVE": {"Standard": 12.0, "Bulk": 48.0},
}
# us-east-1 list prices, USD per GB-month.
DEFAULT_PRICES: dict[str, float] = {
    "STANDARD": 0.023,
    "INTELLIGENT_TIERING": 0.023,
    "INTELLIGENT_TIERING.INFREQUENT": 0.0125,
    "INTELLIGENT_TIERING.ARCHIVE_INSTANT": 0.004,
    "STANDARD_IA": 0.0125,
    "ONEZONE_IA": 0.01,
    "GLACIER_IR": 0.004,
    "GLACIER": 0.0036,
    "DEEP_ARCHIVE": 0.00099,
    "REDUCED_REDUNDANCY": 0.024,
}


@dataclass(frozen=True)
class TierSettings:
    """Where archived bytes go, how long restores take, and what a GB-month costs per class."""

    # tier name (lower-case class) -> directory; empty: DATA_DIR/tiers/<name>
    locations: dict[str, str] = field(default_factory=dict)
    # "CLASS.Tier" (e.g. "GLACIER.Standard") -> seconds, overriding the scaled SLA
    restore_seconds: dict[str, float] = field(default_factory=dict)
    interval: float = 5.0  # seconds between checks for due restores and access-count flushes
    it_infrequent_days: int = 30  # INTELLIGENT_TIERING: days without access before Infrequent Access
    it_archive_instant_days: int = 90  # ... and before Archive Instant Access
    candidate_days: int = 30  # the report lists STANDARD objects older than this as IA candidates
    archive_candidate_days: int = 90  # ... and not accessed for this long as archive candidates
    prices: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PRICES))

    def restore_delay(self, storage_class: str, tier: str, day_seconds: float) -> float:
        key = f"{storage_class}.{tier}"
        if key in self.restore_seconds:
            return self.restore_seconds[key]
        return SLA_HOURS[storage_class][tier] / 24.0 * day_seconds

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: object, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{label}: expected a non-negative number, got {value!r}")
    return float(value)


def _days(value: object, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{label}: expected a positive integer, got {value!r}")
    return value


def parse_tier_tables(tiers: object, pricing: object) -> TierSettings:
    """Validate ``[tiers]`` and ``[pricing]`` (or the JSON a worker process receives)."""
    if isinstance(tiers, TierSettings):
        return tiers
    out: dict[str, Any] = {}
    if tiers is not None:
        if not isinstance(tiers, dict):
            raise ValueError("tiers: expected a table")
        for name, value in tiers.items():
            label = f"tiers.{name}"
            if name in ("glacier", "deep_archive"):
                if not isinstance(value, str) or not value:
                    raise ValueError(f"{label}: expected a directory path")
                out.setdefault("locations", {})[name] = value
            elif name == "locations" and isinstance(value, dict):  # the JSON hand-off form
                out["locations"] = {str(k): str(v) for k, v in value.items()}
            elif name == "restore_seconds":
                out[name] = _restore_seconds(value, label)
            elif name == "interval":
                out[name] = _number(value, label) or 5.0
            elif name in _DAY_KEYS:
                out[name] = _days(value, label)
            elif name == "prices" and isinstance(value, dict):  # the JSON hand-off form
                pricing = value
            else:
                raise ValueError(
                    f"{label}: unknown key (known: glacier, deep_archive, restore_seconds, interval, "
                    "it_infrequent_days, it_archive_instant_days, candidate_days, archive_candidate_days)"
                )
    if pricing is not None:
        if not isinstance(pricing, dict):
            raise ValueError("pricing: expected a table of storage class = USD per GB-month")
        prices = dict(DEFAULT_PRICES)
        for cls, value in pricing.items():
            if cls not in DEFAULT_PRICES:
                raise ValueError(f"pricing.{cls}: unknown storage class (known: {', '.join(DEFAULT_PRICES)})")
            prices[cls] = _number(value, f"pricing.{cls}")
        out["prices"] = prices
    return TierSettings(**out)


def _restore_seconds(value: object, label: str) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f'{label}: expected a table like {{ "GLACIER.Standard" = 5 }}')
    out: dict[str, float] = {}
    for key, seconds in value.items():
        cls, _, tier = str(key).partition(".")
        if cls not in SLA_HOURS or tier not in SLA_HOURS[cls]:
            known = ", ".join(f"{c}.{t}" for c, ts in SLA_HOURS.items() for t in ts)
            raise ValueError(f"{label}.{key}: unknown class and retrieval tier (known: {known})")
        out[str(key)] = _number(seconds, f"{label}.{key}")
    return out


def tiers_from_json(text: str) -> TierSettings:
    return parse_tier_tables(json.loads(text), None)
