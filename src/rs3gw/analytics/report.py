"""The analytics documents (admin API and CLI share them): requests, usage, access, cost.

``usage`` and storage cost reuse the storage report (``engine.storage_report``: one walk of the
metadata store, per bucket and storage class, priced with ``[pricing]``); request and transfer costs
apply ``[analytics]`` prices to the request series of the window.
"""

from __future__ import annotations

from typing import Any

from rs3gw.analytics.recorder import CATEGORIES, Series, add_tally, empty_tally
from rs3gw.analytics.settings import AnalyticsSettings

GB = 1 << 30
FREQUENCY_BINS = ("0", "1", "2-10", "11-100", ">100")


def _bin(n: int) -> str:
    if n <= 1:
        return str(n)
    if n <= 10:
        return "2-10"
    return "11-100" if n <= 100 else ">100"


def requests_doc(series: Series, now: float, window_s: float, bucket: str | None = None) -> dict[str, Any]:
    """Per bucket: totals over the window and the per-minute series (minutes with no requests omitted)."""
    buckets: dict[str, dict[str, Any]] = {}
    total = empty_tally()
    for minute in sorted(series.minutes):
        for name, tally in series.minutes[minute].items():
            if bucket is not None and name != bucket:
                continue
            doc = buckets.setdefault(name, {"totals": empty_tally(), "series": []})
            add_tally(doc["totals"], tally)
            add_tally(total, tally)
            doc["series"].append({"minute": minute, **tally})
    return {
        "window_start": now - window_s,
        "window_end": now,
        "resolution_seconds": 60,
        "buckets": dict(sorted(buckets.items())),
        "total": total,
    }


def usage_doc(storage_report: dict[str, Any]) -> dict[str, Any]:
    """Bytes and object versions per bucket and storage class (from the storage report)."""
    out: dict[str, Any] = {}
    for name, rep in storage_report["buckets"].items():
        classes = rep["classes"]
        out[name] = {
            "classes": classes,
            "objects": sum(c["objects"] for c in classes.values()),
            "bytes": sum(c["bytes"] for c in classes.values()),
        }
    total = storage_report["total"]["classes"]
    return {
        "buckets": out,
        "total": {
            "classes": total,
            "objects": sum(c["objects"] for c in total.values()),
            "bytes": sum(c["bytes"] for c in total.values()),
        },
    }


def access_doc(series: Series, objects: dict[str, int], top: int = 10) -> dict[str, Any]:
    """How many objects were read 0, 1, 2-10, 11-100 and >100 times in the window, per bucket.

    ``objects``: stored object versions per bucket; those never read make up the "0" bin.
    """
    per: dict[str, dict[str, int]] = {}
    reads: dict[str, list[tuple[str, int]]] = {}
    for k, (n, _first, _last) in series.access.items():
        bucket, _, key = k.partition("/")
        bins = per.setdefault(bucket, dict.fromkeys(FREQUENCY_BINS, 0))
        bins[_bin(n)] += 1
        reads.setdefault(bucket, []).append((key, n))
    out: dict[str, Any] = {}
    for bucket in sorted(set(per) | set(objects)):
        bins = per.get(bucket, dict.fromkeys(FREQUENCY_BINS, 0))
        read = sum(bins.values())
        bins["0"] = max(objects.get(bucket, 0) - read, 0)
        hot = sorted(reads.get(bucket, []), key=lambda kv: (-kv[1], kv[0]))[:top]
        out[bucket] = {"distribution": bins, "top": [{"key": k, "reads": n} for k, n in hot]}
    return {"bins": list(FREQUENCY_BINS), "buckets": out}


def cost_doc(
    requests: dict[str, Any], storage_report: dict[str, Any], settings: AnalyticsSettings
) -> dict[str, Any]:
    """Storage (per month, ``[pricing]``) plus requests and egress over the window (``[analytics]``)."""
    prices = settings.request_prices()
    out: dict[str, Any] = {}
    names = set(requests["buckets"]) | set(storage_report["buckets"])
    totals = {"storage_monthly": 0.0, "requests": 0.0, "egress": 0.0}
    for name in sorted(names):
        tally = requests["buckets"].get(name, {}).get("totals", empty_tally())
        by_cat = {c: tally[c] * prices[c] / 1000.0 for c in CATEGORIES}
        egress = tally["bytes_out"] / GB * settings.price_egress_per_gb
        storage = float(storage_report["buckets"].get(name, {}).get("cost", {}).get("monthly", 0.0))
        out[name] = {
            "storage_monthly": storage,
            "requests": {c: {"count": tally[c], "cost": by_cat[c]} for c in CATEGORIES},
            "requests_total": sum(by_cat.values()),
            "egress": {"bytes": tally["bytes_out"], "cost": egress},
        }
        totals["storage_monthly"] += storage
        totals["requests"] += sum(by_cat.values())
        totals["egress"] += egress
    return {
        "currency": "USD",
        "storage_prices_per_gb_month": storage_report.get("prices_per_gb_month", {}),
        "request_prices_per_1000": prices,
        "egress_price_per_gb": settings.price_egress_per_gb,
        "window_start": requests["window_start"],
        "window_end": requests["window_end"],
        "buckets": out,
        "total": totals,
    }
