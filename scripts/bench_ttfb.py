#!/usr/bin/env python3
"""Time to first byte of a large GET: rs3gw plain and with compression, SeaweedFS alongside.

A small blocking client sends one signed GET (SigV4 header auth, UNSIGNED-PAYLOAD, s3bench's
signer) on a fresh keep-alive-less connection and times from the moment the request is written to
the moment the first byte of the *body* arrives (status line and headers alone do not count); it
then drops the connection (RST, so the server stops sending). The connect is not timed. The
figure is the median of ``--samples`` tries, the servers taking turns. A 4 KiB GET is timed the
same way as the per-request floor, so what a large object adds is the difference.

The object is written by this client too, streamed in 1 MiB chunks: half random, half a repeated
text line, so zstd really compresses it (random data would be stored plain by the compression
layer and the compressed read path would not be exercised).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import struct
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchkit

KEY_BIG = "ttfb/big.bin"
KEY_SMALL = "ttfb/small.bin"


def _chunk() -> bytes:
    """1 MiB: 512 KiB random, 512 KiB text (compresses to about half)."""
    rnd = os.urandom(512 * 1024)
    line = b"rs3gw time-to-first-byte benchmark line, compressible on purpose 0123456789\n"
    text = (line * (512 * 1024 // len(line) + 1))[: 512 * 1024]
    return rnd + text


class Client:
    """Blocking HTTP/1.1 client that signs with s3bench's SigV4Signer."""

    def __init__(self, endpoint: str, signer: Any) -> None:
        host, port = endpoint.removeprefix("http://").split(":")
        self.addr = (host, int(port))
        self.host = f"{host}:{port}"
        self.signer = signer

    def _connect(self) -> socket.socket:
        s = socket.create_connection(self.addr, timeout=120)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def _head(self, method: str, path: str, extra: dict[str, str]) -> bytes:
        h = self.signer.sign(method, self.host, path)
        h.update(extra)
        lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in h.items()), "", ""]
        return "\r\n".join(lines).encode()

    @staticmethod
    def _read_response(s: socket.socket) -> tuple[int, bytes]:
        buf = b""
        while b"\r\n\r\n" not in buf:
            got = s.recv(65536)
            if not got:
                raise ConnectionError(f"closed before headers: {buf[:200]!r}")
            buf += got
        head, _, rest = buf.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), rest

    def request(self, method: str, path: str, body_chunks: list[bytes] | None = None, size: int = 0) -> int:
        with self._connect() as s:
            extra = {"Content-Length": str(size), "Connection": "close"}
            s.sendall(self._head(method, path, extra))
            for c in body_chunks or []:
                s.sendall(c)
            status, _ = self._read_response(s)
            while s.recv(1 << 20):
                pass
            return status

    def put_big(self, path: str, size: int) -> None:
        chunk = _chunk()
        n, rem = divmod(size, len(chunk))
        with self._connect() as s:
            s.sendall(self._head("PUT", path, {"Content-Length": str(size), "Connection": "close"}))
            for _ in range(n):
                s.sendall(chunk)
            s.sendall(chunk[:rem])
            status, rest = self._read_response(s)
            if status != 200:
                raise SystemExit(f"PUT {path}: HTTP {status} {rest[:300]!r}")

    def ttfb(self, path: str) -> float:
        """Seconds from the request's last byte written to the first body byte read."""
        s = self._connect()
        try:
            req = self._head("GET", path, {"Connection": "close"})
            t0 = time.perf_counter()
            s.sendall(req)
            buf = b""
            while True:
                got = s.recv(65536)
                if not got:
                    raise ConnectionError(f"closed before the body: {buf[:200]!r}")
                buf += got
                end = buf.find(b"\r\n\r\n")
                if end >= 0 and len(buf) > end + 4:
                    t1 = time.perf_counter()
                    break
            status = int(buf.split(b" ", 2)[1])
            if status != 200:
                raise SystemExit(f"GET {path}: HTTP {status} {buf[:300]!r}")
            return t1 - t0
        finally:
            # RST instead of FIN: the server stops at once instead of pushing the rest of 1 GiB
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()


