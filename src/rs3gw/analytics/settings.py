"""The ``[analytics]`` config table: the request-series window, persistence and request prices.

Storage prices per GB-month come from ``[pricing]`` (``engine.tier_settings``), shared with the
storage report; only per-request and transfer prices live here.

```toml
[analytics]
window_hours = 24          # per-minute series kept (memory and files)
persist_interval = 60      # seconds between writes of this process's series file
price_get_per_1000 = 0.0004
price_put_per_1000 = 0.005
price_list_per_1000 = 0.005
price_egress_per_gb = 0.09
```
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class AnalyticsSettings:
    enabled: bool = True
    window_hours: float = 24.0
    persist_interval: float = 60.0  # 0: only at shutdown
    max_keys: int = 100_000  # distinct keys whose reads are counted (access frequency)
    usage_refresh: float = 60.0  # seconds the storage walk (usage per class) is cached
    price_get_per_1000: float = 0.0004  # GET, HEAD and other reads
    price_put_per_1000: float = 0.005  # PUT, COPY, POST, multipart
    price_list_per_1000: float = 0.005
    price_delete_per_1000: float = 0.0
    price_other_per_1000: float = 0.0004
    price_egress_per_gb: float = 0.09

    @property
    def window_s(self) -> float:
        return self.window_hours * 3600.0

    def request_prices(self) -> dict[str, float]:
        """USD per 1000 requests, by category."""
        return {
            "GET": self.price_get_per_1000,
            "HEAD": self.price_get_per_1000,
            "PUT": self.price_put_per_1000,
            "LIST": self.price_list_per_1000,
            "DELETE": self.price_delete_per_1000,
            "OTHER": self.price_other_per_1000,
        }

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_analytics_table(value: object) -> AnalyticsSettings:
    """Validate ``[analytics]`` (or the JSON a worker process receives)."""
    if value is None:
        return AnalyticsSettings()
    if isinstance(value, AnalyticsSettings):
        return value
    if not isinstance(value, dict):
        raise ValueError("analytics: expected a table")
    known = AnalyticsSettings.__dataclass_fields__
    out: dict[str, Any] = {}
    for key, v in value.items():
        if key not in known:
            raise ValueError(f"analytics.{key}: unknown key (known: {', '.join(sorted(known))})")
        default = getattr(AnalyticsSettings(), key)
        if isinstance(default, bool):
            if not isinstance(v, bool):
                raise ValueError(f"analytics.{key}: expected true or false")
        elif isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise ValueError(f"analytics.{key}: expected a non-negative number")
        elif isinstance(default, int):
            if not isinstance(v, int):
                raise ValueError(f"analytics.{key}: expected an integer")
        else:
            v = float(v)
        out[key] = v
    s = AnalyticsSettings(**out)
    if s.window_hours <= 0:
        raise ValueError("analytics.window_hours: expected a positive number")
    return s
