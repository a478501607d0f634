"""The first GETs after a PUT, with ``[storage.zerocopy] direct_io`` off vs on.

O_DIRECT writes skip the page cache, so the first read of a fresh blob comes from the disk; this
measures what that costs. Per round and setting: a fresh server (fsync on, everything else
default), PUT N objects of SIZE with boto3, then GET each one twice (first pass: right after the
PUT; second pass: warm), reporting MiB/s per pass. Settings alternate, order flipping each round.

    .venv/bin/python scripts/bench_cold_get.py [--size-mib 64] [--objects 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

import boto3
from botocore.config import Config

AK, SK = "benchaccesskey", "bench-secret-key-0123456789"


def serve(data: str, direct: bool) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [sys.executable, "-m", "rs3gw", "serve", "--data-dir", data, "--address", f"127.0.0.1:{port}"]
    args += ["--access-key", AK, "--secret-key", SK, "--log-level", "warning"]
    env = {**os.environ, "RS3GW_ZEROCOPY_DIRECT_IO": "true" if direct else "false"}
    proc = subprocess.Popen(args, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(url + "/ready", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=64)
    ap.add_argument("--objects", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    body = os.urandom(a.size_mib << 20)
    res: dict[tuple[bool, str], list[float]] = {}
    for rnd in range(a.rounds):
        for direct in (False, True) if rnd % 2 == 0 else (True, False):
            with tempfile.TemporaryDirectory() as tmp:
                proc, url = serve(tmp + "/data", direct)
                try:
                    s3: Any = boto3.client(
                        "s3",
                        endpoint_url=url,
                        aws_access_key_id=AK,
                        aws_secret_access_key=SK,
                        region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}),
                    )
                    s3.create_bucket(Bucket="bench")
                    keys = [f"k{i}" for i in range(a.objects)]
                    for k in keys:
                        s3.put_object(Bucket="bench", Key=k, Body=body)
                    for phase in ("first", "second"):
                        t0 = time.perf_counter()
                        for k in keys:
                            got = s3.get_object(Bucket="bench", Key=k)["Body"].read()
                            assert got == body
                        mib_s = a.objects * a.size_mib / (time.perf_counter() - t0)
                        res.setdefault((direct, phase), []).append(mib_s)
                        print(f"round {rnd} direct_io={direct} {phase} GET: {mib_s:.0f} MiB/s", flush=True)
                finally:
                    proc.terminate()
                    proc.wait()
    for (direct, phase), v in sorted(res.items()):
        runs = " / ".join(f"{x:.0f}" for x in v)
        print(f"direct_io={direct} {phase} GET MiB/s: {runs} (median {statistics.median(v):.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
