"""Data-path benchmark: PUT/GET MiB/s for 1 MiB and 64 MiB objects with compression off/zstd/lz4.

Starts one `rs3gw serve` per setting on loopback (fresh data dir, --no-fsync unless --fsync), in
the same run, with the same boto3 client, and prints a Markdown table plus stored/logical bytes.

    .venv/bin/python scripts/bench_datapath.py [--data text|random] [--seconds N] [--fsync] [--dedup-grid]

--dedup-grid: every compression setting crossed with dedup off / fixed-size / content-defined
(64 KiB blocks, min object size 0), one server per cell, in the same run.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

AK, SK = "benchkey", "bench-secret-123456"
SETTINGS = {"off": "none", "zstd": "zstd:3", "lz4": "lz4"}
SIZES = {"1 MiB": 1 << 20, "64 MiB": 64 << 20}
DEDUP = {"off": (), "fixed": ("fixed-size",), "cdc": ("content-defined",)}


def dedup_args(mode: str) -> list[str]:
    if not DEDUP[mode]:
        return []
    return ["--dedup", "--dedup-min-size", "0", "--dedup-algorithm", DEDUP[mode][0]]


def corpus(size: int) -> bytes:
    line = b"2026-11-25T10:00:00Z INFO request id=%d path=/datasets/shard-%d/part-%d.bin status=200\n"
    out = bytearray()
    i = 0
    while len(out) < size:
        out += line % (i * 2654435761 % 99991, i % 113, i % 17)
        i += 1
    return bytes(out[:size])


def start(
    data_dir: Path, compression: str, fsync: bool, extra: list[str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [
        sys.executable,
        "-m",
        "rs3gw",
        "serve",
        "--data-dir",
        str(data_dir),
        "--address",
        f"127.0.0.1:{port}",
    ]
    args += ["--access-key", AK, "--secret-key", SK, "--compression", compression, "--log-level", "warning"]
    proc = subprocess.Popen([*args, *(extra or []), *([] if fsync else ["--no-fsync"])])
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            with urllib.request.urlopen(f"{url}/ready", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def stored(data_dir: Path) -> int:
    return sum(p.stat().st_size for p in (data_dir / "blobs").rglob("*") if p.is_file())


def run_one(url: str, body: bytes, seconds: float, clients: int) -> tuple[float, float]:
    s3: Any = boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=AK,
        aws_secret_access_key=SK,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=clients),
    )
    s3.create_bucket(Bucket="bench")
    keys = [f"k{i}" for i in range(clients)]

    def timed(fn: Any) -> float:
        done = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds or done == 0:
            with ThreadPoolExecutor(clients) as ex:
                list(ex.map(fn, keys))
            done += len(keys)
        return done * len(body) / (1 << 20) / (time.perf_counter() - t0)

    put = timed(lambda k: s3.put_object(Bucket="bench", Key=k, Body=body))
    get = timed(lambda k: s3.get_object(Bucket="bench", Key=k)["Body"].read())
    return put, get


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", choices=["text", "random"], default="text")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--fsync", action="store_true")
    ap.add_argument("--dedup-grid", action="store_true", help="cross compression with dedup off/fixed/cdc")
    a = ap.parse_args()
    rows = []
    modes = list(DEDUP) if a.dedup_grid else ["off"]
    for size_name, size in SIZES.items():
        body = corpus(size) if a.data == "text" else os.urandom(size)
        clients = 8 if size <= (1 << 20) else 2
        for name, comp, mode in [(n, c, m) for n, c in SETTINGS.items() for m in modes]:
            with tempfile.TemporaryDirectory() as tmp:
                d = Path(tmp) / "data"
                proc, url = start(d, comp, a.fsync, dedup_args(mode))
                try:
                    put, get = run_one(url, body, a.seconds, clients)
                    ratio = stored(d) / (clients * size)
                finally:
                    proc.terminate()
                    proc.wait()
            rows.append((size_name, name, mode, put, get, ratio))
            print(
                f"{size_name:>6} {name:>4} dedup {mode:>5}: PUT {put:7.1f} MiB/s  GET {get:7.1f} MiB/s  "
                f"stored {ratio:.2f}x",
                flush=True,
            )
    print(
        f"\n| object | compression | dedup | PUT MiB/s | GET MiB/s | stored/logical ({a.data}) |"
        "\n|---|---|---|---|---|---|"
    )
    for size_name, name, mode, put, get, ratio in rows:
        print(f"| {size_name} | {name} | {mode} | {put:.0f} | {get:.0f} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
