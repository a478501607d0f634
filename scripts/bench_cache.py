"""Predictive-cache benchmark: epoch-wise reads of a training set, cache policy predictive vs lru vs off.

Starts one `rs3gw serve` per policy on loopback (fresh data dir, --no-fsync, zstd compression so a
miss pays the real read path), uploads N objects, and replays a trace of E epochs with the cache
sized to hold only a fraction of the set. Traces:

- ``sequential``: keys in the same order every epoch (a loader without shuffling);
- ``replayed-shuffle``: one shuffled order, replayed every epoch (a fixed-seed shuffle);
- ``reshuffled``: a new random order every epoch (nothing to predict; the honest control).

Hit rate (from the ``rs3gw_cache_events`` counters) and GET latency p50/p99 are measured over
epochs 2..E (epoch 1 only teaches the predictor); one client reads one object at a time, as a data
loader worker does; epochs run round-robin across the three servers, so load spikes on a
shared box hit every policy alike. Prints a Markdown table.

    .venv/bin/python scripts/bench_cache.py [--objects 200] [--size-kib 128] [--epochs 4]
        [--cache-fraction 0.5]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from prometheus_client.parser import text_string_to_metric_families

AK, SK = "benchkey", "bench-secret-123456"
POLICIES = ("off", "lru", "predictive")
TRACES = ("sequential", "replayed-shuffle", "reshuffled")


def start(data_dir: Path, config: Path, extra: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [sys.executable, "-m", "rs3gw", "serve", "--data-dir", str(data_dir), "--config", str(config)]
    args += ["--address", f"127.0.0.1:{port}", "--access-key", AK, "--secret-key", SK]
    args += ["--compression", "zstd:3", "--log-level", "warning", "--no-fsync", *extra]
    proc = subprocess.Popen(args)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def cache_counts(url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        if fam.name == "rs3gw_cache_events":
            for s in fam.samples:
                if s.name.endswith("_total"):
                    out[s.labels["event"]] = s.value
    return out


def body(i: int, size: int) -> bytes:
    """Compressible but distinct per object (dataset records, roughly 3:1 with zstd)."""
    rng = random.Random(i)
    words = [b"label", b"pixel", b"token", b"%d" % i, b"frame", b"shard"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" " + os.urandom(2).hex().encode() + b"\n"
    return bytes(out[:size])


def orders(trace: str, keys: list[str], epochs: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    if trace == "sequential":
        return [list(keys) for _ in range(epochs)]
    if trace == "replayed-shuffle":
        fixed = rng.sample(keys, len(keys))
        return [list(fixed) for _ in range(epochs)]
    return [rng.sample(keys, len(keys)) for _ in range(epochs)]


def run_trace(
    servers: dict[str, tuple[subprocess.Popen[bytes], str, Any]], bucket: str, epochs: list[list[str]]
) -> dict[str, tuple[float | None, float, list[float]]]:
    """Epoch by epoch, every policy in turn, so load spikes of a shared box hit all of them alike."""
    lat: dict[str, list[float]] = {p: [] for p in servers}
    before: dict[str, dict[str, float]] = {}
    for n, order in enumerate(epochs):
        for policy, (_proc, url, s3) in servers.items():
            if n == 1:
                before[policy] = cache_counts(url)
            for k in order:
                t0 = time.perf_counter()
                s3.get_object(Bucket=bucket, Key=k)["Body"].read()
                if n >= 1:
                    lat[policy].append(time.perf_counter() - t0)
    out: dict[str, tuple[float | None, float, list[float]]] = {}
    for policy, (_proc, url, _s3) in servers.items():
        after, b = cache_counts(url), before.get(policy, {})
        hits = after.get("hits", 0) - b.get("hits", 0)
        looked = hits + after.get("misses", 0) - b.get("misses", 0)
        waited = after.get("prefetch_waited", 0) - b.get("prefetch_waited", 0)
        out[policy] = ((hits / looked if looked else None), (waited / looked if looked else 0.0), lat[policy])
    return out


def pct(xs: list[float], q: int) -> float:
    return statistics.quantiles(xs, n=100)[q - 1] * 1000 if len(xs) > 1 else 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=200)
    ap.add_argument("--size-kib", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--cache-fraction", type=float, default=0.5, help="cache size / training-set size")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--prefetch-depth", type=int, default=2, help="[cache] prefetch_depth of the predictive one"
    )
    ap.add_argument(
        "--upstream",
        action="store_true",
        help="gateways store their blobs in another rs3gw over S3 (backend=s3): a backend with latency",
    )
    a = ap.parse_args()
    size = a.size_kib << 10
    cache_bytes = int(a.objects * size * a.cache_fraction)
    keys = [f"train/{i:05d}.rec" for i in range(a.objects)]
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rs3gw-bench-cache-") as tmp:
        servers: dict[str, tuple[subprocess.Popen[bytes], str, Any]] = {}
        upstream: subprocess.Popen[bytes] | None = None
        try:
            extra: dict[str, list[str]] = {p: [] for p in POLICIES}
            if a.upstream:
                (Path(tmp) / "up.toml").write_text("")
                upstream, up_url = start(Path(tmp) / "upstream", Path(tmp) / "up.toml", [])
                boto3.client(
                    "s3", endpoint_url=up_url, aws_access_key_id=AK, aws_secret_access_key=SK,
                    region_name="us-east-1",
                ).create_bucket(Bucket="upstream-data")  # fmt: skip
                for p in POLICIES:
                    extra[p] = ["--backend", "s3", "--backend-endpoint", up_url, "--backend-bucket"]
                    extra[p] += ["upstream-data", "--backend-prefix", p, "--backend-access-key", AK]
                    extra[p] += ["--backend-secret-key", SK]
            for policy in POLICIES:
                cfg = Path(tmp) / f"{policy}.toml"
                table = "" if policy == "off" else f'[cache]\nenabled = true\npolicy = "{policy}"\n'
                table += f"max_bytes = {cache_bytes}\nmax_object_bytes = {size * 2}\n" if table else ""
                table += f"prefetch_depth = {a.prefetch_depth}\n" if policy == "predictive" else ""
                cfg.write_text(table)
                proc, url = start(Path(tmp) / policy, cfg, extra[policy])
                s3 = boto3.client(
                    "s3",
                    endpoint_url=url,
                    aws_access_key_id=AK,
                    aws_secret_access_key=SK,
                    region_name="us-east-1",
                    config=Config(s3={"addressing_style": "path"}),
                )
                servers[policy] = (proc, url, s3)
                for trace in TRACES:
                    s3.create_bucket(Bucket=trace)
                    for i, k in enumerate(keys):
                        s3.put_object(Bucket=trace, Key=k, Body=body(i, size))
            for trace in TRACES:
                results = run_trace(servers, trace, orders(trace, keys, a.epochs, a.seed))
                for policy, (hit, waited, lat) in results.items():
                    rate = "n/a" if policy == "off" or hit is None else f"{hit:.1%} ({waited:.0%})"
                    rows.append(
                        f"| {trace} | {policy} | {rate} | {pct(lat, 50):.2f} | {pct(lat, 99):.2f} "
                        f"| {statistics.fmean(lat) * 1000:.2f} |"
                    )
                    print(rows[-1], flush=True)
        finally:
            for proc, _url, _s3 in servers.values():
                proc.terminate()
                proc.wait(15)
            if upstream is not None:
                upstream.terminate()
                upstream.wait(15)
    print(
        f"\n{a.objects} objects x {a.size_kib} KiB, cache {cache_bytes >> 20} MiB "
        f"({a.cache_fraction:.0%} of the set), {a.epochs} epochs (stats over epochs 2..{a.epochs})"
        f"{', backend: s3 upstream (another rs3gw)' if a.upstream else ', backend: local'}\n"
    )
    print(
        "| trace | policy | hit rate (of which waited on a prefetch) | GET p50 ms | GET p99 ms | GET mean ms |"
    )
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
