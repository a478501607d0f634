"""Time listings over 1,000,000 keys in a SqliteStore (store level, then over HTTP with boto3).

Usage: .venv/bin/python scripts/bench_listing.py [DATA_DIR] [--keys N] [--http]
Keys are "dNNNN/fNNNNNN" (1,000 directories) plus 1,000 top-level "topNNNN" keys; rows are
inserted with one executemany (a benchmark fixture, not the write path).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rs3gw.meta.sqlite import SqliteStore
from rs3gw.meta.store import ListQuery
from rs3gw.model import Bucket, Owner

BUCKET = "bench"
OWNER = Owner.for_account("admin").id


def keys(n: int) -> list[str]:
    per_dir = max(1, (n - 1000) // 1000)
    out = [f"d{d:04d}/f{i:06d}" for d in range(1000) for i in range(per_dir)]
    return out + [f"top{i:04d}" for i in range(1000)]


async def fill(store: SqliteStore, n: int) -> int:
    await store.create_bucket(Bucket(BUCKET, OWNER, time.time(), "us-east-1"))
    meta = json.dumps({"ct": "binary/octet-stream", "h": {}, "u": {}, "c": {}, "ctype": "", "sc": "STANDARD"})
    ks = keys(n)
    rows = [
        (
            BUCKET,
            k.encode(),
            i + 1,
            "null",
            1,
            0,
            1,
            "d41d8cd98f00b204e9800998ecf8427e",
            1.7e9,
            OWNER,
            0,
            meta,
            "[]",
        )
        for i, k in enumerate(ks)
    ]

    def ins(conn: object) -> None:
        conn.executemany("INSERT INTO objects VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)  # type: ignore[attr-defined]

    await store._write(ins)
    return len(ks)


async def timed(store: SqliteStore, q: ListQuery, runs: int = 30) -> tuple[float, float, float, int]:
    """(min wall, median wall, median CPU) in ms: on a shared box the minimum and the CPU time
    show the cost itself, the median what a loaded machine makes of it."""
    walls, cpus = [], []
    res = None
    for _ in range(runs):
        t, c = time.perf_counter(), time.thread_time()
        res = await store.list_objects(BUCKET, q)
        walls.append((time.perf_counter() - t) * 1000)
        cpus.append((time.thread_time() - c) * 1000)
    assert res is not None
    n = len(res.objects) + len(res.common_prefixes)
    return min(walls), statistics.median(walls), statistics.median(cpus), n


CASES = [
    ("no delimiter, first page", ListQuery(max_keys=1000)),
    ("no delimiter, middle (start-after)", ListQuery(start_after="d0500/f000500", max_keys=1000)),
    ("delimiter '/', root (1000 prefixes)", ListQuery(delimiter="/", max_keys=1000)),
    ("delimiter '/', root from d0500/", ListQuery(delimiter="/", start_after="d0500/", max_keys=1000)),
    ("prefix d0500/ + delimiter", ListQuery(prefix="d0500/", delimiter="/", max_keys=1000)),
    ("prefix top + delimiter", ListQuery(prefix="top", delimiter="/", max_keys=1000)),
]


def http(data: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from conftest import (
        ACCESS_KEY,
        SECRET_KEY,
        Server,
        free_port,
        wait_ready,
    )

    port = free_port()
    args = [sys.executable, "-m", "rs3gw", "serve", "--data-dir", str(data), "--address", f"127.0.0.1:{port}"]
    args += ["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, "--admin-name", "admin"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    srv = Server(f"http://127.0.0.1:{port}", data, proc, port, data / "log")
    try:
        wait_ready(srv)
        s3 = srv.client()
        for label, kw in [
            ("v2 first page", {}),
            ("v2 delimiter root", {"Delimiter": "/"}),
            ("v2 prefix d0500/", {"Prefix": "d0500/", "Delimiter": "/"}),
        ]:
            samples = []
            for _ in range(15):
                t = time.perf_counter()
                s3.list_objects_v2(Bucket=BUCKET, **kw)
                samples.append((time.perf_counter() - t) * 1000)
            print(
                f"  HTTP+boto3 {label:32s} min {min(samples):6.2f}  median {statistics.median(samples):6.2f} ms"
            )
    finally:
        srv.stop()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", nargs="?")
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--http", action="store_true")
    a = ap.parse_args()
    data = Path(a.data_dir or tempfile.mkdtemp(prefix="rs3gw-bench-"))
    store = SqliteStore(data / "meta.db", fsync=False)
    await store.open()
    if await store.get_bucket(BUCKET) is None:
        t = time.perf_counter()
        n = await fill(store, a.keys)
        print(f"inserted {n} keys in {time.perf_counter() - t:.1f} s ({data})")
    for label, q in CASES:
        best, med, cpu, count = await timed(store, q)
        print(
            f"  store {label:38s} {count:5d} entries  min {best:6.2f}  median {med:6.2f}  cpu {cpu:6.2f} ms"
        )
    await store.close()
    if a.http:
        http(data)


if __name__ == "__main__":
    asyncio.run(main())
