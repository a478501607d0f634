#!/usr/bin/env python3
"""PUT/GET of 1 MiB objects with SSE-S3 on vs off, same server, same run, interleaved rounds.

Usage: .venv/bin/python scripts/bench_sse.py [--count N] [--size BYTES] [--no-fsync] [--cipher C] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
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

AK, SK = "benchaccesskey", "bench-secret-key-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100, help="objects per mode and op (default 100)")
    ap.add_argument("--size", type=int, default=1 << 20, help="object size in bytes (default 1 MiB)")
    ap.add_argument("--no-fsync", action="store_true")
    ap.add_argument("--cipher", default="aes-256-gcm")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="rs3gw-bench-sse-"))
    port = free_port()
    cmd = [sys.executable, "-m", "rs3gw", "serve", "--data-dir", str(tmp / "data"), "--address",
           f"127.0.0.1:{port}", "--access-key", AK, "--secret-key", SK, "--log-level", "warning",
           "--encryption-cipher", args.cipher]  # fmt: skip
    if args.no_fsync:
        cmd.append("--no-fsync")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/health", timeout=1)
                break
            except Exception:
                time.sleep(0.05)
        s3 = boto3.client(
            "s3", endpoint_url=url, aws_access_key_id=AK, aws_secret_access_key=SK, region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
        )  # fmt: skip
        s3.create_bucket(Bucket="bench")
        data = os.urandom(args.size)
        modes: dict[str, dict[str, Any]] = {"off": {}, "sse-s3": {"ServerSideEncryption": "AES256"}}
        times: dict[tuple[str, str], list[float]] = {(m, op): [] for m in modes for op in ("put", "get")}
        for i in range(args.count):  # interleaved, so drift hits both modes alike
            for mode, kw in modes.items():
                t = time.perf_counter()
                s3.put_object(Bucket="bench", Key=f"{mode}/{i}", Body=data, **kw)
                times[(mode, "put")].append(time.perf_counter() - t)
        for i in range(args.count):
            for mode in modes:
                t = time.perf_counter()
                body = s3.get_object(Bucket="bench", Key=f"{mode}/{i}")["Body"].read()
                times[(mode, "get")].append(time.perf_counter() - t)
                assert body == data
        out = {
            f"{op} {mode}": {
                "median_ms": round(statistics.median(v) * 1000, 2),
                "p90_ms": round(sorted(v)[int(len(v) * 0.9)] * 1000, 2),
                "mib_s": round(args.size / (1 << 20) / statistics.median(v), 1),
            }
            for (mode, op), v in times.items()
        }
        if args.json:
            print(json.dumps({"size": args.size, "count": args.count, "cipher": args.cipher, "results": out}))
        else:
            print(
                f"{args.size} B x {args.count}, cipher {args.cipher}, fsync {'off' if args.no_fsync else 'on'}"
            )
            for name, r in out.items():
                print(
                    f"  {name:<11} median {r['median_ms']:8.2f} ms  p90 {r['p90_ms']:8.2f} ms  {r['mib_s']:7.1f} MiB/s"
                )
        return 0
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())
