"""The predictive cache ([cache]) on a real server: correctness under overwrite, delete and Range,
hit-rate series that move, and prefetch on an epoch replay (observed through metrics and the
analytics API's cache document)."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from admin_http import admin_get
from conftest import Server, start_server

N = 12
SIZE = 4096


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("pcache")
    cfg = base / "rs3gw.toml"
    # Room for 6 of the 12 training objects: plain LRU could never hit on a sequential replay.
    cfg.write_text(
        '[cache]\nenabled = true\npolicy = "predictive"\nprefetch = true\n'
        f"max_bytes = {6 * SIZE}\nmax_object_bytes = {2 * SIZE}\nprefetch_depth = 2\n"
    )
    s = start_server(base / "data", "--config", str(cfg))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def s3(srv: Server) -> Any:
    return srv.client()


def _admin(srv: Server, path: str) -> Any:
    status, doc = admin_get(srv, path)
    assert status == 200, doc
    return doc


def _cache_events(srv: Server) -> dict[str, float]:
    with urllib.request.urlopen(f"{srv.endpoint}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name == "rs3gw_cache_events":
            for s in fam.samples:
                if s.name.endswith("_total"):
                    out[s.labels["event"]] = s.value
        if fam.name == "rs3gw_cache_hit_ratio":
            out["ratio"] = fam.samples[0].value
    return out


def test_overwrite_delete_and_range_are_correct(srv: Server, s3: Any) -> None:
    s3.create_bucket(Bucket="pc-correct")
    first, second = os.urandom(SIZE), os.urandom(SIZE)
    s3.put_object(Bucket="pc-correct", Key="k", Body=first)
    before = _admin(srv, "analytics/cache")
    assert s3.get_object(Bucket="pc-correct", Key="k")["Body"].read() == first  # miss, cached
    assert s3.get_object(Bucket="pc-correct", Key="k")["Body"].read() == first  # hit
    after = _admin(srv, "analytics/cache")
    assert after["hits"] >= before["hits"] + 1
    got = s3.get_object(Bucket="pc-correct", Key="k", Range="bytes=100-199")["Body"].read()
    assert got == first[100:200]
    tail = s3.get_object(Bucket="pc-correct", Key="k", Range="bytes=-10")["Body"].read()
    assert tail == first[-10:]
    assert _admin(srv, "analytics/cache")["hits"] >= after["hits"] + 2  # ranges sliced from memory
    s3.put_object(Bucket="pc-correct", Key="k", Body=second)
    assert s3.get_object(Bucket="pc-correct", Key="k")["Body"].read() == second
    third = os.urandom(SIZE)
    s3.put_object(Bucket="pc-correct", Key="r", Body=third)
    h0 = _admin(srv, "analytics/cache")["hits"]
    assert s3.get_object(Bucket="pc-correct", Key="r", Range="bytes=0-99")["Body"].read() == third[:100]
    assert s3.get_object(Bucket="pc-correct", Key="r")["Body"].read() == third  # the range read cached it all
    assert _admin(srv, "analytics/cache")["hits"] == h0 + 1
    s3.delete_object(Bucket="pc-correct", Key="k")
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket="pc-correct", Key="k")
    assert e.value.response["Error"]["Code"] == "NoSuchKey"


def test_epoch_replay_prefetches(srv: Server, s3: Any) -> None:
    s3.create_bucket(Bucket="pc-epochs")
    bodies = {f"train/{i:04d}": os.urandom(SIZE) for i in range(N)}
    for k, v in bodies.items():
        s3.put_object(Bucket="pc-epochs", Key=k, Body=v)
    start = _cache_events(srv)
    for k in bodies:  # epoch 1: learns the order, nothing predicted yet
        assert s3.get_object(Bucket="pc-epochs", Key=k)["Body"].read() == bodies[k]
    mid = _cache_events(srv)
    for k in bodies:  # epoch 2: each read prefetches what follows
        assert s3.get_object(Bucket="pc-epochs", Key=k)["Body"].read() == bodies[k]
    end = _cache_events(srv)
    epoch2_hits = end.get("hits", 0) - mid.get("hits", 0)
    assert end.get("prefetch_issued", 0) - mid.get("prefetch_issued", 0) >= N // 2
    assert end.get("prefetch_used", 0) - start.get("prefetch_used", 0) >= N // 2
    assert epoch2_hits >= N // 2, (start, mid, end)  # LRU with room for half the set: 0 hits
    assert 0 < end["ratio"] <= 1
    doc = _admin(srv, "analytics/cache")
    assert doc["policy"] == "predictive" and doc["bytes"] <= 6 * SIZE
    assert doc["prefetch_used"] >= N // 2


def test_large_objects_pass_through(srv: Server, s3: Any) -> None:
    s3.create_bucket(Bucket="pc-large")
    body = os.urandom(4 * SIZE)  # above max_object_bytes
    s3.put_object(Bucket="pc-large", Key="big", Body=body)
    before = _admin(srv, "analytics/cache")
    for _ in range(2):
        assert s3.get_object(Bucket="pc-large", Key="big")["Body"].read() == body
    after = _admin(srv, "analytics/cache")
    assert after["hits"] == before["hits"]  # never cached: both reads missed
    assert after["misses"] == before["misses"] + 2


def test_bad_cache_config_is_refused(tmp_path: Any) -> None:
    import subprocess
    import sys

    cfg = tmp_path / "bad.toml"
    cfg.write_text('[cache]\npolicy = "mru"\n')
    r = subprocess.run(
        [sys.executable, "-m", "rs3gw", "serve", "--data-dir", str(tmp_path / "d"), "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode != 0
    assert "cache.policy" in r.stderr


@pytest.mark.local_backend_only("flips bytes of a blob file on disk")
def test_scrubber_reads_disk_not_the_cache(tmp_path: Any) -> None:
    """A cached object whose stored bytes rot is still found by the background scrubber, and the
    scrubber's sweep neither hits nor fills the cache."""
    import time

    from meta_access import latest_segments

    cfg = tmp_path / "c.toml"
    cfg.write_text("[cache]\nenabled = true\n")
    srv = start_server(tmp_path / "data", "--config", str(cfg), "--scrub-interval", "1", "--scrub-rate", "0")
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="pc-scrub")
        body = os.urandom(50_000)
        s3.put_object(Bucket="pc-scrub", Key="rot", Body=body)
        for _ in range(2):
            assert s3.get_object(Bucket="pc-scrub", Key="rot")["Body"].read() == body
        looked = _admin(srv, "analytics/cache")
        assert looked["hits"] == 1 and looked["misses"] == 1
        blob = latest_segments(srv.data_dir, "pc-scrub", "rot")[0]  # SQLite or PostgreSQL metadata
        path = srv.data_dir / "blobs" / blob[:2] / blob
        raw = bytearray(path.read_bytes())
        raw[4242] ^= 0x55
        path.write_bytes(bytes(raw))
        deadline = time.time() + 30
        while True:
            with urllib.request.urlopen(f"{srv.endpoint}/metrics", timeout=10) as resp:
                if "rs3gw_scrub_corrupt_found_total 1.0" in resp.read().decode():
                    break
            assert time.time() < deadline, "the scrubber never found the flipped byte of a cached object"
            time.sleep(0.2)
        after = _admin(srv, "analytics/cache")
        assert (after["hits"], after["misses"]) == (1, 1)  # the scrub bypassed the cache
    finally:
        srv.stop()


