"""Pattern detection, prediction and the [cache]/[analytics] tables (pure logic, no server)."""

from __future__ import annotations

import random

import pytest

from rs3gw.analytics.settings import parse_analytics_table
from rs3gw.blobs.access_patterns import BlobStats, Predictor
from rs3gw.blobs.predictive_cache import parse_cache_table


def _stats(times: list[float]) -> BlobStats:
    st = BlobStats()
    for t in times:
        st.touch(t)
    return st


def test_patterns() -> None:
    assert _stats([0, 10, 20, 30, 40, 50]).pattern() == "periodic"
    assert _stats([0, 100, 200, 201, 201.5, 202]).pattern() == "bursty"
    assert _stats([0, 40, 70, 90, 100, 105, 108]).pattern() == "trending"
    assert _stats([0, 1]).pattern() == "new"


def test_adaptive_ttl() -> None:
    periodic = _stats([0, 200, 400, 600, 800])
    assert periodic.ttl(60) == pytest.approx(500, rel=0.05)  # 2.5 periods beats the base TTL
    bursty = _stats([0, 100, 200, 200.1, 200.2, 200.3])
    assert bursty.ttl(300) < 300
    assert _stats([0, 40, 70, 90, 100, 105, 108]).ttl(300) == 600


def test_epoch_replay_is_predicted_and_reshuffle_is_not() -> None:
    keys = [f"b{i}" for i in range(20)]
    p = Predictor()
    t = 0.0
    for k in keys:  # epoch 1
        t += 1
        p.record(k, t)
    assert p.predict("b3", 0.6, 2) == [("b4", 1.0), ("b5", 1.0)]
    rng = random.Random(1)
    q = Predictor()
    for _ in range(3):
        for k in rng.sample(keys, len(keys)):
            t += 1
            q.record(k, t)
    assert all(not q.predict(k, 0.6, 1) for k in keys[:10])


def test_warming_orders() -> None:
    p = Predictor()
    for t, b in enumerate(["a", "a", "a", "b", "c", "c"]):
        p.record(b, float(t))
    assert p.ranked("most-frequent", 10)[0] == "a"
    assert p.ranked("most-recent", 10)[0] == "c"
    assert set(p.ranked("predictive", 10)) == {"a", "c"}  # read at least twice


def test_cache_table_validation() -> None:
    s = parse_cache_table({"enabled": True, "max_bytes": 1024, "policy": "lru", "prefetch_confidence": 1})
    assert s.enabled and s.max_bytes == 1024 and s.policy == "lru" and s.prefetch_confidence == 1.0
    for bad in ({"policy": "mru"}, {"max_bytes": -1}, {"enabled": "yes"}, {"warming": "x"}, {"nope": 1}):
        with pytest.raises(ValueError):
            parse_cache_table(bad)
    assert parse_cache_table(s.to_json()) == s


def test_analytics_table_validation() -> None:
    s = parse_analytics_table({"window_hours": 1, "price_get_per_1000": 2})
    assert s.window_s == 3600 and s.request_prices()["GET"] == 2.0
    for bad in ({"window_hours": 0}, {"max_keys": 1.5}, {"price_put_per_1000": "1"}, {"x": 1}):
        with pytest.raises(ValueError):
            parse_analytics_table(bad)
    assert parse_analytics_table(s.to_json()) == s
