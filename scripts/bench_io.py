"""I/O switches on vs off, same run, interleaved: the predictive cache ([storage.cache]),
sendfile ([storage.zerocopy] enabled), mmap reads and O_DIRECT writes.

    .venv/bin/python scripts/bench_io.py [--seconds 2] [--rounds 3] [--no-fsync] [--only cache,mmap,...]

Per switch, two servers (off and on) share one fresh data dir and run side by side; the load
generator (../shared/bench/s3bench.py, or $S3BENCH) alternates between them, and the order flips
every round, so a burst of load from elsewhere on a busy box hits both about equally. A cell's
figure is the median over rounds; its "on/off" is the median of the per-round ratios (of ops/s).
64 MiB cells run 3x --seconds.

    switch     cells                                   the two servers
    cache      4 KiB GET c=16 (256 objects)            [storage.cache] enabled = false | true
    zerocopy   1 MiB GET c=8, 64 MiB GET c=2          [storage.zerocopy] enabled = false | true
    mmap       1 MiB GET c=8, 64 MiB GET c=2          mmap = false | true, both with sendfile off
    direct_io  1 MiB PUT c=8, 64 MiB PUT c=2          direct_io = false | true (threshold 1 MiB)
    (PUT cells fsync as the server does by default; --no-fsync measures without)

Everything else is at its default. Prints one line per measurement and a Markdown table; --json
adds every measurement as JSON on stdout's last line.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(os.environ.get("S3BENCH", ROOT.parent / "shared" / "bench" / "s3bench.py"))
AK, SK = "benchaccesskey", "bench-secret-key-0123456789"


@dataclass(frozen=True)
class Cell:
    switch: str
    op: str
    size: str
    conc: int
    objects: int


CELLS = [
    Cell("cache", "get", "4KiB", 16, 256),
    Cell("zerocopy", "get", "1MiB", 8, 32),
    Cell("zerocopy", "get", "64MiB", 2, 4),
    Cell("mmap", "get", "1MiB", 8, 32),
    Cell("mmap", "get", "64MiB", 2, 4),
    Cell("direct_io", "put", "1MiB", 8, 32),
    Cell("direct_io", "put", "64MiB", 2, 4),
]


def env_for(switch: str, on: bool) -> dict[str, str]:
    """The RS3GW_* overrides that set one switch (the others stay at their defaults)."""
    word = "true" if on else "false"
    if switch == "cache":
        return {"RS3GW_CACHE_ENABLED": word}  # laid over the [storage.cache] file below
    if switch == "zerocopy":
        return {"RS3GW_ZEROCOPY_ENABLED": word}
    if switch == "mmap":  # sendfile would serve every span these GETs ask for
        return {"RS3GW_ZEROCOPY_ENABLED": "false", "RS3GW_ZEROCOPY_MMAP": word}
    return {"RS3GW_ZEROCOPY_DIRECT_IO": word, "RS3GW_ZEROCOPY_DIRECT_IO_THRESHOLD": str(1 << 20)}


class Server:
    def __init__(self, data: Path, env: dict[str, str], fsync: bool) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        cfg = data.parent / "seed.toml"
        cfg.write_text(
            "[storage.cache]\nenabled = false\nmax_size_mb = 256\nmax_objects = 10000\nttl_seconds = 300\n"
        )
        args = [sys.executable, "-m", "rs3gw", "serve", "--data-dir", str(data), "--config", str(cfg)]
        args += ["--address", f"127.0.0.1:{self.port}", "--access-key", AK, "--secret-key", SK]
        args += ["--log-level", "warning", *([] if fsync else ["--no-fsync"])]
        self.proc = subprocess.Popen(args, env={**os.environ, **env}, cwd=ROOT)
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{self.url}/ready", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def s3bench(srv: Server, cell: Cell, seconds: float, prepare: bool) -> dict[str, Any]:
    args = [sys.executable, str(BENCH), "--endpoint", srv.url, "--access-key", AK, "--secret-key", SK]
    args += ["--bucket", "bench", "--op", cell.op, "--size", cell.size, "--objects", str(cell.objects)]
    # A 64 MiB cell does about one request per second: give it 3x the time to average over a few.
    secs = seconds * (3 if cell.size == "64MiB" else 1)
    args += ["-c", str(cell.conc), "--duration", str(secs), "--warmup", "1", "--runs", "1", "--json"]
    args += ["--server-pid", str(srv.proc.pid), *([] if prepare else ["--skip-prepare"])]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out)["median"][cell.op]
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-fsync", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated switches (cache,zerocopy,mmap,direct_io)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    only = {w for w in a.only.split(",") if w}
    rows: list[dict[str, Any]] = []
    switches = [s for s in dict.fromkeys(c.switch for c in CELLS) if not only or s in only]
    for switch in switches:
        with tempfile.TemporaryDirectory(prefix=f"bench-io-{switch}-") as tmp:
            servers = {
                on: Server(Path(tmp) / "data", env_for(switch, on), not a.no_fsync) for on in (False, True)
            }
            try:
                prepared: set[str] = set()
                for cell in [c for c in CELLS if c.switch == switch]:
                    for rnd in range(a.rounds):
                        for on in (False, True) if rnd % 2 == 0 else (True, False):
                            first = cell.op == "get" and cell.size not in prepared
                            prepared.add(cell.size)
                            m = s3bench(
                                servers[on], cell, a.seconds, first or (cell.op == "put" and rnd == 0)
                            )
                            row = {**cell.__dict__, "on": on, "round": rnd, **m}
                            rows.append(row)
                            print(
                                f"{switch:9} {cell.op} {cell.size:>5} c={cell.conc:<2} {'on ' if on else 'off'} "
                                f"round {rnd}: {m['mib_s']:8.1f} MiB/s {m['ops_s']:8.1f} ops/s p50 {m['p50_ms']} ms "
                                f"server cpu {m.get('server_cpu_pct')}% errors {m['errors']}",
                                file=sys.stderr,
                                flush=True,
                            )
            finally:
                for srv in servers.values():
                    srv.stop()
    print(
        "| switch | op | object | c | off MiB/s (ops/s) | on MiB/s (ops/s) | on/off, median of rounds "
        "| server CPU ms/op off / on | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for cell in [c for c in CELLS if not only or c.switch in only]:
        mine = [
            r for r in rows if r["switch"] == cell.switch and r["size"] == cell.size and r["op"] == cell.op
        ]
        by_state = {
            state: {r["round"]: (r["mib_s"], r["ops_s"]) for r in mine if r["on"] is state}
            for state in (False, True)
        }
        off_m, on_m = by_state[False], by_state[True]
        ratios = [on_m[k][1] / off_m[k][1] for k in off_m if k in on_m and off_m[k][1]]
        errs = sum(r["errors"] for r in mine)
        cols = [
            f"{statistics.median(v[0] for v in m.values()):.0f} ({statistics.median(v[1] for v in m.values()):.0f})"
            for m in (off_m, on_m)
        ]
        cpu = [  # server CPU per request: less at the mercy of the box's load than throughput
            statistics.median(
                r["server_cpu_pct"] * 10 / r["ops_s"] for r in mine if r["on"] is st and r["ops_s"]
            )
            for st in (False, True)
        ]
        print(
            f"| {cell.switch} | {cell.op.upper()} | {cell.size} | {cell.conc} | {cols[0]} | {cols[1]} | "
            f"{statistics.median(ratios):.2f}x | {cpu[0]:.2f} / {cpu[1]:.2f} | {errs} |"
        )
    if a.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