@pytest.mark.parametrize("strategy", ["most-frequent", "predictive"])
def test_warming_after_restart(tmp_path: Any, strategy: str) -> None:
    """Read statistics saved at shutdown warm the next run's cache: its first GET is a hit."""
    import time

    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[cache]\nenabled = true\nwarming = "{strategy}"\n')
    body = os.urandom(20_000)
    srv = start_server(tmp_path / "data", "--config", str(cfg))
    try:
        s3 = srv.client()
        s3.create_bucket(Bucket="pc-warm")
        s3.put_object(Bucket="pc-warm", Key="hot", Body=body)
        for _ in range(3):
            s3.get_object(Bucket="pc-warm", Key="hot")["Body"].read()
    finally:
        srv.stop()
    assert (tmp_path / "data" / ".rs3gw" / "predictive_cache.json").exists()
    again = start_server(tmp_path / "data", "--config", str(cfg))
    try:
        deadline = time.time() + 10
        while _admin(again, "analytics/cache")["warmed"] < 1:
            assert time.time() < deadline, "nothing was warmed"
            time.sleep(0.1)
        assert again.client().get_object(Bucket="pc-warm", Key="hot")["Body"].read() == body
        doc = _admin(again, "analytics/cache")
        assert (doc["hits"], doc["misses"]) == (1, 0)
    finally:
        again.stop()


@pytest.mark.slow
def test_bench_script_smoke() -> None:
    """scripts/bench_cache.py end to end on a tiny set: predictive beats LRU on the sequential trace."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "bench_cache.py"
    r = subprocess.run(
        [sys.executable, str(script), "--objects", "8", "--size-kib", "4", "--epochs", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): line for line in r.stdout.splitlines()}
    assert "| 0.0% (0%) |" in rows[("sequential", "lru")]
    assert "| 87.5%" in rows[("sequential", "predictive")] or "| 100.0%" in rows[("sequential", "predictive")]