def summary(xs: list[float]) -> dict[str, float]:
    ms = sorted(x * 1000 for x in xs)
    return {
        "median_ms": round(statistics.median(ms), 3),
        "min_ms": round(ms[0], 3),
        "p90_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.9))], 3),
        "max_ms": round(ms[-1], 3),
        "n": len(ms),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1GiB", help="large object size (default: %(default)s)")
    ap.add_argument("--samples", type=int, default=25, help="timed GETs per server and object (25)")
    ap.add_argument("--quick", action="store_true", help="64 MiB object, 7 samples")
    ap.add_argument(
        "--only",
        default="rs3gw,rs3gw-zstd,seaweedfs",
        help="comma list from rs3gw, rs3gw-zstd, rs3gw-lz4, seaweedfs (default: %(default)s)",
    )
    ap.add_argument("--s3bench", type=Path, default=benchkit.DEFAULT_S3BENCH)
    ap.add_argument("--rs3gw-arg", action="append", default=[], help="extra `rs3gw serve` flag (= form)")
    ap.add_argument("--json", type=Path, help="write the result document here")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    size = benchkit.parse_size("64MiB" if args.quick else args.size)
    samples = 7 if args.quick else args.samples
    known = {
        "rs3gw": benchkit.Variant("rs3gw", "rs3gw", "rs3gw", list(args.rs3gw_arg)),
        "rs3gw-zstd": benchkit.Variant(
            "rs3gw-zstd", "rs3gw", "rs3gw --compression zstd", ["--compression", "zstd", *args.rs3gw_arg]
        ),
        "rs3gw-lz4": benchkit.Variant(
            "rs3gw-lz4", "rs3gw", "rs3gw --compression lz4", ["--compression", "lz4", *args.rs3gw_arg]
        ),
        "seaweedfs": benchkit.Variant("seaweedfs", "seaweedfs", "SeaweedFS"),
    }
    variants = [known[n] for n in benchkit.csv(args.only)]
    need = size * len(variants) * 2
    if benchkit.disk_free() < need:
        raise SystemExit(f"need {need >> 30} GiB free under /tmp, have {benchkit.disk_free() >> 30}")
    s3b = benchkit.bench.load_s3bench(args.s3bench)
    started = time.time()
    load0 = benchkit.loadavg()
    times: dict[tuple[str, str], list[float]] = {}
    with benchkit.running(variants, args.s3bench, args.keep):
        clients = {
            v.name: Client(v.endpoint, s3b.SigV4Signer(benchkit.ACCESS_KEY, benchkit.SECRET_KEY, "us-east-1"))
            for v in variants
        }
        for v in variants:
            c = clients[v.name]
            c.request("PUT", f"/{benchkit.BUCKET}")
            t = time.monotonic()
            c.put_big(f"/{benchkit.BUCKET}/{KEY_BIG}", size)
            c.put_big(f"/{benchkit.BUCKET}/{KEY_SMALL}", 4096)
            benchkit.log(f"{v.label}: PUT {benchkit.fmt_size(size)} in {time.monotonic() - t:.1f}s")
        for i in range(samples):
            k = i % len(variants)
            for v in variants[k:] + variants[:k]:
                for key in (KEY_BIG, KEY_SMALL):
                    dt = clients[v.name].ttfb(f"/{benchkit.BUCKET}/{key}")
                    times.setdefault((v.name, key), []).append(dt)
                    time.sleep(0.02)
    rows: list[dict[str, Any]] = []
    for v in variants:
        rows.append(
            {
                "server": v.name,
                "label": v.label,
                "big": summary(times[(v.name, KEY_BIG)]),
                "small": summary(times[(v.name, KEY_SMALL)]),
            }
        )
    doc = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "loadavg_at_start": load0,
        "loadavg_at_end": benchkit.loadavg(),
        "git": benchkit.git_rev(),
        "size": size,
        "samples": samples,
        "results": rows,
    }
    print(
        f"| server | TTFB {benchkit.fmt_size(size)} GET median ms | min | p90 | TTFB 4 KiB GET median ms | big - small |"
    )
    print("|---|--:|--:|--:|--:|--:|")
    for r in rows:
        b, sm = r["big"], r["small"]
        print(
            f"| {r['label']} | {b['median_ms']:.2f} | {b['min_ms']:.2f} | {b['p90_ms']:.2f} "
            f"| {sm['median_ms']:.2f} | {b['median_ms'] - sm['median_ms']:+.2f} |"
        )
    print(
        f"\n{samples} samples each, {doc['elapsed_s']:.0f} s, load {load0} -> {doc['loadavg_at_end']}, git {doc['git']}"
    )
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
